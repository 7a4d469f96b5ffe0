"""`sys.monitoring` backend (PEP 669, Python 3.12+).

PY_START is global: its callback decides once per code object (through the recorder and
the filter chain); for skipped code it returns DISABLE so the interpreter never calls us
for that code again, and for traced code it turns on the local events (LINE, PY_RETURN,
PY_YIELD, PY_RESUME) of that code object only.  PY_THROW and PY_UNWIND cannot be local,
so their callbacks look the code up and return at once for code that is not traced.

The frame is taken once at PY_START (or resume) and kept on the thread's stack, so the
per-line callback never has to look it up.
"""
from __future__ import annotations

import sys
from typing import Callable

from .. import errors
from . import c_core, traced_running_frames, with_headroom

# Tool ids in the order we try them: the PEP 669 "free" ids first, never the debugger
# or coverage ids unless everything else is taken.
_CANDIDATE_TOOL_IDS = (4, 3, 2, 5, 1, 0)
TOOL_NAME = "rewind"


class MonitoringBackend:
    name = "sys.monitoring"

    def __init__(self, recorder, guard: Callable[[BaseException], object], activation_file: str | None = None):
        self.recorder = recorder
        self.guard = guard  # called with any exception raised inside a callback
        self.activation_file = activation_file
        self.active = activation_file is None
        self.tool_id: int | None = None
        self._local_codes: list = []

    # -- install / uninstall ---------------------------------------------------------------

    def install(self) -> None:
        mon = sys.monitoring
        for tool_id in _CANDIDATE_TOOL_IDS:
            try:
                mon.use_tool_id(tool_id, TOOL_NAME)
            except ValueError:
                continue
            self.tool_id = tool_id
            break
        else:
            taken = {i: mon.get_tool(i) for i in _CANDIDATE_TOOL_IDS}
            raise errors.environment("ERR_NO_FREE_TOOL_ID",
                                     "no free sys.monitoring tool id: every id rewind may use is taken",
                                     tools=", ".join(f"{i}={n}" for i, n in taken.items()))
        E = mon.events
        tool = self.tool_id
        on_start, on_return = self._call_callbacks()
        mon.register_callback(tool, E.PY_START, on_start)
        mon.register_callback(tool, E.PY_RESUME, with_headroom(self.recorder, self._on_resume))
        mon.register_callback(tool, E.PY_RETURN, on_return)
        mon.register_callback(tool, E.PY_YIELD, on_return)
        mon.register_callback(tool, E.LINE, self._line_callback())
        mon.register_callback(tool, E.PY_THROW, with_headroom(self.recorder, self._on_throw))
        mon.register_callback(tool, E.PY_UNWIND, with_headroom(self.recorder, self._on_unwind))
        # Code that an earlier session disabled with DISABLE must be seen afresh: decisions
        # belong to one session only.
        mon.restart_events()
        mon.set_events(tool, E.PY_START | E.PY_THROW | E.PY_UNWIND)

    def uninstall(self) -> None:
        if self.tool_id is None:
            return
        mon = sys.monitoring
        tool = self.tool_id
        self.tool_id = None
        try:
            mon.set_events(tool, 0)
            for code in self._local_codes:
                mon.set_local_events(tool, code, 0)
            E = mon.events
            for event in (E.PY_START, E.PY_RESUME, E.PY_RETURN, E.PY_YIELD, E.LINE, E.PY_THROW, E.PY_UNWIND):
                mon.register_callback(tool, event, None)
        finally:
            self._local_codes = []
            mon.free_tool_id(tool)

    def adopt(self, frame) -> None:
        """Record `frame` and its traced callers, already running, from their next line on
        (`rewind.start()` in the middle of a function): their local events are turned on
        here, since no PY_START will come for them."""
        if not self.active:
            return  # with an activation path, recording starts when that file's code runs
        rec = self.recorder
        ts = rec.current_thread_state()
        E = sys.monitoring.events
        for info, running in traced_running_frames(rec, frame):
            if info.code not in self._local_codes:
                self._local_codes.append(info.code)
                sys.monitoring.set_local_events(self.tool_id, info.code,
                                                E.LINE | E.PY_RETURN | E.PY_YIELD | E.PY_RESUME)
            rec.adopt(ts, info, running)

    # -- callbacks -------------------------------------------------------------------------
    # Each callback is guarded: an exception inside rewind never reaches the program
    # unless the policy says abort (then `guard` re-raises a classified error).

    def _on_start(self, code, offset):
        try:
            rec = self.recorder
            if rec.encoder.in_repr:
                return None
            info = rec.code_infos.get(id(code))
            if info is None:
                if not self.active:
                    if code.co_filename != self.activation_file:
                        return sys.monitoring.DISABLE
                    self._activate()
                info = rec.code_info(code, sys._getframe(1))
                if info.traced:
                    self._local_codes.append(code)
                    E = sys.monitoring.events
                    sys.monitoring.set_local_events(self.tool_id, code,
                                                    E.LINE | E.PY_RETURN | E.PY_YIELD | E.PY_RESUME)
            if not info.traced:
                return sys.monitoring.DISABLE
            rec.enter(rec.current_thread_state(), info, sys._getframe(1))
        except BaseException as exc:  # noqa: BLE001 - the guard classifies and decides
            return self.guard(exc)
        return None

    def _call_callbacks(self):
        """The PY_START and PY_RETURN/PY_YIELD callbacks: `_on_start` and `_on_return`, or
        with the C core, C callables doing the same (the C PY_START one calls `_on_start`
        for anything but a known, traced code object on a thread already recording)."""
        rec = self.recorder
        speedups, core = c_core(rec)
        if speedups is None:
            return self._on_start, self._on_return
        return (speedups.MonitorStart(rec, self._on_start, self.guard, core),
                speedups.MonitorReturn(rec, self.guard, core))

    def _activate(self) -> None:
        self.active = True
        # Code seen before activation was disabled; let it report again.
        sys.monitoring.restart_events()

    def _on_resume(self, code, offset):
        try:
            rec = self.recorder
            info = rec.code_infos.get(id(code))
            if info is not None and info.traced:
                rec.resume(rec.current_thread_state(), info, sys._getframe(1))
        except BaseException as exc:  # noqa: BLE001
            return self.guard(exc)
        return None

    def _on_throw(self, code, offset, exception):
        try:
            rec = self.recorder
            info = rec.code_infos.get(id(code))
            if info is not None and info.traced:
                rec.resume(rec.current_thread_state(), info, sys._getframe(1), exception)
        except BaseException as exc:  # noqa: BLE001
            self.guard(exc)

    def _line_callback(self):
        """The LINE callback, the hottest path: everything it needs is bound as a default
        argument (a local variable) instead of looked up on `self` at every line.  With the
        C core it is a C callable doing the same (no Python frame per line)."""
        rec = self.recorder
        speedups, core = c_core(rec)
        if speedups is not None:
            return speedups.MonitorLine(rec.tls, rec.line, self.guard, core)

        def on_line(code, line, tls=self.recorder.tls, record_line=self.recorder.line, guard=self.guard):
            try:
                ts = tls.state
            except AttributeError:
                return None  # a thread with no recorded frame
            try:
                if ts.stack:
                    active = ts.stack[-1]
                    if active.info.code is code:
                        record_line(ts, active, line)
            except BaseException as exc:  # noqa: BLE001
                return guard(exc)
            return None

        return on_line

    def _on_return(self, code, offset, value):
        try:
            rec = self.recorder
            ts = getattr(rec.tls, "state", None)
            if ts is not None and ts.stack and ts.stack[-1].info.code is code:
                rec.leave(ts, value)
        except BaseException as exc:  # noqa: BLE001
            return self.guard(exc)
        return None

    def _on_unwind(self, code, offset, exception):
        try:
            rec = self.recorder
            ts = getattr(rec.tls, "state", None)
            if ts is not None and ts.stack and ts.stack[-1].info.code is code:
                rec.leave_exception(ts, exception)
        except BaseException as exc:  # noqa: BLE001
            self.guard(exc)
