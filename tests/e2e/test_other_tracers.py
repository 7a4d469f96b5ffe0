"""Programs that set a trace function of their own (coverage, debuggers) while recorded.

With sys.settrace (3.10/3.11) there is one trace function per thread: the program's takes
the place of rewind's, and what runs from then on is not recorded.  The trace stays valid,
and rewind says so at the end (a warning, and a detach in the metadata) instead of handing
over a trace that silently stops.  With sys.monitoring (3.12+) both record side by side.
"""
from __future__ import annotations

import textwrap

import pytest

from rewind_testing import HAS_MONITORING, assert_valid, run_python

TAKES_OVER = """
    import sys

    seen = []

    def own_tracer(frame, event, arg):
        seen.append(event)
        return None

    class Tracer:
        def __repr__(self):
            raise RuntimeError("rewind must not call the program's code to name it")

        def __call__(self, frame, event, arg):
            return own_tracer(frame, event, arg)

    def work(n):
        total = 0
        for i in range(n):
            total += i
        return total

    print(work(3))
    sys.settrace({replacement})
    print(work(4))
    print("own tracer saw calls:", seen.count("call") > 0)
    """


def write(tmp_path, source: str):
    script = tmp_path / "prog.py"
    script.write_text(textwrap.dedent(source))
    return script


@pytest.mark.parametrize("replacement, described", [
    ("own_tracer", "replaced rewind's trace function (sys.settrace) with __main__.own_tracer,"),
    ("Tracer()", "replaced rewind's trace function (sys.settrace) with a __main__.Tracer object,"),
    ("None", "rewind's trace function (sys.settrace) was removed while the program ran")])
def test_settrace_a_program_that_replaces_the_trace_function_is_told(record, tmp_path, replacement, described):
    rec = record(write(tmp_path, TAKES_OVER.format(replacement=replacement)), env={"REWIND_BACKEND": "settrace"})
    assert rec.proc.returncode == 0, rec.stderr
    # The program ran as it does unrecorded: its own tracer got its events.
    assert rec.stdout.splitlines() == ["3", "6", "own tracer saw calls: %s" % (replacement != "None")]
    v = rec.view
    # What ran before is in the (valid) trace; the call after the replacement is not.
    assert [c.args["n"] for c in v.calls_of("work")] == [3]
    assert described in rec.stderr and "missing from the trace" in rec.stderr
    assert v.metadata["detach_reason"] == "trace_function_replaced"
    assert v.metadata["metrics"]["detaches.trace_function_replaced"] == 1


def test_settrace_no_warning_when_the_trace_function_is_left_alone(record, tmp_path):
    rec = record(write(tmp_path, TAKES_OVER.replace("sys.settrace({replacement})", "sys.gettrace()")),
                 env={"REWIND_BACKEND": "settrace"})
    assert rec.proc.returncode == 0, rec.stderr
    assert [c.args["n"] for c in rec.view.calls_of("work")] == [3, 4]
    assert "missing from the trace" not in rec.stderr
    assert rec.view.metadata["detach_reason"] is None


@pytest.mark.skipif(not HAS_MONITORING, reason="sys.monitoring is Python 3.12+")
def test_monitoring_records_beside_the_programs_own_tracer(record, tmp_path):
    rec = record(write(tmp_path, TAKES_OVER.format(replacement="own_tracer")), env={"REWIND_BACKEND": "monitoring"})
    assert rec.proc.returncode == 0, rec.stderr
    assert rec.stdout.splitlines() == ["3", "6", "own tracer saw calls: True"]
    assert [c.args["n"] for c in rec.view.calls_of("work")] == [3, 4]
    assert "missing from the trace" not in rec.stderr
    assert rec.view.metadata["detach_reason"] is None


def test_settrace_stopping_from_a_thread_rewind_never_traced_is_no_replacement(record, tmp_path):
    # The thread runs before recording starts, so it has no trace function of rewind's; it
    # stops the recording that the main thread started.
    script = write(tmp_path, """
        import threading
        import rewind

        go, done = threading.Event(), threading.Event()

        def stopper():
            go.wait()
            rewind.stop()
            done.set()

        thread = threading.Thread(target=stopper)
        thread.start()
        rewind.start("trace-api")
        total = sum(range(3))
        go.set()
        done.wait()
        thread.join()
        print("stopped", total)
        """)
    proc = run_python([str(script)], cwd=tmp_path, env={"REWIND_BACKEND": "settrace"})
    assert proc.returncode == 0 and proc.stdout == "stopped 3\n", proc.stderr
    assert_valid(tmp_path / "trace-api")
    assert "missing from the trace" not in proc.stderr
