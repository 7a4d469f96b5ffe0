"""Exceptions leaving frames, caught, re-raised, finally blocks."""


def fail(kind):
    if kind == "value":
        raise ValueError("bad value")
    raise KeyError(kind)


def cleanup():
    try:
        fail("value")
    finally:
        done = True  # noqa: F841


def catcher():
    try:
        cleanup()
    except ValueError as exc:
        message = str(exc)
    try:
        fail("k")
    except LookupError:
        message = message + "+key"
    return message


print(catcher())
