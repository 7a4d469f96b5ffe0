"""Every branch of the accelerated calls and returns: int args at the int64 edges, big ints,
None, bools, strings and objects as args (the Python path), defaults, *args/**kwargs,
keyword-only args, a hidden (dunder) arg and a generator expression's hidden `.0`,
redacted and dropped args and return values (filter.toml), methods, recursion, generators
yielding ints and None, returns of every kind, a raise, and output between calls (IO)."""
import sys


def ints(a, b, c, d):
    return a


def edge(n):
    return n


def nothing(x=None):
    return None


def mixed(flag, text, obj, big):
    return flag


def varargs(first, *rest, key=7, **extra):
    return first + len(rest) + key + len(extra)


def hidden(__marker__, visible):
    return visible


def filtered_args(token, skip, keep):
    return token + skip + keep


def dropped_ret(n):
    return n * 2


def fact(n):
    if n < 2:
        return 1
    return n * fact(n - 1)


def countdown(n):
    while n > 0:
        yield n
        n -= 1
    yield None


def fails(n):
    if n > 2:
        raise ValueError(n)
    return n


class Box:
    def __init__(self, v):
        self.v = v

    def get(self, k):
        return self.v + k


total = 0
for i in range(12):
    total += ints(i, -i, 2 ** 62, -(2 ** 62))
    total += edge(2 ** 63 - 1) - edge(2 ** 63 - 1)
    total += edge(-(2 ** 63)) - edge(-(2 ** 63))
    total += edge(2 ** 63) - edge(2 ** 63)
    total += edge(-(2 ** 63) - 1) - edge(-(2 ** 63) - 1)
    nothing()
    nothing(i)
    mixed(i % 2 == 0, "s%d" % i, [i], 10 ** 30)
    total += varargs(i) + varargs(i, 1, 2, key=3, z=4)
    total += hidden(i, i + 1)
    total += filtered_args(i, i, i)
    total += dropped_ret(i)
    total += fact(i)
    total += sum(x for x in countdown(3) if x is not None)
    total += Box(i).get(i)
    edge(True)
    edge(2.5)
    edge("text")
    try:
        fails(i)
    except ValueError:
        pass
    if i % 5 == 0:
        print("progress", i, total)
        sys.stdout.flush()
print(total)
