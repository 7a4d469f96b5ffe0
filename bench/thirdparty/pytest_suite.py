"""Real work in a real pure-Python library: pytest collects and runs a generated suite.

    python pytest_suite.py [SUITE_DIR] [MODULES]      (default 6 modules of 10 tests)

Writes a small test suite (plain tests, parametrized tests, fixtures, a class, expected
failures caught with pytest.raises) into SUITE_DIR (a temporary directory when omitted;
an existing suite there is reused) and runs it in-process with `pytest.main`, without the
cache plugin, so nothing but the suite directory is written. The pytest internals run
under recording too (third-party plugins are not loaded): this measures a recorder on a large real framework."""
import os
import sys
import tempfile

import pytest

MODULE = '''
import pytest


def slugify(text):
    out = []
    for ch in text.lower():
        if ch.isalnum():
            out.append(ch)
        elif out and out[-1] != "-":
            out.append("-")
    return "".join(out).strip("-")


class Stack:
    def __init__(self):
        self.items = []

    def push(self, value):
        self.items.append(value)

    def pop(self):
        if not self.items:
            raise IndexError("pop from empty stack")
        return self.items.pop()


@pytest.fixture
def stack():
    s = Stack()
    for i in range({m}):
        s.push(i)
    return s


@pytest.mark.parametrize("text,expected", [
    ("Hello World", "hello-world"),
    ("  many   spaces ", "many-spaces"),
    ("Mod {m}: done!", "mod-{m}-done"),
])
def test_slugify(text, expected):
    assert slugify(text) == expected


def test_stack_pop(stack):
    assert stack.pop() == {m} - 1
    assert len(stack.items) == {m} - 1


def test_empty_stack_raises():
    with pytest.raises(IndexError):
        Stack().pop()


class TestNumbers:
    def test_sum(self):
        assert sum(range({m} + 10)) == ({m} + 10) * ({m} + 9) // 2

    def test_sorted(self):
        data = [(i * 37) % 101 for i in range(50)]
        assert sorted(data) == sorted(data, reverse=True)[::-1]

    @pytest.mark.parametrize("n", [1, 2, 3])
    def test_powers(self, n):
        assert 2 ** n == 1 << n
'''


def write_suite(directory, modules):
    os.makedirs(directory, exist_ok=True)
    for m in range(modules):
        path = os.path.join(directory, "test_gen_%d.py" % m)
        if not os.path.exists(path):
            with open(path, "w") as f:
                f.write(MODULE.format(m=m + 3))
    return directory


def main():
    directory = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="rewind-bench-suite-")
    modules = int(sys.argv[2]) if len(sys.argv) > 2 else 6
    write_suite(directory, modules)
    # Only pytest itself: plugins installed in the environment would make runs incomparable.
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    code = pytest.main([directory, "-q", "-p", "no:cacheprovider"])
    sys.exit(int(code))


main()
