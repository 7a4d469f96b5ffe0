raise SystemExit("bye from the program")
