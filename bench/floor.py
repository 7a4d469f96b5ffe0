"""The locals-read floor: the cheapest possible "recorder" that still looks at every variable.

    python bench/floor.py SCRIPT [ARGS...]
    python bench/floor.py -m MODULE [ARGS...]

Runs the program (as `python SCRIPT` would: sys.argv, sys.path[0], __name__ == "__main__")
with one interpreter hook whose per-line callback only reads the frame's locals
(`for name, value in frame.f_locals.items(): pass`) and writes nothing:
- Python 3.12+: a sys.monitoring LINE callback (frame from sys._getframe(1)), switched on per
  code object (local events) at its first PY_START, so skipped code never calls back again;
- Python 3.10/3.11: sys.settrace / threading.settrace with a local trace function.

Code rewind's builtin filter skips is skipped here too (the standard library, synthetic
`<...>` file names, this file), and skipped code is disabled the way rewind does it
(no local events on 3.12+, no local trace function below), so the floor runs
over the same lines a rewind recording does. A recorder cannot do less per line than this
and still produce the full `Value` snapshot the debugger needs (trace-format.md section 2):
`rewind / floor` in the benchmark is the price of encoding and writing.
"""
from __future__ import annotations

import os
import runpy
import sys
import sysconfig
import threading

_HERE = os.path.abspath(__file__)


def _stdlib_prefixes() -> tuple[str, ...]:
    paths = set()
    for key in ("stdlib", "platstdlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            paths.add(os.path.realpath(path) + os.sep)
            paths.add(os.path.abspath(path) + os.sep)
    return tuple(sorted(paths))


_STDLIB = _stdlib_prefixes()
_SITE = (os.sep + "site-packages" + os.sep, os.sep + "dist-packages" + os.sep)


def traced_file(filename: str) -> bool:
    """Would rewind's builtin-default filter record code from this file?"""
    if not filename or filename.startswith("<") or filename == _HERE:
        return False
    if filename.startswith(_STDLIB) and not any(s in filename for s in _SITE):
        return False
    return True


def _install_monitoring() -> None:
    mon = sys.monitoring
    tool = next((t for t in range(6) if mon.get_tool(t) is None), None)
    if tool is None:
        raise SystemExit("floor: no free sys.monitoring tool id")
    mon.use_tool_id(tool, "rewind-bench-floor")
    getframe = sys._getframe
    disable = mon.DISABLE
    line_event = mon.events.LINE
    set_local_events = mon.set_local_events

    def start(code, offset):
        # First call of a code object: LINE events for it only if it is recorded; either way
        # PY_START is disabled for this code, so each code object costs one callback.
        if traced_file(code.co_filename):
            set_local_events(tool, code, line_event)
        return disable

    def line(code, lineno):
        for _name, _value in getframe(1).f_locals.items():
            pass

    mon.register_callback(tool, mon.events.PY_START, start)
    mon.register_callback(tool, line_event, line)
    mon.set_events(tool, mon.events.PY_START)
    # The frame that is already running (the script's module code starts after this) gets
    # its LINE events through PY_START like any other.


def _install_settrace() -> None:
    decisions: dict = {}

    def local(frame, event, arg):
        if event == "line":
            for _name, _value in frame.f_locals.items():
                pass
        return local

    def call(frame, event, arg):
        code = frame.f_code
        keep = decisions.get(code)
        if keep is None:
            keep = decisions[code] = traced_file(code.co_filename)
        return local if keep else None

    threading.settrace(call)
    sys.settrace(call)


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit(__doc__)
    module = None
    if argv[0] == "-m":
        module, args = argv[1], argv[2:]
        sys.argv = [module] + args
    else:
        script = os.path.abspath(argv[0])
        sys.argv = [argv[0]] + argv[1:]
        sys.path[0] = os.path.dirname(os.path.realpath(script))
    if hasattr(sys, "monitoring"):
        _install_monitoring()
    else:
        _install_settrace()
    if module is not None:
        sys.path[0] = os.getcwd()
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    else:
        runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
