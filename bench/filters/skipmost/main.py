"""Skip-most workload (issue 3): a program whose hot loop is in a module a filter skips.

    python main.py [ITEMS] [ROUNDS]

main() runs a few traced lines per item and calls into hotlib (skipped by
skip-hotlib.toml) for the real work: 2000 items x 2000 rounds by default, so over 99.9% of
the executed lines are in the skipped module. With the filter, recording should cost little
more than the traced part: on 3.12+ rewind disables the skipped code at the interpreter
level (sys.monitoring DISABLE), on 3.10/3.11 it returns no local trace function for it."""
import sys

import hotlib


def main():
    items = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    stats = hotlib.Stats()
    for item in range(items):
        value = hotlib.checksum(item, rounds)
        stats.add(value)
    print(stats.count, stats.total)


main()
