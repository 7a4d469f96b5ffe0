"""Ways a recorded process can end without returning to rewind: `os._exit` and SIGTERM.

While a session records (and only in the process that started it):

- ``os._exit`` is wrapped: the trace is finished first (the toplevel returns the status the
  program passed), then the real ``os._exit`` runs.  A forked child calling ``os._exit``
  (multiprocessing does) goes straight through: the pid differs.  Code that took a
  reference before recording started (``from os import _exit``) is not wrapped.
- SIGTERM: if the program has the default disposition when recording starts, a handler is
  installed that finishes the trace (from the file as written: the signal may arrive in
  the middle of a hook), restores SIG_DFL and sends SIGTERM again, so the process dies
  by the signal exactly as it would have without rewind.  A program that installs its own
  handler replaces ours; an ignored or handled SIGTERM is left alone.
- SIGINT needs nothing here: Python's default handler raises KeyboardInterrupt, which ends
  the program through the normal path (the runner catches it, the trace is finished).

Both are removed when the session stops.
"""
from __future__ import annotations

import os
import signal
import threading

_real_exit = os._exit
_session = None
_sigterm_installed = False


def install(session) -> None:
    global _session, _sigterm_installed
    _session = session
    os._exit = _exit
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGTERM"):
        try:
            # Ours already: a forked child inherits the parent's handler, then records itself.
            if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, _on_sigterm):
                signal.signal(signal.SIGTERM, _on_sigterm)
                _sigterm_installed = True
        except (ValueError, OSError):
            pass


def uninstall(session) -> None:
    global _session, _sigterm_installed
    if _session is not session:
        return
    _session = None
    if os._exit is _exit:
        os._exit = _real_exit
    if _sigterm_installed:
        _sigterm_installed = False
        try:
            if (threading.current_thread() is threading.main_thread()
                    and signal.getsignal(signal.SIGTERM) is _on_sigterm):
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
        except (ValueError, OSError):
            pass


def _active():
    session = _session
    if session is None or session.finished or os.getpid() != session.pid:
        return None
    return session


def _exit(status: int) -> None:
    """Stand-in for os._exit while recording: finish the trace, then really exit."""
    if not isinstance(status, int):
        _real_exit(status)  # the real one raises the TypeError the program would see
    session = _active()
    code = status
    if session is not None:
        try:
            code = session.finish_at_os_exit(status)
        except BaseException:  # noqa: BLE001 - the process is leaving whatever happens
            pass
    _real_exit(code)


def _on_sigterm(signum, frame) -> None:
    session = _active()
    if session is not None:
        try:
            session.finish_at_signal(signum)
        except BaseException:  # noqa: BLE001, S110 - die by the signal whatever happens
            pass
    try:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    except OSError:
        pass
    _real_exit(128 + signum)  # only if the signal could not be re-raised
