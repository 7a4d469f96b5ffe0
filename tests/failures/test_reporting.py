"""require_trace, --json-errors, logs, metrics, and the same failure behaviour through the API."""
from __future__ import annotations

import json

import pytest
from failure_support import REPORT_KEYS, error_reports, leftovers, metadata, stderr_json_lines

from rewind_testing import assert_valid, run_python

INJECT = "CODETRACER_TEST_INJECT_FAILURE"

LOOP = """
def work(n):
    total = 0
    for i in range(n):
        total += i
    return total

print("result", work(3000))
"""


# -- require_trace ---------------------------------------------------------------------------

def test_require_trace_with_nothing_recorded(record, program, tmp_path):
    script = program("main.py", 'print("ran")\n')
    never = program("never_runs.py", "x = 1\n")
    rec = record(script, options=["--require-trace", "--activation-path", str(never)], expect_trace=False)
    assert rec.stdout == "ran\n"
    assert rec.proc.returncode == 2
    assert rec.stderr.startswith("rewind: error: [ERR_TRACE_MISSING]") and len(rec.stderr.splitlines()) == 1
    assert not rec.trace_dir.exists() and leftovers(tmp_path) == []
    # The same from the environment, and with something recorded it is no error.
    rec = record(script, options=["--activation-path", str(never)], env={"CODETRACER_REQUIRE_TRACE": "1"},
                 expect_trace=False)
    assert rec.proc.returncode == 2 and "ERR_TRACE_MISSING" in rec.stderr
    rec = record(script, options=["--require-trace"])
    assert rec.proc.returncode == 0 and rec.stderr == ""


# -- --json-errors: exactly one line per recorder error ------------------------------------------

@pytest.mark.parametrize("point,policy,code,status", [
    ("line:3", "abort", "ERR_UNKNOWN", 70),
    ("line:3", "disable", "ERR_UNKNOWN", 0),
    ("disk-full", "abort", "ERR_DISK_FULL", 10),
    ("disk-full", "disable", "ERR_DISK_FULL", 0),
    ("start", "abort", "ERR_UNKNOWN", 70),
    ("finish", "abort", "ERR_UNKNOWN", 70),
    ("finish", "disable", "ERR_UNKNOWN", 0),
])
def test_json_errors_one_line_per_error(record, program, point, policy, code, status):
    script = program("loop.py", LOOP)
    rec = record(script, options=["--json-errors", "--on-recorder-error", policy], env={INJECT: point},
                 expect_trace=False)
    assert rec.proc.returncode == status
    lines = rec.stderr.splitlines()
    assert len(lines) == 1, rec.stderr
    report = json.loads(lines[0])
    assert set(report) == REPORT_KEYS
    assert report["error_code"] == code and report["error_kind"] in ("internal", "environment")
    assert len(report["run_id"]) == 32 and isinstance(report["context"], dict)
    if point != "start":
        assert report["trace_id"]  # the session the error belongs to
    assert "{" not in rec.stdout  # nothing of rewind's on stdout


def test_logs_never_go_to_stdout(record, program, tmp_path):
    script = program("loop.py", LOOP)
    plain = run_python([str(script)], cwd=tmp_path)
    rec = record(script, options=["--log-level", "debug", "--on-recorder-error", "disable"],
                 env={INJECT: "line:3"}, expect_trace=False)
    assert rec.stdout == plain.stdout
    assert stderr_json_lines(rec.stderr)  # the logs are there, on stderr
    assert all(line.startswith("{") for line in rec.stderr.splitlines())


def test_log_file_gets_the_warning(record, program, tmp_path):
    script = program("loop.py", LOOP)
    log_file = tmp_path / "rewind.log"
    rec = record(script, options=["--log-file", str(log_file), "--on-recorder-error", "disable"],
                 env={INJECT: "write"}, expect_trace=False)
    assert rec.proc.returncode == 0 and rec.stderr == ""
    (entry,) = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert entry["level"] == "warning" and entry["error_code"] == "ERR_IO" and entry["trace_id"]


# -- metrics ---------------------------------------------------------------------------------------

def test_metrics_in_trace_metadata(record, program, tmp_path):
    script = program("secret.py", """
        def login(user, password):
            token = user + password
            return len(token)

        login("ann", "hunter2")
        """)
    rec = record(script)
    counters = metadata(rec.trace_dir)["metrics"]
    assert counters["events_written"] > 0
    assert counters["values_redacted.arg"] >= 1  # builtin-default redacts `password`
    assert counters.get("internal_errors", 0) == 0

    rec = record(program("loop.py", LOOP), options=["--keep-partial-trace", "--on-recorder-error", "disable"],
                 env={INJECT: "line:3"})
    counters = metadata(rec.trace_dir)["metrics"]
    assert counters["internal_errors"] == 1 and counters["detaches.unknown"] == 1


API_SCRIPT = """
import json
import sys

import rewind

def work(n):
    total = 0
    for i in range(n):
        total += i
    return total

mode = sys.argv[1]
result = {}
if mode == "ok":
    with rewind.trace("trace-ok") as session:
        work(5)
    result["path"] = "trace-ok"
elif mode == "abort":
    session = rewind.start("trace-abort", on_recorder_error="abort")
    try:
        work(5)
    except rewind.InternalError as exc:  # raised in the program at that point
        result["caught"] = exc.code
    result["path"] = rewind.stop()
elif mode == "disable":
    session = rewind.start("trace-disable", on_recorder_error="disable", keep_partial_trace=True)
    result["work"] = work(5)
    result["path"] = rewind.stop()
result["metrics"] = rewind.metrics()
result["tracing"] = rewind.is_tracing()
print(json.dumps(result))
"""


def _api(program, tmp_path, mode, env=None):
    script = program("api_prog.py", API_SCRIPT)
    proc = run_python([str(script), mode], cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), proc.stderr


def test_metrics_from_the_api_match_the_metadata(program, tmp_path):
    result, stderr = _api(program, tmp_path, "ok")
    assert stderr == ""
    counters = metadata(tmp_path / "trace-ok")["metrics"]
    assert result["metrics"] == {k: v for k, v in counters.items() if v}
    assert result["metrics"]["events_written"] > 0


def test_api_abort_raises_in_the_program(program, tmp_path):
    result, stderr = _api(program, tmp_path, "abort", env={INJECT: "line:6"})
    assert result["caught"] == "ERR_UNKNOWN"
    assert result["path"] is None and not (tmp_path / "trace-abort").exists()
    assert result["metrics"]["internal_errors"] == 1 and result["tracing"] is False
    assert stderr == ""  # the program got the error; nothing else is printed
    assert leftovers(tmp_path) == []


def test_api_disable_keeps_a_partial_trace(program, tmp_path):
    result, stderr = _api(program, tmp_path, "disable", env={INJECT: "line:6"})
    assert result["work"] == 10  # the program is not affected
    assert result["path"].endswith("trace-disable")
    assert_valid(tmp_path / "trace-disable")
    meta = metadata(tmp_path / "trace-disable")
    assert meta["partial"] is True and meta["error"]["code"] == "ERR_UNKNOWN"
    assert result["metrics"]["detaches.unknown"] == 1
    (warning,) = stderr.splitlines()
    assert json.loads(warning)["error_code"] == "ERR_UNKNOWN"


def test_error_reports_helper_ignores_log_lines():
    log_line = '{"ts": "x", "level": "warning", "message": "m", "run_id": "r", "trace_id": null}'
    assert error_reports(log_line) == []
