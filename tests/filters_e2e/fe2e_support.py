"""Helpers for the end-to-end filter tests: lay out projects on disk, write filter files,
and ask questions of recorded traces (through tests/tracemodel.py, not rewind's reader)."""
from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

from rewind_testing import ROOT
from tracemodel import Err, TraceView

REDACTED = Err("<redacted>")
DROPPED = Err("<dropped>")
PY = "python%d.%d" % sys.version_info[:2]


def write_tree(root: Path, files: dict[str, str]) -> Path:
    """Write {relative path: source} under root (sources are dedented)."""
    for relative, text in files.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return root


def filter_toml(name: str, body: str = "", *, exec_: str = "inherit", value: str = "inherit") -> str:
    """A filter file: [meta] + [scope] defaults + `body` (rules, dedented)."""
    head = (f'[meta]\nname = "{name}"\nversion = 1\n\n[scope]\n'
            f'default_exec = "{exec_}"\ndefault_value_action = "{value}"\n')
    return head + textwrap.dedent(body)


def write_filter(path: Path, name: str, body: str = "", **defaults) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(filter_toml(name, body, **defaults), encoding="utf-8")
    return path


def pythonpath(*extra: os.PathLike | str) -> dict:
    """Env for a recording whose program imports from `extra` directories (rewind's src first:
    an explicit PYTHONPATH replaces the one the fixture would have set)."""
    return {"PYTHONPATH": os.pathsep.join([str(ROOT / "src"), *map(str, extra)])}


# -- questions about a trace ---------------------------------------------------------------


def functions(view: TraceView) -> set[str]:
    return {c.function for c in view.calls}


def call(view: TraceView, name: str):
    found = view.calls_of(name)
    assert len(found) == 1, "expected one call of %s, got %d; calls: %s" % (name, len(found), sorted(functions(view)))
    return found[0]


def recorded_paths(view: TraceView) -> set[str]:
    """Files of the recorded calls (<toplevel> excluded)."""
    return {c.path for c in view.calls[1:]}


def step_values(view: TraceView, function: str) -> list[dict]:
    """Values of every line step of `function` (entry steps excluded)."""
    steps = view.steps_in(function)
    assert steps, "no steps recorded in %s" % function
    return [s.values for s in steps]


def names_seen(view: TraceView, function: str) -> set[str]:
    """Every variable name in the function's Call args and line steps."""
    names = set()
    for c in view.calls_of(function):
        names |= set(c.args)
    for values in step_values(view, function):
        names |= set(values)
    return names


def last_values(view: TraceView, function: str) -> dict:
    return step_values(view, function)[-1]


def count_in_values(value, needle) -> int:
    """How often `needle` occurs inside a decoded value (Struct fields, sequences...)."""
    if value == needle and type(value) is type(needle):
        return 1
    if isinstance(value, dict):
        return sum(count_in_values(v, needle) for k, v in value.items() if k != "__type__")
    if isinstance(value, (list, tuple)):
        return sum(count_in_values(v, needle) for v in value)
    return 0


def struct_values(view: TraceView):
    """Every decoded Struct anywhere in the trace (args, step values, returns), nested too."""
    out = []

    def walk(value):
        if isinstance(value, dict):
            if "__type__" in value:
                out.append(value)
            for key, inner in value.items():
                if key != "__type__":
                    walk(inner)
        elif isinstance(value, (list, tuple)):
            for inner in value:
                walk(inner)

    for c in view.calls:
        for v in c.args.values():
            walk(v)
        walk(c.returned)
    for s in view.steps:
        for v in s.values.values():
            walk(v)
    return out


def filter_meta(view: TraceView) -> dict:
    return view.metadata["trace_filter"]
