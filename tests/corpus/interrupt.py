def spin():
    raise KeyboardInterrupt


print("spinning")
spin()
