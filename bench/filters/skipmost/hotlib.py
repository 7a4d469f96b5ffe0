"""The hot library of the skip-most workload: almost all executed lines are here, and the
filter skip-hotlib.toml skips this module."""


def checksum(seed, rounds):
    value = seed
    acc = 0
    for _ in range(rounds):
        value = (value * 1103515245 + 12345) & 0x7FFFFFFF
        if value % 3 == 0:
            acc += value >> 7
        else:
            acc ^= value
    return acc


class Stats:
    def __init__(self):
        self.count = 0
        self.total = 0

    def add(self, value):
        self.count += 1
        self.total += value % 1000
