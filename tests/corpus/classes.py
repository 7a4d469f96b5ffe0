"""Classes, methods, inheritance, dataclasses, slots, enums, namedtuples."""
import dataclasses
import enum
from collections import namedtuple


class Shape:
    sides = 0

    def __init__(self, name):
        self.name = name

    def describe(self):
        return "%s with %d sides" % (self.name, self.sides)

    @classmethod
    def make(cls, name):
        return cls(name)

    @staticmethod
    def unit():
        return 1


class Square(Shape):
    sides = 4

    def __init__(self, name, size):
        super().__init__(name)
        self.size = size

    @property
    def area(self):
        return self.size * self.size


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Slotted:
    __slots__ = ("a", "b")

    def __init__(self):
        self.a = 1


class Color(enum.Enum):
    RED = 1
    GREEN = 2


Pair = namedtuple("Pair", "left right")


def main():
    sq = Square("sq", 3)
    text = sq.describe()
    area = sq.area
    shape = Shape.make("blob")
    p = Point(1, 2)
    s = Slotted()
    c = Color.GREEN
    pair = Pair(1, "two")
    print(text, area, shape.describe(), p, s.a, c, pair, Shape.unit())


main()
