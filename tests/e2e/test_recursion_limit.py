"""Programs that run into their recursion limit, recorded.

rewind's callbacks run on top of the program's deepest frame.  Before, at the limit, their own
Python calls raised RecursionError: the recording failed (no trace, exit 70), the program's
handlers ran one frame earlier than without recording, and on 3.11 a trace function that
raised turned tracing off half-way and left an invalid trace.  With the C core every call
into rewind's Python code gets headroom above the limit (accelerator/headroom.h), so the
program runs exactly as it does unrecorded.  The pure-Python core has no such room: there
an event that cannot be recorded is left out whole and counted, and the trace stays valid.
"""
from __future__ import annotations

import json
import textwrap

import pytest

from rewind_testing import assert_valid, run_python
from tracemodel import TraceView

# Each program records itself through the API (so that rewind adds no frame under it) unless
# UNRECORDED is set, and prints what its handlers saw.
PROGRAMS = {
    "plain": """
        import sys
        sys.setrecursionlimit(1500)

        def boom(n):
            return boom(n + 1)

        try:
            boom(0)
        except RecursionError as exc:
            print("caught:", exc)
        print("after")
        """,
    # A handler at every level: the deepest one that runs returns its depth, which moves if
    # anything takes a frame of the program's limit.
    "handler at every level": """
        import sys
        sys.setrecursionlimit(1500)

        def depth(n):
            try:
                return depth(n + 1)
            except RecursionError:
                return n

        first = depth(0)
        print("depth", first, "again", depth(0))
        """,
    # Containers, objects and generators in every frame: the encoder's Python code runs.
    "values and generators": """
        import sys
        sys.setrecursionlimit(500)

        class Node:
            def __init__(self, n, child):
                self.n = n
                self.child = child
                self.tags = ["x", n]

        def build(n, child):
            node = Node(n, child)
            data = {"n": n, "items": [n, n + 1, (n, "t")]}
            return build(n + 1, node)

        try:
            build(0, None)
        except RecursionError:
            print("values: caught")

        def chain(n):
            yield n
            yield from chain(n + 1)

        seen = 0
        try:
            for seen in chain(0):
                pass
        except RecursionError:
            print("generators: caught after", seen)
        """,
}

PREAMBLE = """
import os
if not os.environ.get("UNRECORDED"):
    import rewind
    rewind.start("out")
"""


def _run(tmp_path, name, env):
    (tmp_path / "prog.py").write_text(PREAMBLE + textwrap.dedent(PROGRAMS[name]))
    unrecorded = run_python(["prog.py"], cwd=tmp_path, env={"UNRECORDED": "1"})
    recorded = run_python(["prog.py"], cwd=tmp_path, env=env)
    assert unrecorded.returncode == 0 and recorded.returncode == 0, recorded.stderr
    assert_valid(tmp_path / "out")
    metrics = json.loads((tmp_path / "out" / "trace_metadata.json").read_text())["metrics"]
    return unrecorded, recorded, metrics


@pytest.mark.parametrize("name", PROGRAMS)
def test_the_c_core_leaves_the_program_its_whole_recursion_limit(tmp_path, backend, name):
    from rewind import accelerator
    if not accelerator.available():
        pytest.skip("the C accelerator is not built here")
    unrecorded, recorded, metrics = _run(tmp_path, name, {**backend, "REWIND_CORE": "c"})
    assert recorded.stdout == unrecorded.stdout
    assert recorded.stderr == ""
    assert "events_dropped.recursion_limit" not in metrics
    assert metrics["internal_errors"] == 0
    # Every level was recorded, down to the deepest.
    view = TraceView(str(tmp_path / "out"))
    if name == "handler at every level":
        deepest = int(unrecorded.stdout.split()[1])
        assert len(view.calls_of("depth")) == 2 * (deepest + 1)


@pytest.mark.parametrize("name", PROGRAMS)
def test_the_python_core_leaves_out_what_it_cannot_record_and_keeps_a_valid_trace(tmp_path, backend, name):
    unrecorded, recorded, metrics = _run(tmp_path, name, {**backend, "REWIND_CORE": "python"})
    # The program ran to its end (its handlers may run a frame or two earlier: documented).
    assert recorded.stdout.splitlines()[-1].split()[0] == unrecorded.stdout.splitlines()[-1].split()[0]
    assert metrics["internal_errors"] == 0
    dropped = metrics.get("events_dropped.recursion_limit", 0)
    if dropped:
        assert "left out of the trace" in recorded.stderr
