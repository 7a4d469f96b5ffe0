"""Run a script or a module as `__main__`, the way `python script.py` / `python -m mod` does.

The target sees the same `sys.argv`, `__name__ == "__main__"`, `sys.path[0]` and working
directory as in a plain run.  Its end (normal, `sys.exit`, an uncaught exception,
KeyboardInterrupt) is returned as a `TargetOutcome` instead of propagating, so that the
trace can be finished before the process exits the same way Python would.
"""
from __future__ import annotations

import builtins
import importlib.machinery
import importlib.util
import os
import sys
import threading
import traceback
import types
from typing import NamedTuple

from . import errors


class Target(NamedTuple):
    kind: str                # "script" or "module"
    name: str                # the script path as given, or the module name
    args: list[str]
    file: str = ""           # absolute path of the code that runs as __main__

    @property
    def argv(self) -> list[str]:
        return [self.name, *self.args]


class TargetOutcome(NamedTuple):
    exit_code: int
    exception: BaseException | None = None
    traceback_text: str | None = None


def resolve_target(kind: str, name: str, args: list[str]) -> Target:
    """Find the target before anything runs; a missing one is a usage error."""
    if kind == "script":
        path = os.path.abspath(name)
        if os.path.isdir(path) and os.path.isfile(os.path.join(path, "__main__.py")):
            path = os.path.join(path, "__main__.py")
        if not os.path.isfile(path):
            raise errors.target("ERR_TARGET_NOT_FOUND", "can't open the script: no such file", path=name)
        return Target("script", name, list(args), path)
    try:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations is not None:
            spec = importlib.util.find_spec(name + ".__main__")
    except (ImportError, ValueError) as exc:
        raise errors.target("ERR_TARGET_NOT_FOUND", "no module named %s" % name, module=name) from exc
    if spec is None or not spec.origin:
        raise errors.target("ERR_TARGET_NOT_FOUND", "no module named %s" % name, module=name)
    return Target("module", name, list(args), os.path.abspath(spec.origin))


def _exit_code(exc: SystemExit) -> int:
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return int(code)  # sys.exit(True) (unittest) / IntEnum (pytest.ExitCode): a plain int
    return 1  # SystemExit("message"): Python prints the message and exits with 1


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _is_runner_frame(filename: str) -> bool:
    return filename.startswith(_PACKAGE_DIR + os.sep) or os.path.basename(filename) == "runpy.py"


def _user_traceback(exc: BaseException) -> str:
    """The traceback Python would print: without the frames of rewind's own runner, nor
    those of a hook callback the exception passed through (a KeyboardInterrupt can be
    raised while a callback runs)."""
    tb = exc.__traceback__
    while tb is not None and _is_runner_frame(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    te = traceback.TracebackException(type(exc), exc, tb)
    te.stack[:] = [f for f in te.stack if not f.filename.startswith(_PACKAGE_DIR + os.sep)]
    return "".join(te.format())


def run_target(target: Target) -> TargetOutcome:
    """Run the target in this process as `__main__`; never raises for the target's own end."""
    saved_argv = sys.argv
    saved_path0 = sys.path[0] if sys.path else None
    saved_main = sys.modules.get("__main__")
    try:
        if target.kind == "script":
            sys.argv = target.argv
            sys.path[0] = os.path.dirname(os.path.realpath(target.file))
            return _run_script(target)
        sys.argv = [target.file, *target.args]
        sys.path[0] = os.getcwd()
        return _run_module(target)
    finally:
        # Only the parts a plain run would never see again are restored.
        sys.argv = saved_argv
        if saved_path0 is not None:
            sys.path[0] = saved_path0
        if saved_main is not None:
            sys.modules["__main__"] = saved_main


def _outcome_of(exc: BaseException) -> TargetOutcome:
    if isinstance(exc, SystemExit):
        return TargetOutcome(_exit_code(exc), exc)
    if isinstance(exc, KeyboardInterrupt):
        return TargetOutcome(130, exc, _user_traceback(exc))
    return TargetOutcome(1, exc, _user_traceback(exc))


def _run_script(target: Target) -> TargetOutcome:
    main = types.ModuleType("__main__")
    main.__file__ = target.file
    main.__builtins__ = builtins
    main.__loader__ = importlib.machinery.SourceFileLoader("__main__", target.file)
    main.__spec__ = None
    main.__package__ = None
    main.__cached__ = None
    sys.modules["__main__"] = main
    try:
        with open(target.file, "rb") as f:
            source = f.read()
        code = compile(source, target.file, "exec", dont_inherit=True)
        exec(code, main.__dict__)
    except BaseException as exc:  # noqa: BLE001 - the target's end, reported as an outcome
        return _outcome_of(exc)
    finally:
        _wait_for_threads()
    return TargetOutcome(0)


def _run_module(target: Target) -> TargetOutcome:
    import runpy
    try:
        runpy.run_module(target.name, run_name="__main__", alter_sys=True)
    except BaseException as exc:  # noqa: BLE001
        return _outcome_of(exc)
    finally:
        _wait_for_threads()
    return TargetOutcome(0)


def _wait_for_threads() -> None:
    """Join non-daemon threads as the interpreter does at exit, so their work is recorded."""
    current = threading.current_thread()
    for thread in threading.enumerate():
        if thread is not current and not thread.daemon and thread is not threading.main_thread():
            try:
                thread.join()
            except RuntimeError:
                pass
