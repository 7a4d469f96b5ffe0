"""Arguments of every kind, returns, recursion, closures, lambdas, comprehensions."""


def posonly(a, b=2, /, c=3, *rest, key, flag=False, **extra):
    total = a + b + c + sum(rest) + key
    return total


def fact(n):
    if n <= 1:
        return 1
    return n * fact(n - 1)


def make_counter(start):
    count = start

    def bump(step=1):
        nonlocal count
        count += step
        return count

    return bump


def main():
    r1 = posonly(1, key=10)
    r2 = posonly(1, 5, 7, 8, 9, key=1, flag=True, color="red")
    f = fact(5)
    bump = make_counter(100)
    bump()
    b = bump(5)
    square = lambda x: x * x  # noqa: E731
    squares = [square(i) for i in range(3)]
    evens = {i: i % 2 == 0 for i in range(3)}
    print(r1, r2, f, b, squares, evens)
    return f


result = main()
