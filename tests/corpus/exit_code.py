import sys


def leave(code):
    sys.exit(code)


print("before exit")
leave(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
