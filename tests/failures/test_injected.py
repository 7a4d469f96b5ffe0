"""on_recorder_error=abort|disable and keep_partial_trace, driven by CODETRACER_TEST_INJECT_FAILURE."""
from __future__ import annotations

import json

import pytest
from failure_support import error_reports, leftovers, metadata

from rewind_testing import run_python, run_rewind

# Long enough that the recorder writes to the sink once mid-run (it flushes every 2048
# events), so `write` and `disk-full` hit inside a hook; `write:2` hits while finishing.
LOOP = """
def work(n):
    total = 0
    for i in range(n):
        total += i
    return total

print("result", work(1100))
print("done")
"""

INJECT = "CODETRACER_TEST_INJECT_FAILURE"

# point -> (error code, exit code)
MID_RUN = {
    "line:3": ("ERR_UNKNOWN", 70),
    "write": ("ERR_IO", 10),
    "disk-full": ("ERR_DISK_FULL", 10),
}


def _env(backend, point):
    return {**backend, INJECT: point}


@pytest.mark.parametrize("point", sorted(MID_RUN))
def test_abort_stops_the_program_at_that_point(record, backend, program, tmp_path, point):
    code, status = MID_RUN[point]
    script = program("loop.py", LOOP)
    rec = record(script, env=_env(backend, point), expect_trace=False)
    assert rec.proc.returncode == status
    assert rec.stdout == ""  # raised inside work(): nothing after the failure ran
    assert rec.stderr.splitlines() == [rec.stderr.strip()]  # exactly one line
    assert rec.stderr.startswith("rewind: error: [%s]" % code)
    assert not rec.trace_dir.exists() and leftovers(tmp_path) == []


def test_abort_wins_over_a_program_that_catches_the_error(record, backend, program):
    script = program("catches.py", """
        import sys

        def step(i):
            return i * 2

        try:
            for i in range(10):
                step(i)
        except Exception as exc:  # the classified error, raised right here
            print("caught", type(exc).__name__, exc.code, exc.kind)
        print("after")
        sys.exit(0)
        """)
    rec = record(script, options=["--propagate-script-exit"], env=_env(backend, "line:4"), expect_trace=False)
    assert rec.stdout == "caught InternalError ERR_UNKNOWN internal\nafter\n"
    assert rec.proc.returncode == 70  # whatever the program did with it
    assert rec.stderr.startswith("rewind: error: [ERR_UNKNOWN]") and len(rec.stderr.splitlines()) == 1


@pytest.mark.parametrize("point", ["line:3", "write", "disk-full", "finish"])
def test_disable_warns_once_and_the_program_runs_on(record, backend, program, tmp_path, point):
    script = program("loop.py", LOOP + "raise SystemExit(3)\n")
    plain = run_python([str(script)], cwd=tmp_path)
    rec = record(script, options=["--on-recorder-error", "disable", "--propagate-script-exit"],
                 env=_env(backend, point), expect_trace=False)
    assert rec.stdout == plain.stdout == "result 604450\ndone\n"
    assert rec.proc.returncode == 3  # the program's own status
    (line,) = rec.stderr.splitlines()
    warning = json.loads(line)
    assert warning["level"] == "warning" and warning["error_code"] == MID_RUN.get(point, ("ERR_UNKNOWN",))[0]
    assert "disable" in warning["message"]
    assert not rec.trace_dir.exists() and leftovers(tmp_path) == []


KEEP_PARTIAL = [(point, code, "abort") for point, code in [
    ("line:3", "ERR_UNKNOWN"), ("line:1500", "ERR_UNKNOWN"), ("write", "ERR_IO"), ("write:2", "ERR_IO"),
    ("disk-full", "ERR_DISK_FULL"), ("finish", "ERR_UNKNOWN")]] + [
    ("line:3", "ERR_UNKNOWN", "disable"), ("disk-full", "ERR_DISK_FULL", "disable"),
    ("finish", "ERR_UNKNOWN", "disable")]


@pytest.mark.parametrize("point,code,policy", KEEP_PARTIAL)
def test_keep_partial_trace_is_loadable_and_marked(record, backend, program, tmp_path, point, code, policy):
    script = program("loop.py", LOOP)
    rec = record(script, options=["--keep-partial-trace", "--on-recorder-error", policy],
                 env=_env(backend, point))  # the fixture validates the trace
    assert rec.proc.returncode == (0 if policy == "disable" else {"ERR_IO": 10, "ERR_DISK_FULL": 10}.get(code, 70))
    meta = metadata(rec.trace_dir)
    assert meta["partial"] is True
    assert meta["error"]["code"] == code and meta["error"]["kind"] in ("internal", "environment")
    view = rec.view
    assert view.open_at_end == {}  # every call closed
    assert view.toplevel.function == "<toplevel>" and view.toplevel.closed
    assert leftovers(tmp_path) == []


def test_a_kept_partial_trace_passes_rewind_validate(record, program, tmp_path):
    script = program("loop.py", LOOP)
    rec = record(script, options=["--keep-partial-trace"], env={INJECT: "disk-full"})
    check = run_rewind(["validate", str(rec.trace_dir)], cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "partial (ERR_DISK_FULL)" in check.stdout + check.stderr
    # A disk that filled up mid-event: the torn event was cut, the rest closed.
    view = rec.view
    (work,) = view.calls_of("work")
    assert work.returned.r.startswith("<unfinished")
    assert view.toplevel.returned == 1  # the classified error ended the program


@pytest.mark.parametrize("policy", ["abort", "disable"])
def test_start_failure_runs_nothing(record, program, tmp_path, policy):
    script = program("hello.py", 'print("ran")\n')
    rec = record(script, options=["--on-recorder-error", policy], env={INJECT: "start"}, expect_trace=False)
    # A failure before the target runs always fails the command: there is no program to go on with.
    assert rec.proc.returncode == 70 and rec.stdout == ""
    assert rec.stderr.startswith("rewind: error: [ERR_UNKNOWN]") and "start" in rec.stderr
    assert not rec.trace_dir.exists() and leftovers(tmp_path) == []


def test_finish_failure_under_abort(record, program, tmp_path):
    script = program("hello.py", 'print("ran")\n')
    rec = record(script, env={INJECT: "finish"}, expect_trace=False)
    assert rec.stdout == "ran\n" and rec.proc.returncode == 70
    assert not rec.trace_dir.exists() and leftovers(tmp_path) == []


def test_an_invalid_injection_value_is_a_usage_error(record, program):
    script = program("hello.py", 'print("ran")\n')
    rec = record(script, options=["--json-errors"], env={INJECT: "sometimes"}, expect_trace=False)
    assert rec.proc.returncode == 2 and rec.stdout == ""
    (report,) = error_reports(rec.stderr)
    assert report["error_code"] == "ERR_INVALID_POLICY_VALUE" and report["context"]["name"] == INJECT
