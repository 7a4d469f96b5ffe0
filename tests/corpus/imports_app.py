"""Imports of the program's own modules; two functions named helper in two files."""
from mypkg import helpers, other


def helper(x):
    return -x


print(helpers.helper(3), other.helper(3), helper(3))
