"""What the encoder runs to show a value (argparse's `_get_kwargs`, a `__repr__`) is not the
program's doing: with a filter that traces argparse, the trace holds the program's own calls
into it and nothing the encoder made."""
from __future__ import annotations

import collections
import json
import textwrap

FILTER = """
[meta]
name = "trace-argparse"
version = 1

[scope]
default_exec = "inherit"
default_value_action = "inherit"

[[scope.rules]]
selector = "pkg:argparse"
exec = "trace"
"""


def test_calls_made_to_show_a_value_are_not_recorded(record, backend, core, tmp_path):
    prog = tmp_path / "prog.py"
    prog.write_text(textwrap.dedent("""
        import argparse

        def main():
            options = argparse.Namespace(items=[1], name="x")
            for i in range(3):
                options.items.append(i)     # shown (by its repr) at every step
            return options

        print(repr(main()))                 # the program's only repr of it
    """).lstrip("\n"))
    (tmp_path / "filter.toml").write_text(FILTER)
    rec = record(prog, options=["--trace-filter", str(tmp_path / "filter.toml")], env={**backend, **core})
    assert rec.stdout == "Namespace(items=[1, 0, 1, 2], name='x')\n"
    events = json.loads((rec.trace_dir / "trace.json").read_text())
    names = [e["Function"]["name"] for e in events if "Function" in e]
    calls = collections.Counter(names[e["Call"]["function_id"]] for e in events if "Call" in e)
    assert calls["Namespace.__init__"] == 1  # argparse is traced
    assert calls["_AttributeHolder.__repr__"] == calls["_AttributeHolder._get_kwargs"] == 1
