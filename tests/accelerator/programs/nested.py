"""New containers whose items the C core writes itself (Core.item_texts): scalars of every
kind and tuples of them inside lists, dicts, sets, tuples and objects, at and past the depth
and item bounds, and items it leaves to the encoder (big ints, long or non-ASCII strings,
tuples of objects).  The first tuple of the program is an item, not a variable, so the
encoder interns the tuple type inside a container."""


class Point:
    def __init__(self, x, y):
        self.x = x
        self.y = y
        self.tags = [("x", x), ("y", y)]


def build(k):
    rows = [(k, "r%d" % k), (k + 0.5, None, True, False)]  # the program's first tuples
    scalars = [k, -k, 2 ** 63 - 1, -(2 ** 63), 2 ** 63 + k, 0.1 * k, float("inf"), float("nan"), -0.0,
               "plain", "caf\u00e9", "\U0001f600", "x" * (990 + k), "quote\"back\\slash\nline", b"raw",
               True, False, None]
    nested = [[(k, k)], [[(k, "deep")]], [[[(k,)]]], ((), (k,)), [tuple(range(k + 45))]]
    table = {"a": k, k: "b", (k, 1): (2, "c"), None: [k, (k, k)], 1.5: {"in": (k, "t")}}
    mixed = [(Point(k, k), k), (k, [k]), ("\u00e9", k), (2 ** 80, k), ("y" * 2000,)]
    group = {k, "s", (k, "t"), None}
    frozen = frozenset({(k, 1), "f"})
    point = Point(k, -k)
    return rows, scalars, nested, table, mixed, group, frozen, point


results = []
for step in range(8):
    results.append(build(step))
    last = results[-1]
print(len(results))
