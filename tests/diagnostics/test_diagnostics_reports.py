"""report_error (the --json-errors line and its human form) and metrics."""
from __future__ import annotations

import errno
import json
import threading

from rewind import diagnostics, errors
from rewind.diagnostics import CountingMetrics, MetricsSink
from rewind.policy import Policy

JSON_POLICY = Policy(json_errors=True)


# --- report_error ---------------------------------------------------------------------------------

def test_human_line(stream):
    err = errors.usage("ERR_INVALID_FILTER", "bad selector", file="f.toml", line=3)
    line = diagnostics.report_error(err)
    assert line == "rewind: error: [ERR_INVALID_FILTER] bad selector (file=f.toml, line=3)"
    assert stream.getvalue() == line + "\n"
    assert diagnostics.report_error(err, Policy()) == line


def test_json_line_shape(stream):
    diagnostics.set_trace_id("t-1")
    err = errors.environment("ERR_DISK_FULL", "No space left on device", path="/t/trace.json")
    line = diagnostics.report_error(err, JSON_POLICY)
    assert stream.getvalue() == line + "\n"
    assert line.startswith('{"run_id"')
    report = json.loads(line)
    assert report == {
        "run_id": diagnostics.run_id(),
        "trace_id": "t-1",
        "error_code": "ERR_DISK_FULL",
        "error_kind": "environment",
        "message": "No space left on device",
        "context": {"path": "/t/trace.json"},
    }
    assert list(report) == ["run_id", "trace_id", "error_code", "error_kind", "message", "context"]


def test_exactly_one_line_even_for_multiline_messages(stream):
    err = errors.internal("ERR_UNKNOWN", "first\nsecond", detail="a\nb")
    diagnostics.report_error(err)
    diagnostics.report_error(err, JSON_POLICY)
    human, machine = stream.getvalue().splitlines()
    assert human == "rewind: error: [ERR_UNKNOWN] first\\nsecond (detail=a\\nb)"
    assert json.loads(machine)["message"] == "first\nsecond"


def test_plain_exceptions_are_classified(stream):
    diagnostics.report_error(OSError(errno.ENOSPC, "No space left on device", "/t"), JSON_POLICY)
    diagnostics.report_error(KeyError("k"), JSON_POLICY)
    disk, unknown = (json.loads(line) for line in stream.getvalue().splitlines())
    assert (disk["error_code"], disk["error_kind"]) == ("ERR_DISK_FULL", "environment")
    assert disk["context"] == {"errno": "ENOSPC", "path": "/t"}
    assert (unknown["error_code"], unknown["error_kind"]) == ("ERR_UNKNOWN", "internal")


def test_nothing_on_stdout(capfd):
    diagnostics.report_error(errors.usage("ERR_X", "m"), JSON_POLICY)
    out, err = capfd.readouterr()
    assert out == ""
    assert json.loads(err)["error_code"] == "ERR_X"


def test_error_is_also_logged_when_logs_go_to_a_file(stream, tmp_path):
    log = tmp_path / "r.log"
    diagnostics.setup_logging(Policy(log_file=str(log)))
    diagnostics.report_error(errors.target("ERR_TARGET_NOT_FOUND", "no script", path="x.py"))
    diagnostics.teardown_logging()
    (entry,) = [json.loads(line) for line in log.read_text().splitlines()]
    assert entry["level"] == "error"
    assert entry["error_code"] == "ERR_TARGET_NOT_FOUND"
    assert entry["error_kind"] == "target"
    assert entry["context"] == {"path": "x.py"}
    assert stream.getvalue().startswith("rewind: error: [ERR_TARGET_NOT_FOUND]")


def test_log_error(stream):
    diagnostics.setup_logging(Policy())
    diagnostics.log_error(errors.usage("ERR_X", "m", k="v"), message="while starting")
    (entry,) = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert (entry["message"], entry["error_code"], entry["error_kind"], entry["context"]) == (
        "while starting", "ERR_X", "usage", {"k": "v"})


# --- metrics --------------------------------------------------------------------------------------

def test_counting_metrics():
    sink = CountingMetrics()
    sink.incr("events_written")
    sink.incr("events_written", 41)
    sink.incr("values_redacted", kind="local")
    sink.incr("values_redacted", 2, kind="local")
    sink.incr("detaches", reason="disk_full")
    assert sink.snapshot() == {
        "detaches.disk_full": 1,
        "events_written": 42,
        "values_redacted.local": 3,
    }
    sink.reset()
    assert sink.snapshot() == {}


def test_counter_key():
    assert diagnostics.counter_key("values_dropped", kind="arg") == "values_dropped.arg"
    assert diagnostics.counter_key("x", b="2", a="1") == "x.1.2"  # label-name order
    assert diagnostics.counter_key("scopes_skipped") == "scopes_skipped"


def test_add_counts_batches_a_session():
    sink = CountingMetrics()
    sink.add_counts({"events_written": 10, "values_redacted.local": 2, "scopes_skipped": 0})
    sink.add_counts({"events_written": 5})
    assert sink.snapshot() == {"events_written": 15, "values_redacted.local": 2}


def test_module_level_sink():
    assert diagnostics.metrics() == {}
    diagnostics.incr(diagnostics.INTERNAL_ERRORS)
    diagnostics.incr(diagnostics.DETACHES, reason="write_failed")
    diagnostics.add_counts({diagnostics.EVENTS_WRITTEN: 100, "values_dropped.global": 1})
    assert diagnostics.metrics() == {
        "detaches.write_failed": 1,
        "events_written": 100,
        "internal_errors": 1,
        "values_dropped.global": 1,
    }
    snapshot = diagnostics.metrics()
    snapshot["events_written"] = 0
    assert diagnostics.metrics()["events_written"] == 100  # a copy
    diagnostics.reset_metrics()
    assert diagnostics.metrics() == {}


def test_custom_sink_gets_batches_through_incr():
    class Recording(MetricsSink):
        def __init__(self):
            self.calls = []

        def incr(self, name, n=1, **labels):
            self.calls.append((name, n, labels))

        def snapshot(self):
            return {"calls": len(self.calls)}

    custom = Recording()
    previous = diagnostics.set_metrics_sink(custom)
    try:
        assert diagnostics.metrics_sink() is custom
        diagnostics.add_counts({"events_written": 3, "scopes_skipped": 0})
        diagnostics.incr("detaches", reason="signal")
        assert custom.calls == [("events_written", 3, {}), ("detaches", 1, {"reason": "signal"})]
        assert diagnostics.metrics() == {"calls": 2}
    finally:
        diagnostics.set_metrics_sink(previous)


def test_counting_is_thread_safe():
    sink = CountingMetrics()

    def work():
        for _ in range(2000):
            sink.incr("events_written")
            sink.add_counts({"scopes_skipped": 1})

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sink.snapshot() == {"events_written": 8000, "scopes_skipped": 8000}
