"""Values at the edges: floats, big ints, bytes, surrogates, bounds, cycles, odd objects."""
import math

repr_calls = []


class LoudRepr:
    def __init__(self):
        self.tag = "loud"

    def __repr__(self):
        repr_calls.append(1)
        raise RuntimeError("repr must not be called")


class Node:
    def __init__(self, label):
        self.label = label
        self.next = None


def main():
    floats = [1.5, -0.0, math.inf, -math.inf, math.nan, 1e300]
    big = 2 ** 100
    negbig = -(2 ** 70)
    i64max = 2 ** 63 - 1
    i64over = 2 ** 63
    raw = b"\x00\xffabc"
    weird = "caf\xe9 \udcff end"
    long_text = "x" * 5000
    long_list = list(range(200))
    long_dict = {i: str(i) for i in range(120)}
    nested = [[[[["deep"]]]]]
    nested_pair = [[[(1, 2)]]]
    cyc = [1]
    cyc.append(cyc)
    a = Node("a")
    a.next = Node("b")
    a.next.next = a
    loud = LoudRepr()
    pair_set = {3}
    empty = ()
    done = len(repr_calls)
    print(done, len(long_list), big > i64max, floats[0], weird.encode("utf-8", "replace"))


main()
