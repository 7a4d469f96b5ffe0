"""A module of the program's own package."""


def helper(x):
    doubled = x * 2
    return doubled
