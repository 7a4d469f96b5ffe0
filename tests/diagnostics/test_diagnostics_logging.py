"""rewind's logs: JSON lines, destinations, isolation from the program's logging and output."""
from __future__ import annotations

import datetime
import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rewind import diagnostics, errors
from rewind.policy import Policy

SRC = Path(__file__).resolve().parents[2] / "src"


def lines(buffer) -> list[dict]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_json_line_shape(stream):
    diagnostics.setup_logging(Policy(log_level="info"))
    diagnostics.logger.info("hello %s", "world")
    (entry,) = lines(stream)
    assert list(entry) == ["ts", "level", "logger", "message", "run_id", "trace_id"]
    assert entry["level"] == "info"
    assert entry["logger"] == "rewind"
    assert entry["message"] == "hello world"
    assert entry["run_id"] == diagnostics.run_id()
    assert len(entry["run_id"]) == 32 and int(entry["run_id"], 16) >= 0
    assert entry["trace_id"] is None
    assert entry["ts"].endswith("Z")
    ts = datetime.datetime.fromisoformat(entry["ts"].replace("Z", "+00:00"))
    assert ts.utcoffset() == datetime.timedelta(0)
    assert abs((datetime.datetime.now(datetime.timezone.utc) - ts).total_seconds()) < 60


def test_error_code_and_extra_context(stream):
    diagnostics.setup_logging(Policy())
    diagnostics.logger.warning("disk trouble", extra={"error_code": "ERR_DISK_FULL", "path": "/t",
                                                      "context": {"a": "1"}, "obj": object()})
    (entry,) = lines(stream)
    assert entry["error_code"] == "ERR_DISK_FULL"
    assert entry["path"] == "/t"
    assert entry["context"] == {"a": "1"}
    assert entry["obj"].startswith("<object object")


def test_trace_id_is_set_and_cleared_by_the_session(stream):
    diagnostics.setup_logging(Policy())
    assert diagnostics.set_trace_id("abc123") is None
    diagnostics.logger.warning("in session")
    assert diagnostics.set_trace_id(None) == "abc123"
    diagnostics.logger.warning("after")
    first, second = lines(stream)
    assert first["trace_id"] == "abc123"
    assert second["trace_id"] is None
    assert diagnostics.trace_id() is None


def test_child_loggers_and_exceptions(stream):
    diagnostics.setup_logging(Policy())
    try:
        raise ValueError("inner")
    except ValueError:
        logging.getLogger("rewind.session").exception("hook failed")
    (entry,) = lines(stream)
    assert entry["logger"] == "rewind.session"
    assert entry["exc_type"] == "ValueError"
    assert "ValueError: inner" in entry["traceback"]


def test_level_from_policy(stream):
    diagnostics.setup_logging(Policy(log_level="error"))
    diagnostics.logger.warning("dropped")
    diagnostics.logger.error("kept")
    assert [e["message"] for e in lines(stream)] == ["kept"]
    diagnostics.setup_logging(Policy(log_level="debug"))
    diagnostics.logger.debug("now kept")
    last = lines(stream)[-1]
    assert (last["level"], last["message"]) == ("debug", "now kept")


def test_setup_is_idempotent_and_teardown_removes(stream):
    before = list(diagnostics.logger.handlers)
    for _ in range(3):
        diagnostics.setup_logging(Policy())
    assert len(diagnostics.logger.handlers) == len(before) + 1
    diagnostics.logger.warning("once")
    assert len(lines(stream)) == 1
    diagnostics.teardown_logging()
    assert diagnostics.logger.handlers == before
    diagnostics.logger.warning("dropped after teardown")
    assert len(lines(stream)) == 1


def test_log_file(tmp_path, capfd):
    log = tmp_path / "rewind.log"
    diagnostics.setup_logging(Policy(log_file=str(log), log_level="info"))
    diagnostics.logger.info("to the file", extra={"error_code": "ERR_IO"})
    diagnostics.logger.warning("also")
    diagnostics.teardown_logging()  # closes the file
    entries = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert [e["message"] for e in entries] == ["to the file", "also"]
    assert entries[0]["error_code"] == "ERR_IO"
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_unwritable_log_file_is_an_environment_error(tmp_path):
    with pytest.raises(errors.EnvironmentError) as info:
        diagnostics.setup_logging(Policy(log_file=str(tmp_path / "no" / "such" / "dir" / "x.log")))
    assert info.value.code == "ERR_IO"
    assert isinstance(info.value.__cause__, OSError)
    assert info.value.context["setting"] == "log_file"


def test_nothing_goes_to_stdout(capfd):
    diagnostics.setup_logging(Policy(log_level="debug"))  # default destination: original stderr
    diagnostics.logger.debug("debug line")
    diagnostics.logger.critical("critical line")
    diagnostics.report_error(errors.usage("ERR_X", "bad"))
    out, err = capfd.readouterr()
    assert out == ""
    assert "debug line" in err and "critical line" in err and "[ERR_X] bad" in err


def test_records_before_setup_go_nowhere(capfd):
    diagnostics.logger.error("nobody configured me")
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # in particular not logging's last-resort handler


def test_root_logger_is_untouched_and_sees_nothing(stream):
    root = logging.getLogger()
    seen: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record):
            seen.append(record)

    collector = Collect(level=logging.DEBUG)
    root_level, root_handlers = root.level, list(root.handlers)
    root.addHandler(collector)
    try:
        diagnostics.setup_logging(Policy(log_level="debug"))
        diagnostics.logger.warning("rewind's own")
        logging.getLogger("rewind.session").error("also rewind's")
        logging.getLogger("userapp").warning("the program's")
    finally:
        root.removeHandler(collector)
    assert [r.getMessage() for r in seen] == ["the program's"]
    assert root.level == root_level and root.handlers == root_handlers
    assert diagnostics.logger.propagate is False
    assert [e["message"] for e in lines(stream)] == ["rewind's own", "also rewind's"]


def test_a_failing_stream_never_raises(stream):
    diagnostics.setup_logging(Policy())
    stream.close()
    diagnostics.logger.warning("into a closed stream")
    diagnostics.report_error(errors.usage("ERR_X", "m"))


def run_python(code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], check=False, capture_output=True,
                          text=True, env=env, timeout=120)


def test_replaced_sys_stderr_does_not_capture_diagnostics():
    result = run_python("""
        import io, logging, sys
        from rewind import diagnostics, errors
        from rewind.policy import Policy
        diagnostics.setup_logging(Policy())
        proxy = io.StringIO()
        sys.stderr = proxy  # what IO capture does
        sys.stdout = io.StringIO()
        diagnostics.logger.warning("a warning")
        err = errors.environment("ERR_DISK_FULL", "full", path="p")
        diagnostics.report_error(err, Policy(json_errors=True))
        captured = proxy.getvalue()
        sys.stdout = sys.__stdout__
        print("PROXY=" + repr(captured))
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "PROXY=''\n"
    warning, report = result.stderr.splitlines()
    assert json.loads(warning)["message"] == "a warning"
    assert json.loads(report)["error_code"] == "ERR_DISK_FULL"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_gets_a_new_run_id():
    result = run_python("""
        import os
        from rewind import diagnostics
        diagnostics.set_trace_id("parent-session")
        parent = diagnostics.run_id()
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.write(w, (diagnostics.run_id() + " " + str(diagnostics.trace_id())).encode())
            os._exit(0)
        os.waitpid(pid, 0)
        child_run, child_trace = os.read(r, 200).decode().split()
        print(parent != child_run, len(child_run), child_trace, diagnostics.run_id() == parent)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "32", "None", "True"]


def test_an_internal_error_is_logged_with_the_traceback_of_its_cause(stream):
    # A bug report needs to know where rewind failed, not only that it did.
    diagnostics.setup_logging(Policy(log_level="debug"))

    def inner_failure():
        raise KeyError("slot")

    try:
        inner_failure()
    except KeyError as exc:
        diagnostics.log_error(errors.classify(exc, where="recording"), level=logging.DEBUG)
    try:
        raise OSError(28, "No space left on device")
    except OSError as exc:  # an environment error is not a bug: no traceback
        diagnostics.log_error(errors.classify(exc))
    internal, environment = lines(stream)
    assert internal["error_code"] == "ERR_UNKNOWN" and internal["exc_type"] == "KeyError"
    assert "in inner_failure" in internal["traceback"]
    assert environment["error_code"] == "ERR_DISK_FULL" and "traceback" not in environment
