"""`sys.settrace` backend (Python 3.10/3.11, and on request on 3.12+).

It maps the legacy trace events onto the same recorder calls as the sys.monitoring
backend, so both write the same trace for the same program:

- 'call' of a new frame is a call; of a suspended generator/coroutine frame it is a
  resumption, emitted when the next event shows whether it was a plain resume or a throw;
- 'line' is a step, except a repeat of the frame's previous line (a backward jump within
  one line), which sys.monitoring does not report;
- 'return' is a return or a yield, unless the frame is being left by an exception, which
  the legacy API reports as a 'return' of None after an 'exception' event.

Skipped code gets no local trace function, so it costs one global call per frame.
"""
from __future__ import annotations

import dis
import sys
import threading
import types
from typing import Callable

from ..recorder import ActiveFrame, suspended_line_of
from . import c_core, traced_running_frames

_RESUME = dis.opmap.get("RESUME", -1)
_RETURN_OPS = frozenset(dis.opmap[name] for name in ("RETURN_VALUE", "RETURN_CONST") if name in dis.opmap)
_YIELD_OP = dis.opmap["YIELD_VALUE"]


def _is_first_entry(frame) -> bool:
    """True when a 'call' event starts the frame, False when it resumes a suspended one."""
    lasti = frame.f_lasti
    if lasti < 0:
        return True  # 3.10: a new frame has not executed anything yet
    code = frame.f_code.co_code
    # 3.11+: RESUME's low two oparg bits say where it resumes: 0 is the function start.
    return code[lasti] == _RESUME and (code[lasti + 1] & 3) == 0


def _describe(trace_function) -> str:
    """A trace function by its name, without calling its `__repr__` (the program's code)."""
    try:
        if isinstance(trace_function, (types.FunctionType, types.MethodType, types.BuiltinFunctionType)):
            return "%s.%s" % (trace_function.__module__, trace_function.__qualname__)
        kind = type(trace_function)
        return "a %s.%s object" % (kind.__module__, kind.__qualname__)
    except Exception:  # noqa: BLE001 - only a description
        return "another trace function"


class SettraceBackend:
    name = "settrace"

    def __init__(self, recorder, guard: Callable[[BaseException], object], activation_file: str | None = None):
        self.recorder = recorder
        self.guard = guard
        self.activation_file = activation_file
        self.active = activation_file is None
        self._previous = None
        self._previous_threading = None
        self._installed = False
        self._local_of: dict = {}  # ThreadState -> its local trace function (_local_for)
        self._trace = None  # the global trace function installed (_c_global)
        # Whether rewind's trace function had been taken out of sys.gettrace() when recording
        # stopped (set by uninstall), and what was there instead (None: nothing).
        self.displaced = False
        self.displaced_by: str | None = None
        self._install_thread: int | None = None

    def install(self) -> None:
        self._previous = sys.gettrace()
        if self._previous is not None:
            import logging
            logging.getLogger("rewind").warning(
                "another trace function (%r) was active; rewind replaces it while recording", self._previous)
        self._previous_threading = threading.gettrace() if hasattr(threading, "gettrace") else None
        self._installed = True
        self._install_thread = threading.get_ident()
        self._trace = self._c_global()
        threading.settrace(self._trace)
        sys.settrace(self._trace)

    def uninstall(self) -> None:
        if not self._installed:
            return
        self._installed = False
        # Only this thread's function is visible, and a thread that was running before the
        # recording started never had rewind's: check where it was installed.
        current = sys.gettrace()
        if current is not self._trace and threading.get_ident() == self._install_thread:
            # A program that installs its own trace function (coverage's tracer, pdb) takes
            # the place of rewind's: what ran from then on was not recorded. The session says so.
            self.displaced = True
            self.displaced_by = None if current is None else _describe(current)
        sys.settrace(None)
        threading.settrace(None)
        # Frames still running keep their local trace function; make it inert.
        self.recorder = None
        for function in (self._trace, *self._local_of.values()):
            detach = getattr(function, "detach", None)
            if detach is not None:
                detach()

    def adopt(self, frame) -> None:
        """Record `frame` and its traced callers, already running, from their next line on
        (`rewind.start()` in the middle of a function): they get the thread's local trace
        function here, since no 'call' event will come for them."""
        if not self.active:
            return  # with an activation path, recording starts when that file's code runs
        rec = self.recorder
        ts = rec.current_thread_state()
        local = self._local_for(ts)
        for info, running in traced_running_frames(rec, frame):
            running.f_trace = local
            rec.adopt(ts, info, running)

    # -- trace functions -------------------------------------------------------------------

    def _global(self, frame, event, arg):
        if event != "call":
            return None
        try:
            rec = self.recorder
            if rec is None:  # detached
                return None
            code = frame.f_code
            info = rec.code_infos.get(id(code))
            if info is None:
                if not self.active:
                    if code.co_filename != self.activation_file:
                        return None
                    self.active = True
                info = rec.code_info(code, frame)
            if not info.traced or rec.encoder.in_repr:
                return None
            ts = rec.current_thread_state()
            if ts.stack and ts.stack[-1].resume_pending:
                # Another frame starts before the resumed one did anything: a plain resume.
                self._emit_resume(rec, ts, ts.stack[-1], None)
            if _is_first_entry(frame):
                rec.enter(ts, info, frame)
            else:
                # Resumption: whether it is a throw() shows at the next event.
                pending = ActiveFrame(info, frame)
                pending.resume_pending = True
                pending.last_line = suspended_line_of(info, frame)
                ts.stack.append(pending)
            return self._local_for(ts)
        except BaseException as exc:  # noqa: BLE001 - the guard classifies and decides
            self.guard(exc)
            return None

    def _local_for(self, ts):
        """The local trace function of the thread whose state is `ts`.  It knows `ts`, so a
        line costs no thread-local lookup.  Each 'call' event (a resumption too) sets the
        frame's trace function to that of the thread it runs in, so a generator resumed in
        another thread gets the other thread's."""
        local = self._local_of.get(ts)
        if local is None:
            local = self._local_of[ts] = self._c_local(ts, self._make_local(ts))
        return local

    def _c_global(self):
        """The global trace function: with the C core, the accelerator's SettraceGlobal (a
        traced frame's first 'call' without a Python frame, everything else through
        `_global`); else `_global` itself."""
        rec = self.recorder
        speedups, core = c_core(rec)
        if speedups is None:
            return self._global
        return speedups.SettraceGlobal(self._global, rec, self._local_of, self.guard, core, _RESUME)

    def _c_local(self, ts, local):
        """With the C core, the accelerator's SettraceLocal: the line and return events of the
        innermost recorded frame without a Python frame, everything else through `local`."""
        rec = self.recorder
        speedups, core = c_core(rec)
        if speedups is None:
            return local
        return speedups.SettraceLocal(ts, local, rec.line, self.guard, core)

    def _make_local(self, ts):
        backend = self

        def _local(frame, event, arg):
            try:
                rec = backend.recorder
                if rec is None:  # detached
                    return None
                stack = ts.stack
                if not stack:
                    return None
                active = stack[-1]
                if active.frame is not frame:
                    return _local
                if event == "exception" and isinstance(arg[1], (StopIteration, StopAsyncIteration)):
                    # The legacy API reports the StopIteration that ends a delegated generator
                    # or awaited coroutine; sys.monitoring does not (not the program's raise).
                    return _local
                if active.resume_pending:
                    active = backend._emit_resume(rec, ts, active, arg[1] if event == "exception" else None)
                if event == "line":
                    line = frame.f_lineno
                    if line != active.last_line:
                        active.last_line = line
                        rec.line(ts, active, line)
                elif event == "return":
                    if arg is None and backend._left_by_exception(frame, active):
                        rec.leave_exception(ts, active.exception)
                    else:
                        rec.leave(ts, arg)
                    return None
                elif event == "exception":
                    active.exception = arg[1]
                    active.exception_lasti = frame.f_lasti
            except BaseException as exc:  # noqa: BLE001
                backend.guard(exc)
                return None
            return _local

        return _local

    @staticmethod
    def _emit_resume(rec, ts, pending, exception):
        ts.stack.pop()
        active = rec.resume(ts, pending.info, pending.frame, exception, pending.last_line)
        return active

    @staticmethod
    def _left_by_exception(frame, active) -> bool:
        if active.exception is None:
            return False
        op = frame.f_code.co_code[frame.f_lasti] if frame.f_lasti >= 0 else -1
        if op in _RETURN_OPS:
            return False
        if op == _YIELD_OP:
            # At a yield: a thrown-in exception that was not caught leaves from right here.
            return active.exception_lasti == frame.f_lasti
        return True

