"""Qualified names on Python 3.10 (no `co_qualname`) are read from the source's syntax tree:
they must be the names CPython itself gives (checked against `co_qualname` where it exists)."""
from __future__ import annotations

import sys
import textwrap
import types

import pytest

from rewind import qualnames

SAMPLE = textwrap.dedent('''
    import functools

    def outer(a):
        def inner(b):
            return [x for x in range(b) if x]
        squares = {k: k * k for k in range(3)}
        gen = (y for y in range(2))
        f = lambda z: z + 1
        class Local:
            def method(self):
                return lambda: 1
        return inner, f, Local

    class Top:
        @staticmethod
        @functools.lru_cache
        def decorated(x):
            return x

        class Nested:
            def deep(self):
                return {i for i in range(2)}

        items = [n for n in range(2)]

    async def coro():
        async def inner():
            pass
''')


def code_objects(code: types.CodeType):
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield const
            yield from code_objects(const)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="compares with co_qualname, which 3.10 lacks")
def test_the_names_read_from_source_are_the_interpreters(tmp_path):
    source = tmp_path / "sample.py"
    source.write_text(SAMPLE)
    index = qualnames._read_index(str(source))
    codes = list(code_objects(compile(SAMPLE, str(source), "exec")))
    assert len(codes) >= 12
    for code in codes:
        assert index[(code.co_firstlineno, code.co_name)] == code.co_qualname


def test_code_without_a_source_keeps_its_name():
    class CodeWithoutQualname:  # as a 3.10 code object made by exec of a string
        co_filename = "<string>"
        co_firstlineno = 1
        co_name = "made_by_exec"

    assert qualnames.qualname_of(CodeWithoutQualname) == "made_by_exec"


def test_a_file_that_does_not_parse_keeps_the_names(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("def f(:\n    pass\n")

    class CodeWithoutQualname:
        co_filename = str(broken)
        co_firstlineno = 1
        co_name = "f"

    assert qualnames.qualname_of(CodeWithoutQualname) == "f"
