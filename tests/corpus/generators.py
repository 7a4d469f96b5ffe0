"""Generators: iteration, send, throw, close, yield from."""


def countdown(n):
    while n > 0:
        received = yield n
        if received:
            n -= received
        n -= 1
    return "done"


def catching():
    try:
        yield 1
    except KeyError:
        yield "caught"
    yield 3


def delegator():
    result = yield from countdown(2)
    yield result


def main():
    seen = list(countdown(3))
    gen = countdown(10)
    first = next(gen)
    second = gen.send(3)
    gen.close()
    c = catching()
    next(c)
    thrown = c.throw(KeyError("x"))
    delegated = list(delegator())
    total = sum(i * i for i in range(4))
    print(seen, first, second, thrown, delegated, total)


main()
