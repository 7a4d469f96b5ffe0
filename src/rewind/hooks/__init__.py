"""Interpreter hooks: the backends that turn interpreter events into recorder calls."""
from __future__ import annotations

import os
import sys

from .. import errors

BACKENDS = ("monitoring", "settrace")


def choose_backend(requested: str | None = None) -> str:
    """`sys.monitoring` where it exists (3.12+), else `sys.settrace`.

    REWIND_BACKEND=settrace forces the legacy hook (used to prove both write the same trace).
    """
    name = requested or os.environ.get("REWIND_BACKEND") or ""
    if not name:
        return "monitoring" if hasattr(sys, "monitoring") else "settrace"
    if name not in BACKENDS:
        raise errors.usage("ERR_INVALID_POLICY_VALUE", "unknown interpreter hook backend",
                           variable="REWIND_BACKEND", value=name, allowed=", ".join(BACKENDS))
    if name == "monitoring" and not hasattr(sys, "monitoring"):
        raise errors.usage("ERR_INVALID_POLICY_VALUE", "sys.monitoring needs Python 3.12 or newer",
                           variable="REWIND_BACKEND", value=name)
    return name


def make_backend(name: str, recorder, guard, activation_file: str | None):
    if name == "monitoring":
        from .monitoring import MonitoringBackend
        return MonitoringBackend(recorder, guard, activation_file)
    from .settrace import SettraceBackend
    return SettraceBackend(recorder, guard, activation_file)


def c_core(recorder):
    """(the accelerator's `_speedups` module, the recorder's C core) when the recorder runs
    the C core, else (None, None): the backends then register their C callbacks."""
    core = getattr(recorder, "_core", None)
    if core is None:
        return None, None
    from ..accelerator import _speedups
    return _speedups, core


def with_headroom(recorder, callback):
    """`callback` as the interpreter is to call it: with the C core, through the accelerator's
    WithHeadroom, which gives the recorder's Python code room above the program's recursion
    limit (accelerator/headroom.h); with the pure-Python core, as it is."""
    speedups, _ = c_core(recorder)
    return callback if speedups is None else speedups.WithHeadroom(callback)


def traced_running_frames(recorder, frame) -> list:
    """(CodeInfo, frame) of `frame` and its callers that the filter traces, outermost first:
    the frames already running when the API starts recording, which the backends adopt."""
    running = []
    while frame is not None:
        running.append(frame)
        frame = frame.f_back
    found = []
    for frame in reversed(running):
        info = recorder.code_info(frame.f_code, frame)
        if info.traced:
            found.append((info, frame))
    return found
