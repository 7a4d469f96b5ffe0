"""Globals that are imports, functions or classes are not shown at any step (they are noise
at every step: a recursive function names itself), while the other globals a function
reads are; a global that changes between the two kinds shows only while it is a value."""
from __future__ import annotations

import textwrap


def test_imports_functions_and_classes_are_not_shown_as_globals(record, backend, core, tmp_path):
    prog = tmp_path / "prog.py"
    prog.write_text(textwrap.dedent("""
        import os
        LIMIT = 3
        shifting = 1

        class Box:
            pass

        def fib(n):
            if n < 2:
                return n + LIMIT - LIMIT
            return fib(n - 1) + fib(n - 2)

        def shifts():
            global shifting
            seen = []
            for step in range(4):
                seen.append(type(shifting).__name__)           # reads
                shifting = (fib, 2, os, Box)[step]             # rebinds
            return seen

        print(fib(4), shifts(), Box, os.sep)
    """).lstrip("\n"))
    rec = record(prog, env={**backend, **core})
    view = rec.view
    for step in view.steps_in("fib"):
        assert set(step.values) == {"n", "LIMIT"}
    reads = [s.values for s in view.steps_in("shifts") if s.line == prog.read_text().splitlines().index(
        "    for step in range(4):") + 2]
    # `shifting` as each read saw it: 1, then fib (hidden), then 2, then os (hidden)
    assert [v.get("shifting") for v in reads] == [1, None, 2, None]
    assert all("fib" not in v and "os" not in v and "Box" not in v for v in reads)
