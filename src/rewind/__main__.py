"""`python -m rewind ...` is the same as the `rewind` command."""
from rewind.cli import entry

if __name__ == "__main__":
    entry()
