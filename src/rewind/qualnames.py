"""Qualified names of code objects on Python 3.10, which has no `co_qualname` (3.11+ has it).

A trace names each function by its qualified name (`Cls.method`, `outer.<locals>.inner`);
on 3.10 the code object only knows `co_name`.  This module reads the qualified names from the
source file's syntax tree once per file, keyed by (first line, name), following the rules
CPython uses for `__qualname__`.  A code object it cannot place (no source, a syntax error,
code made by `exec` of a string) keeps its `co_name`.
"""
from __future__ import annotations

import ast
import linecache
import types

_COMPREHENSION_NAMES = {ast.ListComp: "<listcomp>", ast.SetComp: "<setcomp>", ast.DictComp: "<dictcomp>",
                        ast.GeneratorExp: "<genexpr>"}


class _Index(ast.NodeVisitor):
    """(first line, co_name) -> qualname for every function, class, lambda and comprehension."""

    def __init__(self) -> None:
        self.names: dict[tuple[int, str], str] = {}
        self._prefix: list[str] = []  # the enclosing qualname parts, "<locals>" included

    def _add(self, lines: list[int], name: str) -> str:
        qualname = ".".join(self._prefix + [name])
        for line in lines:
            self.names.setdefault((line, name), qualname)
        return qualname

    def _function(self, node, name: str) -> None:
        # A decorated function's code starts at its first decorator.
        lines = [node.lineno] + [d.lineno for d in getattr(node, "decorator_list", ())]
        self._add(lines, name)
        self._prefix += [name, "<locals>"]
        self.generic_visit(node)
        del self._prefix[-2:]

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._function(node, node.name)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._function(node, node.name)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._function(node, "<lambda>")

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        lines = [node.lineno] + [d.lineno for d in node.decorator_list]
        self._add(lines, node.name)
        self._prefix.append(node.name)
        self.generic_visit(node)
        self._prefix.pop()

    def _comprehension(self, node) -> None:
        # The first iterable is evaluated in the enclosing scope; the rest runs in the
        # comprehension's own code object.
        generators = node.generators
        self.visit(generators[0].iter)
        self._add([node.lineno], _COMPREHENSION_NAMES[type(node)])
        self._prefix += [_COMPREHENSION_NAMES[type(node)], "<locals>"]
        for field in ("elt", "key", "value"):
            if getattr(node, field, None) is not None:
                self.visit(getattr(node, field))
        for index, generator in enumerate(generators):
            self.visit(generator.target)
            if index:
                self.visit(generator.iter)
            for condition in generator.ifs:
                self.visit(condition)
        del self._prefix[-2:]

    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _comprehension


_indexes: dict[str, dict[tuple[int, str], str]] = {}


def qualname_of(code: types.CodeType) -> str:
    """`code.co_qualname` where Python has it (3.11+), else the name read from the source file."""
    try:
        return code.co_qualname
    except AttributeError:
        pass
    names = _indexes.get(code.co_filename)
    if names is None:
        names = _indexes[code.co_filename] = _read_index(code.co_filename)
    return names.get((code.co_firstlineno, code.co_name), code.co_name)


def _read_index(filename: str) -> dict[tuple[int, str], str]:
    try:
        source = "".join(linecache.getlines(filename))
        tree = ast.parse(source, filename) if source else None
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        tree = None
    if tree is None:
        return {}
    index = _Index()
    try:
        index.visit(tree)
    except RecursionError:  # a pathologically deep file: what was read so far stays
        pass
    return index.names

