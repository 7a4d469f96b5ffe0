"""The Python API: `start`, `stop`, `trace`, `is_tracing`, `flush` (contract section 2)."""
from __future__ import annotations

import contextlib
import os
import sys
import threading
from typing import Iterator, Sequence

from . import diagnostics, errors
from .policy import resolve_policy
from .session import Session

DEFAULT_TRACE_DIR = "trace-out"

_lock = threading.Lock()
_current: Session | None = None


def _filter_specs(trace_filter: str | os.PathLike | Sequence[str | os.PathLike] | None) -> list[str]:
    if trace_filter is None:
        return []
    if isinstance(trace_filter, (str, os.PathLike)):
        return [os.fspath(trace_filter)]
    return [os.fspath(spec) for spec in trace_filter]


def start(trace_dir: str | os.PathLike | None = None, *, format: str | None = None,
          trace_filter: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
          activation_path: str | None = None, **policy_overrides: object) -> Session:
    """Start recording this process into `trace_dir`; returns the session.

    The function that calls `start` (and the functions that called it) are recorded from
    their next line on, as well as every call made from now on.  A recording that `stop`
    does not end is finished at interpreter exit, with the program's exit status.

    Policy keywords (on_recorder_error=..., keep_partial_trace=..., max_depth=...) override
    the environment for this session.
    """
    global _current
    caller = sys._getframe(1)
    while caller is not None and caller.f_code.co_filename in (__file__, contextlib.__file__):
        caller = caller.f_back
    toplevel = caller.f_code.co_filename if caller is not None else (sys.argv[0] if sys.argv else "")
    with _lock:
        if _current is not None and not _current.finished:
            raise errors.usage("ERR_ALREADY_TRACING", "a recording is already in progress",
                               trace_dir=_current.target)
        policy = resolve_policy(policy_overrides, source="api")
        diagnostics.setup_logging(policy)
        session = Session(
            trace_dir or os.environ.get("CODETRACER_PYTHON_RECORDER_OUT_DIR") or DEFAULT_TRACE_DIR,
            policy=policy,
            format=format or os.environ.get("CODETRACER_FORMAT") or "json",
            trace_filter=_filter_specs(trace_filter),
            activation_path=activation_path,
            program=sys.argv[0] if sys.argv else toplevel,
            args=sys.argv[1:],
            script_dir=None if toplevel.startswith("<") else os.path.dirname(os.path.abspath(toplevel)),
            toplevel_path=toplevel,
        )
        session.start()
        _current = session
    from . import autostart  # it imports this module
    autostart.finish_at_exit(session)  # if the program never calls stop()
    if caller is not None:
        session.record_running(caller)
    return session


def begin(session: Session) -> Session:
    """Start an already built session as this process's current recording.

    For the recordings rewind starts itself (the CLI, auto-start, followed child processes,
    the pytest plugin), so that `start()` refuses a second one and `is_tracing()` sees it.
    """
    global _current
    with _lock:
        if _current is not None and not _current.finished:
            raise errors.usage("ERR_ALREADY_TRACING", "a recording is already in progress",
                               trace_dir=_current.target)
        session.start()
        _current = session
    return session


def release(session: Session) -> None:
    """Stop treating `session` as the current recording (before finishing it directly)."""
    global _current
    with _lock:
        if _current is session:
            _current = None


def _reset_lock_in_child() -> None:
    # A forked child has one thread: a lock another thread held at fork time is free here.
    global _lock
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_lock_in_child)


def stop(exit_code: int | None = 0) -> str | None:
    """Finish the recording; returns the trace directory (None if nothing was kept)."""
    global _current
    with _lock:
        session, _current = _current, None
    if session is None:
        return None
    # The functions around the stop() go on running: their calls end here, in the trace.
    return session.stop(exit_code, still_running="<running when recording stopped>")


def is_tracing() -> bool:
    session = _current
    return session is not None and not session.finished


def flush() -> None:
    """Write everything recorded so far to the (staged) trace file."""
    session = _current
    if session is not None:
        session.flush()


def current_session() -> Session | None:
    return _current


@contextlib.contextmanager
def trace(trace_dir: str | os.PathLike | None = None, **options: object) -> Iterator[Session]:
    """`with rewind.trace("out"): work()` records the block: its lines and its calls."""
    session = start(trace_dir, **options)
    try:
        yield session
    except BaseException as exc:
        if session is _current:
            stop(1 if not isinstance(exc, SystemExit) else 0)
        raise
    else:
        if session is _current:
            stop(0)
