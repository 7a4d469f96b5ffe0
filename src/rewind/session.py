"""One recording: ties the policy, the filter chain, an interpreter hook, the recorder and
the writer together, and owns the trace directory from staging to its final name."""
from __future__ import annotations

import os
import secrets
import shutil
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Sequence

from . import diagnostics, errors, filters
from ._version import __version__
from .hooks import choose_backend, make_backend
from .policy import Policy
from .recorder import Recorder
from .writer.json_writer import JsonEventSink, write_json_file, write_paths

log = diagnostics.logger

FORMATS = ("json", "binary")
# Files a trace directory may hold; a directory with anything else is not ours to replace.
TRACE_FILES = frozenset({"trace.json", "trace.bin", "trace_metadata.json", "trace_paths.json"})


def uuid7() -> str:
    """A UUIDv7 string (48-bit unix ms, version 7, variant 10, random rest)."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(secrets.token_bytes(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))


def exit_label(code: int | None, exc: BaseException | None) -> str:
    if exc is None or isinstance(exc, SystemExit):
        if code is None:
            return "unknown"
        return "ok" if code == 0 else "exit"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    return "uncaught %s" % type(exc).__qualname__


class Session:
    """A recording in progress.  `start()` refuses bad input before anything is recorded."""

    def __init__(self, trace_dir: str | os.PathLike, *, policy: Policy, format: str = "json",
                 trace_filter: Sequence[str] | None = None, activation_path: str | None = None,
                 program: str | None = None, args: Sequence[str] = (), script_dir: str | None = None,
                 framework: str | None = None, toplevel_path: str | None = None,
                 backend: str | None = None):
        self.policy = policy
        self.format = format
        self.target = os.path.abspath(os.fspath(trace_dir))
        self.trace_filter = list(trace_filter or ())
        self.activation_path = os.path.abspath(activation_path) if activation_path else None
        self.program = program or (sys.argv[0] if sys.argv else "")
        self.args = list(args)
        self.script_dir = script_dir
        self.framework = framework
        self.toplevel_path = toplevel_path or self.activation_path or self.program
        self.backend_name = backend
        self.recording_id = uuid7()
        self.staging: str | None = None
        self.recorder: Recorder | None = None
        self.backend = None
        self.sink = None
        self.chain = None
        self.finished = False
        self.failed: errors.RecorderError | None = None
        self.pid = os.getpid()
        self.started_at = time.time()
        self.internal_errors = 0
        self.detach_reason: str | None = None

    # -- start -----------------------------------------------------------------------------

    def prepare(self) -> None:
        """Everything that can fail on bad input, before the target runs."""
        if self.format not in FORMATS:
            raise errors.usage("ERR_UNSUPPORTED_FORMAT", "unknown trace format",
                               format=self.format, allowed=", ".join(FORMATS))
        if self.format == "binary":
            raise errors.usage("ERR_UNSUPPORTED_FORMAT", "the binary format is not available yet",
                               format=self.format, allowed="json")
        self.backend_name = choose_backend(self.backend_name)
        script_dir = Path(self.script_dir) if self.script_dir else None
        self.chain = filters.build_chain(self.trace_filter, script_dir=script_dir,
                                         framework=self.framework, environ=os.environ)
        self._check_target_dir()

    def _check_target_dir(self) -> None:
        target = self.target
        if os.path.exists(target):
            if not os.path.isdir(target):
                raise errors.usage("ERR_TRACE_DIR_CONFLICT", "the trace directory path exists and is not a directory",
                                   path=target)
            foreign = sorted(set(os.listdir(target)) - TRACE_FILES)
            if foreign:
                raise errors.usage("ERR_TRACE_DIR_CONFLICT",
                                   "the trace directory holds files that are not a trace; refusing to replace it",
                                   path=target, found=", ".join(foreign[:5]))
        parent = os.path.dirname(target)
        try:
            os.makedirs(parent, exist_ok=True)
            self.staging = os.path.join(parent, ".%s.rewind-staging-%d-%s"
                                        % (os.path.basename(target), os.getpid(), secrets.token_hex(4)))
            os.mkdir(self.staging)
        except OSError as exc:
            raise errors.environment("ERR_TRACE_DIR_CREATE_FAILED", "cannot create the trace directory",
                                     path=target, reason=exc.strerror or str(exc)) from exc

    def start(self) -> None:
        self.prepare()
        try:
            self.sink = JsonEventSink(self.staging)
            policy = self.policy
            self.recorder = Recorder(self.sink, self.chain, max_depth=policy.max_depth,
                                     max_items=policy.max_items, max_string=policy.max_string,
                                     toplevel_path=self.toplevel_path,
                                     main_thread_id=threading.get_ident())
            self.backend = make_backend(self.backend_name, self.recorder, self._guard, self.activation_path)
            self.backend.install()
        except BaseException:
            self._discard()
            raise
        diagnostics.set_trace_id(self.recording_id)
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._after_fork_in_child)

    # -- failures inside callbacks ----------------------------------------------------------

    def _guard(self, exc: BaseException):
        """Called with any exception raised inside a hook callback."""
        if self.finished or os.getpid() != self.pid:
            return None
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            # Not ours: a signal handler or the program raising through our frame.
            raise exc
        error = exc if isinstance(exc, errors.RecorderError) else errors.internal(
            "ERR_UNKNOWN", "internal recorder failure: %s: %s" % (type(exc).__name__, exc))
        if error is not exc:
            error.__cause__ = exc
        self.failed = error
        self.internal_errors += 1
        diagnostics.log_error(error)
        self._detach()
        if self.policy.on_recorder_error == "disable":
            self.detach_reason = error.code
            log.warning("recording disabled after an internal error (%s); the program continues", error.code,
                        extra={"error_code": error.code})
            return None
        raise error

    def _detach(self) -> None:
        backend, self.backend = self.backend, None
        if backend is not None:
            backend.uninstall()

    def _after_fork_in_child(self) -> None:
        # The child must never write into the parent's trace: point the file at /dev/null
        # (so a later flush of the inherited buffer is harmless) and stop recording.
        if self.finished or self.sink is None:
            return
        self.finished = True
        backend, self.backend = self.backend, None
        if backend is not None:
            try:
                backend.uninstall()
            except Exception:  # noqa: BLE001 - nothing in the child may fail because of us
                pass
        self.sink.detach_in_child()

    # -- stop ------------------------------------------------------------------------------

    def flush(self) -> None:
        if self.recorder is not None and not self.finished:
            self.recorder.flush()
            self.sink.flush()

    def stop(self, exit_code: int | None = 0, exception: BaseException | None = None,
             traceback_text: str | None = None) -> str | None:
        """Finish the trace and move it to its final name; returns that path (None if discarded)."""
        if self.finished:
            return None
        self.finished = True
        self._detach()
        try:
            self._report_metrics()
        finally:
            diagnostics.clear_trace_id()
        if self.failed is not None and not self.policy.keep_partial_trace:
            self._discard()
            return None
        try:
            self.recorder.close_all(exit_code, traceback_text)
            self.sink.close()
            write_paths(self.staging, self.recorder.path_list)
            write_json_file(os.path.join(self.staging, "trace_metadata.json"),
                            self.metadata(exit_code, exception))
            self._publish()
        except OSError as exc:
            self._discard()
            code = "ERR_DISK_FULL" if exc.errno in (28, 27) else "ERR_IO"
            raise errors.environment(code, "cannot write the trace", path=self.target,
                                     reason=exc.strerror or str(exc)) from exc
        return self.target

    def _report_metrics(self) -> None:
        """Add this session's counters to the process metrics sink (rewind.metrics())."""
        rec = self.recorder
        if rec is None:
            return
        counts = {diagnostics.EVENTS_WRITTEN: rec.events_written(),
                  diagnostics.SCOPES_SKIPPED: rec.scopes_skipped,
                  diagnostics.INTERNAL_ERRORS: self.internal_errors}
        for kind, n in self._value_counts(rec.redactions, rec.encoder.attr_redactions).items():
            counts[diagnostics.counter_key(diagnostics.VALUES_REDACTED, kind=kind)] = n
        for kind, n in self._value_counts(rec.drops, rec.encoder.attr_drops).items():
            counts[diagnostics.counter_key(diagnostics.VALUES_DROPPED, kind=kind)] = n
        if self.detach_reason:
            counts[diagnostics.counter_key(diagnostics.DETACHES, reason=self.detach_reason)] = 1
        diagnostics.add_counts(counts)

    @staticmethod
    def _value_counts(per_kind: dict, attrs: int) -> dict:
        counts = dict(per_kind)
        if attrs:
            counts["attr"] = counts.get("attr", 0) + attrs
        return counts

    def _publish(self) -> None:
        """Rename the staging directory into place, replacing an older trace there."""
        old = None
        if os.path.isdir(self.target):
            old = self.staging + ".old"
            os.rename(self.target, old)
        os.rename(self.staging, self.target)
        if old:
            shutil.rmtree(old, ignore_errors=True)

    def _discard(self) -> None:
        if self.sink is not None:
            self.sink.abandon()
        if self.staging and os.path.isdir(self.staging):
            shutil.rmtree(self.staging, ignore_errors=True)

    def metadata(self, exit_code: int | None, exception: BaseException | None) -> dict:
        rec = self.recorder
        stats = rec.stats()
        redactions = self._value_counts(rec.redactions, rec.encoder.attr_redactions)
        drops = self._value_counts(rec.drops, rec.encoder.attr_drops)
        meta = {
            "recording_id": self.recording_id,
            "program": self.program,
            "args": self.args,
            "workdir": os.getcwd(),
            "recorder": {
                "name": "rewind",
                "version": __version__,
                "python": "%d.%d.%d" % sys.version_info[:3],
                "implementation": sys.implementation.name,
                "backend": self.backend_name,
                "format": self.format,
            },
            "process_exit_status": {"code": exit_code, "label": exit_label(exit_code, exception)},
            "trace_filter": {
                "filters": self.chain.provenance(),
                "stats": {"scopes_skipped": rec.scopes_skipped, "value_redactions": redactions,
                          "value_drops": drops},
            },
            "events": stats,
            "metrics": {"internal_errors": self.internal_errors, "detach_reason": self.detach_reason},
            "started_at": self.started_at,
            "duration_seconds": round(time.time() - self.started_at, 6),
        }
        if self.failed is not None:
            meta["partial"] = True
            meta["error"] = {"code": self.failed.code, "kind": self.failed.kind, "message": str(self.failed)}
        return meta

