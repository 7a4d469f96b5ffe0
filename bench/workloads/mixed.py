"""Nine mixed variables per step (the argument and eight locals): ints, a float, a str, a
tuple, a list, a dict and an object.

The containers change on some iterations and not on others, so a recorder that re-encodes
only what changed has something to win and something to lose."""


class Point:
    def __init__(self, x, y):
        self.x = x
        self.y = y


def mixed(n):
    count = 0
    total = 0.0
    label = "start"
    pair = (0, 0)
    items = [1, 2, 3]
    table = {"a": 1, "b": 2}
    point = Point(0, 0)
    for i in range(n):
        count += 1
        total += i * 0.5
        if i % 10 == 0:
            items.append(i)
            if len(items) > 20:
                del items[:10]
        if i % 25 == 0:
            table["k%d" % (i % 7)] = i
            label = "step%d" % (i // 25)
        point.x = i % 13
        pair = (i, i % 3)
    return count, total, label, pair, len(items), len(table), point.x


print(mixed(20000))
