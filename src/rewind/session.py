"""One recording: ties the policy, the filter chain, an interpreter hook, the recorder and
the writer together, and owns the trace directory from staging to its final name."""
from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
import types
import weakref
from typing import Sequence

from . import diagnostics, errors, exits, faults, filters, salvage
from ._version import __version__
from .capture import install as install_io_capture
from .hooks import choose_backend, make_backend
from .policy import Policy
from .recorder import Recorder
from .writer import check_format, open_event_sink
from .writer.json_writer import write_json_file, write_paths

# Sessions that may need detaching in a forked child.  One at-fork hook for the process
# (registering one per session would keep every finished session alive).
_LIVE_SESSIONS: "weakref.WeakSet[Session]" = weakref.WeakSet()


# Recorder locks this thread took before a fork (see _hold_recorders_for_fork).
_HELD_FOR_FORK: list = []


def _hold_recorders_for_fork() -> None:
    """Wait for any event in progress before forking.  Another thread in the middle of an
    event holds the recorder's lock; a child would inherit it held by a thread it does not
    have, and its first traced call (threading's own after-fork code runs before our hooks)
    would wait forever.  Taken here, the child inherits it held by the thread that forked."""
    for session in list(_LIVE_SESSIONS):
        recorder = session.recorder
        if session.finished or recorder is None:
            continue
        recorder.lock.acquire()
        _HELD_FOR_FORK.append(recorder.lock)


def _release_recorders_after_fork() -> None:
    while _HELD_FOR_FORK:
        _HELD_FOR_FORK.pop().release()


def _detach_sessions_in_child() -> None:
    _release_recorders_after_fork()
    for session in list(_LIVE_SESSIONS):
        session._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    # Registered at import, before IO capture's own hook: hooks run before a fork in reverse
    # order, so IO capture stops its helper thread (which records output) before this waits.
    os.register_at_fork(before=_hold_recorders_for_fork, after_in_parent=_release_recorders_after_fork,
                        after_in_child=_detach_sessions_in_child)

log = diagnostics.logger

FORMATS = ("json", "binary")
# Files a trace directory may hold; a directory with anything else is not ours to replace.
TRACE_FILES = frozenset({"trace.json", "trace.bin", "trace_metadata.json", "trace_paths.json"})


def uuid7() -> str:
    """A UUIDv7 string (48-bit unix ms, version 7, variant 10, random rest)."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    digits = "%032x" % value  # str(uuid.UUID(int=value)), without importing uuid
    return "-".join((digits[:8], digits[8:12], digits[12:16], digits[16:20], digits[20:]))


def _remove_tree(path: str) -> None:
    """shutil.rmtree(path, ignore_errors=True) with os alone.  A recording often finishes at
    exit, and nothing may be imported there: importing shutil evaluates a string (its
    namedtuple), and any eval at exit makes CPython forget an unhandled KeyboardInterrupt,
    so the process exits with 1 instead of by SIGINT (130)."""
    for root, dirs, files in os.walk(path, topdown=False):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            try:
                os.remove(os.path.join(root, name))
            except OSError:
                pass
        for name in dirs:
            try:
                os.rmdir(os.path.join(root, name))
            except OSError:
                pass
    try:
        os.rmdir(path)
    except OSError:
        pass


def _drop_text(text: str) -> None:
    """What a sink writes after one of its writes failed: nothing."""


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
        self.io = None  # capture.IoCapture while the program's IO is recorded
        self.sink = None
        self.chain = None
        self.finished = False
        self.failed: errors.RecorderError | None = None
        self.pid = os.getpid()
        self.started_at = time.time()
        self.internal_errors = 0
        self.recursion_drops = 0  # events left out at the program's recursion limit (_guard)
        self.detach_reason: str | None = None
        # Failure handling (docs/errors.md): the injected fault (read once at start), whether
        # the recorder may have been interrupted mid-event (then the trace is finished from
        # the file, see salvage.py), whether the sink can still be written to, and the CLI's
        # hook that decides the exit status when the program calls os._exit.
        self.fault: faults.Fault | None = None
        self.tainted = False
        self.sink_ok = True
        self.exit_label: str | None = None
        self.conclude = None
        # Callables run with the metadata dict just before trace_metadata.json is written
        # (children.py adds `children` / `parent`); each must not raise.
        self.metadata_hooks: list = []

    # -- start -----------------------------------------------------------------------------

    def prepare(self) -> None:
        """Everything that can fail on bad input, before the target runs."""
        if self.format not in FORMATS:
            raise errors.usage("ERR_UNSUPPORTED_FORMAT", "unknown trace format",
                               format=self.format, allowed=", ".join(FORMATS))
        check_format(self.format)  # binary without its extra: ERR_MISSING_EXTRA, before anything runs
        self.backend_name = choose_backend(self.backend_name)
        self.chain = filters.build_chain(self.trace_filter, script_dir=self.script_dir or None,
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
            salvage.remove_stale_staging(parent, os.path.basename(target))
            self.staging = os.path.join(parent, ".%s.rewind-staging-%d-%s"
                                        % (os.path.basename(target), os.getpid(), os.urandom(4).hex()))
            os.mkdir(self.staging)
        except OSError as exc:
            raise errors.environment("ERR_TRACE_DIR_CREATE_FAILED", "cannot create the trace directory",
                                     path=target, reason=exc.strerror or str(exc)) from exc

    def start(self) -> None:
        self.fault = faults.from_env()
        self.prepare()
        try:
            faults.fire(self.fault, "start")
            self.sink = open_event_sink(self.format, self.staging)
            faults.arm_sink(self.fault, self.sink)
            policy = self.policy
            self.recorder = Recorder(self.sink, self.chain, max_depth=policy.max_depth,
                                     max_items=policy.max_items, max_string=policy.max_string,
                                     toplevel_path=self.toplevel_path,
                                     main_thread_id=threading.get_ident())
            faults.arm_recorder(self.fault, self.recorder)
            self.backend = make_backend(self.backend_name, self.recorder, self._guard, self.activation_path)
            self.backend.install()
            self.io = install_io_capture(self.recorder, policy.io_capture, self.chain.io, self._guard)
        except BaseException as exc:
            self._detach()
            self._discard()
            if isinstance(exc, Exception) and not isinstance(exc, errors.RecorderError):
                raise errors.classify(exc, where="start") from exc
            raise
        exits.install(self)
        diagnostics.set_trace_id(self.recording_id)
        _LIVE_SESSIONS.add(self)

    def record_running(self, frame: types.FrameType) -> None:
        """Record `frame` (the API's caller) and its callers, which were running before the
        recording started, from their next line on."""
        backend = self.backend
        if backend is None:
            return
        try:
            backend.adopt(frame)
        except BaseException as exc:  # noqa: BLE001 - a failure while recording: the policy decides
            self._guard(exc)

    # -- failures inside callbacks ----------------------------------------------------------

    def _guard(self, exc: BaseException):
        """Called with any exception raised inside a hook callback."""
        if self.finished or os.getpid() != self.pid:
            return None
        if isinstance(exc, RecursionError):
            # The program is at its recursion limit and the recorder's own code found no room
            # there (the pure-Python core has no headroom: accelerator/headroom.h).  Events
            # are written whole or not at all, so leaving this one out keeps the trace valid,
            # and the recording goes on; the count is in the metadata and said at the end.
            self.recursion_drops += 1
            return None
        if not isinstance(exc, Exception):
            # Not ours: KeyboardInterrupt from a signal handler, or the program raising
            # through our frame.  It may have cut the recorder short half-way through an
            # event, so the trace will be finished from the file as written.
            self.tainted = True
            raise exc
        return self._fail(errors.classify(exc, where="recording"))

    def _fail(self, error: errors.RecorderError) -> None:
        """A recorder failure during recording: stop recording, then raise it (abort) or
        say so in one line and let the program run on (disable).  Only the first failure
        does either; later ones (other threads still inside a callback) are only counted."""
        first = self.failed is None
        self._note_failure(error)
        self._detach()
        if not first:
            diagnostics.log_error(error, level=logging.DEBUG)
            return None
        if self.policy.on_recorder_error == "disable":
            self._warn_disabled(error)
            return None
        diagnostics.log_error(error, level=logging.DEBUG)  # the CLI (or the program) reports it
        raise error

    def _note_failure(self, error: errors.RecorderError) -> None:
        if self.failed is None:
            self.failed = error
            self.detach_reason = error.code[4:].lower() if error.code.startswith("ERR_") else error.code
        self.internal_errors += 1
        if isinstance(error.__cause__, OSError):
            # A failed write may have left part of its text in the file: nothing may follow it
            # (late events, e.g. pending output at IO-capture uninstall, are dropped).
            self.sink_ok = False
            if self.sink is not None:
                self.sink.write = _drop_text

    def _warn_disabled(self, error: errors.RecorderError) -> None:
        """The one line `disable` writes: the JSON error line with --json-errors, else a warning log."""
        if self.policy.json_errors:
            diagnostics.report_error(error, self.policy)
        else:
            log.warning("recording stopped by a recorder error (on_recorder_error=disable: the program "
                        "is not affected): %s", error, extra={"error_code": error.code, "error_kind": error.kind})

    def _detach(self) -> None:
        backend, self.backend = self.backend, None
        if backend is not None:
            try:
                backend.uninstall()
            except Exception as exc:  # noqa: BLE001 - detaching runs inside callbacks and at the end
                diagnostics.log_error(errors.classify(exc, where="detach"), level=logging.DEBUG)
        io, self.io = self.io, None
        if io is not None:
            try:
                io.uninstall()  # pending output becomes events here, before the trace is closed
            except Exception as exc:  # noqa: BLE001
                diagnostics.log_error(errors.classify(exc, where="detach"), level=logging.DEBUG)

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
            try:
                self.recorder.flush()
                self.sink.flush()
            except Exception as exc:  # noqa: BLE001 - classified: abort raises it, disable goes on
                self._fail(errors.classify(exc, where="flush"))

    def stop(self, exit_code: int | None = 0, exception: BaseException | None = None,
             traceback_text: str | None = None, *, label: str | None = None,
             still_running: str = "<unfinished at exit>") -> str | None:
        """Finish the trace and move it to its final name; returns that path (None if discarded).

        After a recorder failure the trace is removed, or kept marked partial with
        `keep_partial_trace` (then its path is returned).  A failure while finishing is
        handled like one during recording: `abort` raises it, `disable` reports it in one
        line.  `require_trace` with nothing recorded raises UsageError ERR_TRACE_MISSING.
        Frames still running return `still_running` in the trace.
        """
        if self.finished:
            return None
        self.finished = True
        backend = self.backend
        self._detach()
        self._warn_if_displaced(backend, exception)
        exits.uninstall(self)
        if label:
            self.exit_label = label
        if self.recursion_drops:
            log.warning("%d event(s) left out of the trace: the program was at its recursion limit, where "
                        "rewind's own code found no room to run", self.recursion_drops)
        try:
            return self._finish(exit_code, exception, traceback_text, still_running)
        finally:
            self._report_metrics()
            diagnostics.clear_trace_id()

    def _warn_if_displaced(self, backend, exception: BaseException | None) -> None:
        """On sys.settrace (3.10/3.11), a program that sets its own trace function replaces
        rewind's: the trace stays valid but lacks what ran after that, so say it, in the log
        and as a detach in the metadata."""
        if not getattr(backend, "displaced", False) or self.failed is not None:
            return
        displaced_by = backend.displaced_by
        if displaced_by is None and (self.tainted or isinstance(exception, KeyboardInterrupt)):
            # An interrupt that went through rewind's trace function (even at its first
            # instruction, before any handler) made Python turn tracing off: not the program.
            return
        self.detach_reason = self.detach_reason or "trace_function_replaced"
        if displaced_by is not None:
            log.warning("the program replaced rewind's trace function (sys.settrace) with %s, so what ran "
                        "after that is missing from the trace. Coverage tools and debuggers do this; on "
                        "Python 3.12+ rewind uses sys.monitoring and records beside them", displaced_by)
        else:
            log.warning("rewind's trace function (sys.settrace) was removed while the program ran, so what ran "
                        "after that is missing from the trace: the program or a tool in it (coverage's stop()) "
                        "called sys.settrace(None), or Python turned tracing off after an error in a trace "
                        "function. On Python 3.12+ rewind uses sys.monitoring, which such tools leave alone")

    def _finish(self, exit_code: int | None, exception: BaseException | None,
                traceback_text: str | None, still_running: str) -> str | None:
        if self.recorder is None:
            self._discard()
            return None
        if self.failed is not None:
            return self._keep_partial(exit_code, exception, traceback_text)
        if self.policy.require_trace and self.recorder.counts()[2] == 0:
            self._discard()
            raise errors.usage(errors.ERR_TRACE_MISSING, "require_trace is set and nothing was recorded",
                               trace_dir=self.target, activation_path=self.activation_path or self.toplevel_path)
        try:
            faults.fire(self.fault, "finish")
            if self.tainted:
                self._close_from_file(exit_code, traceback_text)
            else:
                self.recorder.close_all(exit_code, traceback_text, still_running)
                self.sink.close()
                write_paths(self.staging, self.recorder.path_list)
            write_json_file(os.path.join(self.staging, "trace_metadata.json"),
                            self.metadata(exit_code, exception))
            self._publish()
        except Exception as exc:  # noqa: BLE001 - classified and handled by the policy below
            error = errors.classify(exc, where="finish", path=self.target)
            self._note_failure(error)
            kept = self._keep_partial(exit_code, exception, traceback_text)
            if self.policy.on_recorder_error == "disable":
                self._warn_disabled(error)
                return kept
            raise error from exc
        except BaseException:
            self._discard()  # interrupted while finishing: nothing half-written under the final name
            raise
        return self.target

    def _keep_partial(self, exit_code: int | None, exception: BaseException | None,
                      traceback_text: str | None) -> str | None:
        """After a failure: keep what was written as a loadable trace marked partial
        (`keep_partial_trace`), else remove it.  Returns the kept trace's path."""
        if not self.policy.keep_partial_trace:
            self._discard()
            return None
        try:
            self._close_from_file(exit_code, traceback_text)
            write_json_file(os.path.join(self.staging, "trace_metadata.json"),
                            self.metadata(exit_code, exception))
            self._publish()
        except Exception as exc:  # noqa: BLE001 - best effort: the failure itself is already reported
            log.warning("the partial trace could not be kept: %s", errors.classify(exc), extra={"path": self.target})
            self._discard()
            return None
        return self.target

    def _close_from_file(self, exit_code: int | None, traceback_text: str | None) -> None:
        """Finish the trace from what reached the file (salvage.py), not from the recorder's
        state, which a failure or a signal may have left half-way through an event."""
        rec, sink = self.recorder, self.sink
        if self.sink_ok:
            try:
                rec.flush()  # whole events only
            except Exception:  # noqa: BLE001 - then the file ends where it ends
                self.sink_ok = False
        if getattr(sink, "file_name", "") != "trace.json":
            # Only the JSON file can be read back and closed; other sinks close themselves.
            if not self.sink_ok:
                raise errors.environment(errors.ERR_IO, "a %s trace cannot be finished after a failed write"
                                         % self.format, path=self.target)
            rec.close_all(exit_code, traceback_text)
            sink.close()
            write_paths(self.staging, rec.path_list)
            return
        try:
            sink.abandon()  # closed before the file is finished: its buffer can never land after the `]`
        except Exception:  # noqa: BLE001, S110 - e.g. a reentrant close from a signal handler
            pass
        paths = salvage.finish_json_trace(sink.path, toplevel_path=rec.toplevel_path,
                                          exit_code=exit_code, error_text=traceback_text)
        write_paths(self.staging, paths)

    # -- ends that never return to the caller (exits.py) ------------------------------------

    def finish_at_os_exit(self, status: int) -> int:
        """The program calls os._exit(status) while recording: finish the trace now.
        Returns the status the process exits with (the CLI's `conclude` decides it)."""
        if self.conclude is not None:
            return self.conclude(status)
        try:
            self.stop(status, label="os._exit")
        except errors.RecorderError as err:
            diagnostics.report_error(err, self.policy)
        return status

    def finish_at_signal(self, signum: int) -> None:
        """SIGTERM while recording: finish the trace (the process then dies by the signal)."""
        self.tainted = True  # the signal may have arrived in the middle of a hook
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = str(signum)
        try:
            self.stop(128 + signum, label="signal %s" % name)
        except errors.RecorderError as err:
            diagnostics.report_error(err, self.policy)
            return
        if self.failed is not None and self.conclude is not None and self.policy.on_recorder_error == "abort":
            diagnostics.report_error(self.failed, self.policy)

    def counts(self) -> dict:
        """This session's counters, keyed as in rewind.metrics()."""
        rec = self.recorder
        if rec is None:
            return {}
        counts = {diagnostics.EVENTS_WRITTEN: rec.events_written(),
                  diagnostics.SCOPES_SKIPPED: rec.scopes_skipped,
                  diagnostics.INTERNAL_ERRORS: self.internal_errors}
        for kind, n in self._value_counts(rec.redactions, rec.encoder.attr_redactions).items():
            counts[diagnostics.counter_key(diagnostics.VALUES_REDACTED, kind=kind)] = n
        for kind, n in self._value_counts(rec.drops, rec.encoder.attr_drops).items():
            counts[diagnostics.counter_key(diagnostics.VALUES_DROPPED, kind=kind)] = n
        if self.detach_reason:
            counts[diagnostics.counter_key(diagnostics.DETACHES, reason=self.detach_reason)] = 1
        if self.recursion_drops:
            counts[diagnostics.counter_key(diagnostics.EVENTS_DROPPED, reason="recursion_limit")] = \
                self.recursion_drops
        return counts

    def _report_metrics(self) -> None:
        """Add this session's counters to the process metrics sink (rewind.metrics())."""
        try:
            diagnostics.add_counts(self.counts())
        except Exception:  # noqa: BLE001, S110 - a custom metrics sink must not fail the recording
            pass

    @staticmethod
    def _value_counts(per_kind: dict, attrs: int) -> dict:
        counts = dict(per_kind)
        if attrs:
            counts["attr"] = counts.get("attr", 0) + attrs
        return counts

    def _publish(self) -> None:
        """Rename the staging directory into place, replacing an older trace there."""
        old = None
        try:
            if os.path.isdir(self.target):
                old = self.staging + ".old"
                os.rename(self.target, old)
            os.rename(self.staging, self.target)
        except OSError as exc:
            if old and not os.path.exists(self.target):
                try:
                    os.rename(old, self.target)  # put the previous trace back
                except OSError:
                    pass
            raise errors.environment(errors.ERR_TRACE_DIR_CREATE_FAILED, "cannot move the trace into place",
                                     path=self.target, reason=exc.strerror or str(exc)) from exc
        if old:
            _remove_tree(old)

    def _discard(self) -> None:
        if self.sink is not None:
            self.sink.abandon()
        if self.staging and os.path.isdir(self.staging):
            _remove_tree(self.staging)

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
                "core": getattr(rec, "core", "python"),  # the per-line core: "c" (accelerator) or "python"
                "format": self.format,
            },
            "process_exit_status": {"code": exit_code,
                                    "label": self.exit_label or exit_label(exit_code, exception)},
            "trace_filter": {
                "filters": self.chain.provenance(),
                "stats": {"scopes_skipped": rec.scopes_skipped, "value_redactions": redactions,
                          "value_drops": drops},
            },
            "events": stats,
            # The counters this session adds to rewind.metrics(), under the same keys.
            "metrics": self.counts(),
            "detach_reason": self.detach_reason,
            "started_at": self.started_at,
            "duration_seconds": round(time.time() - self.started_at, 6),
        }
        if self.failed is not None:
            meta["partial"] = True
            meta["error"] = {"code": self.failed.code, "kind": self.failed.kind, "message": str(self.failed)}
        for hook in self.metadata_hooks:
            hook(meta)
        return meta

