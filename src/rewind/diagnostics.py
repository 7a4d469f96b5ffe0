"""Diagnostics: rewind's own logs, error reports and metrics.

Logs go through the standard ``logging`` module under the logger ``rewind``
(children such as ``rewind.session`` included), formatted as JSON lines::

    {"ts": "2025-01-02T03:04:05.678Z", "level": "warning", "logger": "rewind.session",
     "message": "...", "run_id": "<hex>", "trace_id": "<id or null>", "error_code": "ERR_IO", ...}

They go to a log file or to the *original* standard error, never to stdout and
never to a replaced ``sys.stderr`` (IO capture swaps that for a proxy, and what
the proxy sees is recorded as program output).  The logger does not propagate,
so the program's own logging configuration neither sees rewind's records nor is
changed by them.

Metrics are plain counters in a process-wide sink.  Hot paths count in local
ints and hand the totals over once with ``add_counts()``.
"""
from __future__ import annotations

import abc
import datetime
import json
import logging
import os
import sys
import threading
from collections.abc import Mapping
from typing import IO

from rewind import errors
from rewind.policy import Policy

LOGGER_NAME = "rewind"
logger = logging.getLogger(LOGGER_NAME)
logger.propagate = False
# Until setup_logging() runs, records are dropped rather than handed to logging's
# last-resort handler, which writes to sys.stderr (possibly a capture proxy).
logger.addHandler(logging.NullHandler())
logger.setLevel(logging.WARNING)

LOG_LEVELS: dict[str, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}

# Captured at import, before any IO capture can replace sys.stderr.
_ORIGINAL_STDERR: IO[str] | None = sys.__stderr__
_stream_override: IO[str] | None = None


# --- identifiers --------------------------------------------------------------------------------

def _uuid4_hex() -> str:
    """uuid.uuid4().hex, without importing uuid (2 ms of every start)."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # variant 10
    return raw.hex()


_run_id = _uuid4_hex()
_trace_id: str | None = None


def _new_run_id_after_fork() -> None:
    global _run_id, _trace_id
    _run_id = _uuid4_hex()
    _trace_id = None


if hasattr(os, "register_at_fork"):
    # A forked child is a new run; it does not continue its parent's session.
    os.register_at_fork(after_in_child=_new_run_id_after_fork)


def run_id() -> str:
    """This process's run id (uuid4 hex), in every log line and error report."""
    return _run_id


def trace_id() -> str | None:
    """The active session's trace id, or None outside a session."""
    return _trace_id


def set_trace_id(value: str | None) -> str | None:
    """Set (a session starts) or clear (None: it ended) the trace id; returns the previous one."""
    global _trace_id
    previous, _trace_id = _trace_id, value
    return previous


def clear_trace_id() -> None:
    set_trace_id(None)


# --- the diagnostic stream ----------------------------------------------------------------------

def use_stream(stream: IO[str] | None) -> IO[str] | None:
    """Send stderr diagnostics to ``stream`` instead of the original stderr; None restores it.

    For fd-level IO capture (``proxies+fd``), which redirects file descriptor 2:
    pass a stream on a duplicate of the original descriptor so that rewind's own
    lines are not captured as program output.  Returns the previous override.
    """
    global _stream_override
    previous, _stream_override = _stream_override, stream
    return previous


def diagnostic_stream() -> IO[str] | None:
    """Where stderr diagnostics go: the use_stream() override, else the original stderr."""
    return _stream_override if _stream_override is not None else _ORIGINAL_STDERR


def _write_line(line: str) -> None:
    """Write one line to the diagnostic stream; never raises (the program may have closed it)."""
    stream = diagnostic_stream()
    if stream is not None:
        try:
            stream.write(line + "\n")
            stream.flush()
            return
        except (OSError, ValueError, AttributeError, UnicodeError):
            pass
    # The stream object is closed or broken; the descriptor may still be open.
    if stream is _ORIGINAL_STDERR:
        try:
            os.write(2, (line + "\n").encode("utf-8", "backslashreplace"))
        except OSError:
            pass


# --- logging ------------------------------------------------------------------------------------

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD_RECORD_ATTRS = frozenset(
    logging.LogRecord("", logging.INFO, "", 0, "", (), None).__dict__
) | {"message", "asctime"}
_CORE_KEYS = ("ts", "level", "logger", "message", "run_id", "trace_id")


def _json_default(value: object) -> str:
    try:
        return str(value)
    except Exception:  # noqa: BLE001 - a value that cannot be shown must not break logging
        return "<unrepr>"


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, message, run_id, trace_id, error_code?, extras."""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.datetime.fromtimestamp(record.created, tz=datetime.timezone.utc)
        entry: dict[str, object] = {
            "ts": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "run_id": _run_id,
            "trace_id": _trace_id,
        }
        error_code = getattr(record, "error_code", None)
        if error_code is not None:
            entry["error_code"] = error_code
        for key, value in record.__dict__.items():
            if key not in _STANDARD_RECORD_ATTRS and key not in entry and not key.startswith("_"):
                entry[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            entry["exc_type"] = record.exc_info[0].__name__
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=_json_default, ensure_ascii=False)


class _DiagnosticStreamHandler(logging.Handler):
    """Writes to diagnostic_stream() at emit time, so use_stream() applies to a live handler."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # noqa: BLE001 - logging must never fail the recorder
            return
        _write_line(line)

    def handleError(self, record: logging.LogRecord) -> None:
        pass  # logging's default prints a traceback to sys.stderr, i.e. into program output


class _QuietFileHandler(logging.FileHandler):
    def handleError(self, record: logging.LogRecord) -> None:
        pass  # same reason as above: a full disk must not spill tracebacks into program output


_handler_lock = threading.Lock()
_installed_handler: logging.Handler | None = None


def setup_logging(policy: Policy | None = None) -> logging.Handler:
    """Configure the ``rewind`` logger from ``policy`` (level, file); idempotent.

    Replaces the handler an earlier call installed, so there is always at most one.
    An unwritable ``log_file`` raises EnvironmentError ERR_IO.
    """
    global _installed_handler
    policy = policy or Policy()
    handler: logging.Handler
    if policy.log_file:
        try:
            handler = _QuietFileHandler(policy.log_file, mode="a", encoding="utf-8")
        except OSError as exc:
            raise errors.classify(exc, path=policy.log_file, setting="log_file") from exc
    else:
        handler = _DiagnosticStreamHandler()
    handler.setFormatter(JsonLinesFormatter())
    with _handler_lock:
        _remove_installed_handler()
        logger.addHandler(handler)
        logger.setLevel(LOG_LEVELS.get(policy.log_level, logging.WARNING))
        _installed_handler = handler
    return handler


def teardown_logging() -> None:
    """Remove and close the handler setup_logging() installed; records are dropped afterwards."""
    with _handler_lock:
        _remove_installed_handler()
        logger.setLevel(logging.WARNING)


def _remove_installed_handler() -> None:
    global _installed_handler
    if _installed_handler is not None:
        logger.removeHandler(_installed_handler)
        try:
            _installed_handler.close()
        except Exception:  # noqa: BLE001, S110 - closing a broken log file is best effort
            pass
        _installed_handler = None


def log_error(err: BaseException, *, level: int = logging.ERROR, message: str | None = None) -> None:
    """Log a recorder error with its code, kind and context as record fields."""
    classified = errors.classify(err)
    cause = classified.__cause__
    # A bug in rewind: the log (a debug log is what a bug report asks for) gets its traceback.
    exc_info = (type(cause), cause, cause.__traceback__) \
        if classified.kind == errors.KIND_INTERNAL and cause is not None and cause.__traceback__ is not None else None
    logger.log(
        level,
        message or classified.message,
        exc_info=exc_info,
        extra={
            "error_code": classified.code,
            "error_kind": classified.kind,
            "context": dict(classified.context),
        },
    )


# --- error reports ------------------------------------------------------------------------------

def error_report(err: BaseException) -> dict[str, object]:
    """The ``--json-errors`` object for an error (classified first if needed)."""
    classified = errors.classify(err)
    return {"run_id": _run_id, "trace_id": _trace_id, **classified.to_dict()}


def format_error_line(err: BaseException, *, json_errors: bool = False) -> str:
    """The one line report_error() writes, without the newline."""
    if json_errors:
        return json.dumps(error_report(err), ensure_ascii=False)
    text = str(errors.classify(err))
    # One line whatever the message holds, so scripts can read stderr line by line.
    return "rewind: error: " + text.replace("\r", "\\r").replace("\n", "\\n")


def report_error(err: BaseException, policy: Policy | None = None) -> str:
    """Write one line about ``err`` to the original stderr and return it.

    With ``policy.json_errors``: ``{"run_id", "trace_id", "error_code", "error_kind",
    "message", "context"}``; otherwise ``rewind: error: [CODE] message (k=v)``.
    When logs go to a file, the error is logged there too.  Never raises.
    """
    json_errors = bool(policy and policy.json_errors)
    try:
        line = format_error_line(err, json_errors=json_errors)
    except Exception:  # noqa: BLE001 - the report is the last thing that may fail
        line = "rewind: error: [ERR_UNKNOWN] the error could not be formatted"
    _write_line(line)
    if isinstance(_installed_handler, logging.FileHandler):
        try:
            log_error(err)
        except Exception:  # noqa: BLE001, S110 - the stderr line above is what matters
            pass
    return line


# --- metrics ------------------------------------------------------------------------------------

EVENTS_WRITTEN = "events_written"
SCOPES_SKIPPED = "scopes_skipped"
VALUES_REDACTED = "values_redacted"  # per value kind: values_redacted.local, ...
VALUES_DROPPED = "values_dropped"  # per value kind
DETACHES = "detaches"  # per reason: detaches.<reason>
INTERNAL_ERRORS = "internal_errors"
EVENTS_DROPPED = "events_dropped"  # per reason: events_dropped.recursion_limit


def counter_key(name: str, **labels: object) -> str:
    """``name`` followed by ``.value`` for each label, in label-name order: detaches.disk_full."""
    return ".".join([name, *(str(labels[k]) for k in sorted(labels))])


class MetricsSink(abc.ABC):
    """Where counters go.  Implement incr() and snapshot(); add_counts() batches incr()."""

    @abc.abstractmethod
    def incr(self, name: str, n: int = 1, **labels: object) -> None:
        """Add ``n`` to the counter ``name`` (labels are folded into the key)."""

    @abc.abstractmethod
    def snapshot(self) -> dict[str, int]:
        """The current counters as ``{key: value}``."""

    def add_counts(self, counts: Mapping[str, int]) -> None:
        """Add a batch of already-keyed counters (what a session hands over at its end)."""
        for key, n in counts.items():
            if n:
                self.incr(key, n)


class CountingMetrics(MetricsSink):
    """The default sink: thread-safe in-memory counters."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def incr(self, name: str, n: int = 1, **labels: object) -> None:
        key = counter_key(name, **labels) if labels else name
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + n

    def add_counts(self, counts: Mapping[str, int]) -> None:
        with self._lock:
            for key, n in counts.items():
                if n:
                    self._counts[key] = self._counts.get(key, 0) + n

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self._counts.items()))

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()


_sink: MetricsSink = CountingMetrics()


def metrics_sink() -> MetricsSink:
    return _sink


def set_metrics_sink(sink: MetricsSink) -> MetricsSink:
    """Install another sink (for example one that forwards to a monitoring system); returns the old."""
    global _sink
    previous, _sink = _sink, sink
    return previous


def incr(name: str, n: int = 1, **labels: object) -> None:
    """Count on the current sink; for rare events (a detach), not per-event paths."""
    _sink.incr(name, n, **labels)


def add_counts(counts: Mapping[str, int]) -> None:
    """Add a session's totals to the current sink in one call."""
    _sink.add_counts(counts)


def metrics() -> dict[str, int]:
    """The process's counters so far: ``{"events_written": 1234, "values_redacted.local": 2, ...}``."""
    return _sink.snapshot()


def reset_metrics() -> None:
    """Start counting from zero with a fresh default sink."""
    set_metrics_sink(CountingMetrics())
