"""Every branch of the accelerated snapshot loop: module-level ints (globals), a function
reading globals, cache hits and misses, ints at the int64 edges, bools, big ints, floats,
strings, tuples of scalars (and of others), containers mutated in place, `del`, a name
rebound to a hidden type (a local, and a global that switches between a value, a function
and a module), closures, comprehensions, a generator, redacted and dropped ints
(filter.toml), and output between steps (IO capture flushes)."""
import sys

LIMIT = 40
counter = 0
label = "start"
table = {"hits": 0}

for i in range(30):  # module frame: the snapshot reads the globals dict
    counter += i
    position = (i, -i, "row")
    if i % 7 == 0:
        label = "seven %d" % i


def helper(n):
    return n * 2


def work(n):
    total = 0
    secret = 12345
    hidden = 99
    edge = 2 ** 63 - 1
    low = -(2 ** 63)
    over = 2 ** 63
    flag = True
    ratio = 0.5
    items = []
    for k in range(n):
        total += helper(k) + LIMIT
        secret += 1
        hidden -= 1
        edge, low = low, edge
        over += 1
        flag = not flag
        ratio *= 1.5
        items.append(k)
        table["hits"] += 1
        if k == 5:
            gone = k
            del gone
        if k == 7:
            total = helper  # rebound to a function: not shown as a local? (locals are)
            total = 0
        pair = (k, k % 3)  # tuples of scalars, new at every step
        mixed = (ratio, "s%d" % k, None, flag, -k)
        odd = (2 ** 70 + k, "\u00e9", (k, 1), tuple(range(k + 40)))  # a big int, non-ASCII, nested, long
        bound = tuple(range(k + 40))  # 50 items shown at most: longer from k = 11 on
        special = (float("inf"), float("nan"), -0.0, 1e300 * k, True, None, (), "x" * (k * 50))
        if k % 10 == 0:
            print("progress", k)
            sys.stdout.flush()
    squares = [j * j for j in range(5)]
    return total, squares, pair, mixed, odd[1], len(bound), len(special)


def outer():
    x = 1

    def inner(y):
        return x + y

    for z in range(4):
        x += inner(z)
    return x


shifting = 1


def shifts():
    """A global read at every step that is a value, then a function, then a module."""
    global shifting
    seen = 0
    for step in range(4):
        seen += 1 if callable(shifting) else 0
        shifting = (helper, 2, sys, 3)[step]
    return seen


def gen(n):
    for g in range(n):
        yield g * 3


print(work(25))
print(outer())
print(sum(gen(6)))
print(shifts())
print(counter, label, table)
