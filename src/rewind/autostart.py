"""Auto-start: `CODETRACER_TRACE=DIR` records a whole Python process (docs/auto-start.md).

`rewind-autostart.pth`, installed into site-packages by `pip install` (setup.py), holds one
line that costs a dictionary look-up when the variable is unset and imports this module only
when it is set.  Then, still during interpreter start-up:

- `python script.py`: a session starts at once, activated when the script's code starts
  running (so the rest of start-up is not recorded).
- `python -m module`: the session starts when `runpy` runs the module (start-up code and the
  module lookup are not recorded).
- `python -c ...`, the REPL, stdin: a session starts at once.
- the `rewind` command itself is never auto-recorded (it records on its own terms, and its
  tools must not write over the trace they read); it drops the variable for its children.

The trace is finished at interpreter exit (atexit: after non-daemon threads were joined and
the program's own atexit handlers ran) with the exit status, taken from, latest first: an
uncaught exception (sys.excepthook: status 1, Error event with the traceback), a SystemExit
leaving the outermost recorded frame, `runpy`'s module or `sys.exit()` in the main thread.
`os._exit` and SIGTERM are finished by the session itself (exits.py).

Without `CODETRACER_FOLLOW_CHILDREN`, the variable is removed from `os.environ`, so a Python
child process does not write over this trace; with it, children are recorded beside it
(children.py).  `{pid}` in DIR is replaced by the process id.
"""
from __future__ import annotations

import atexit
import os
import sys
import threading
import traceback

from . import api, children, diagnostics, errors
from .policy import env_flag, recording_disabled, resolve_policy
from .session import Session

ENV_TRACE = children.ENV_TRACE
_THIS_FILE = os.path.abspath(__file__)
_FRAMEWORK_SCRIPTS = {"pytest": "pytest", "py.test": "pytest"}
# Helper processes of multiprocessing that run no user code: not worth a trace each.
_HELPER_COMMANDS = ("multiprocessing.resource_tracker", "multiprocessing.semaphore_tracker")


class _ProcessRecording:
    """The recording of this process as a whole, and how the process ended."""

    def __init__(self, session: Session):
        self.session = session
        self.pid = os.getpid()
        self.exit_code: int | None = None
        self.exception: BaseException | None = None
        self.traceback_text: str | None = None


_recording: _ProcessRecording | None = None
_hooks_installed = False
_started_in_pid: int | None = None
_previous_excepthook = None
_real_sys_exit = sys.exit


# -- entry points -------------------------------------------------------------------------

def from_pth() -> None:
    """Called by rewind-autostart.pth when CODETRACER_TRACE is set.  Never raises: a problem
    is reported on stderr and the program runs unrecorded."""
    global _started_in_pid
    if _started_in_pid == os.getpid():
        return  # the .pth was processed twice (a venv's lib64 -> lib link lists it twice)
    _started_in_pid = os.getpid()
    try:
        _start_from_env()
    except errors.RecorderError as err:
        diagnostics.report_error(err, None)
    except Exception as exc:  # noqa: BLE001 - never break the program's start-up
        _say("auto-start failed: %s: %s" % (type(exc).__name__, exc))


def start_child(settings: dict, start: str) -> None:
    """In a forked child of a followed session (children.py): record it from here on."""
    trace_dir = os.path.join(settings["root"], str(os.getpid()))
    parent = settings.get("parent", {})
    toplevel = parent.get("toplevel_path") or (sys.argv[0] if sys.argv else "")
    _begin(trace_dir, settings=settings, start=start, toplevel_path=toplevel, activation_path=None,
           program=parent.get("program") or "", args=parent.get("args") or [],
           script_dir=os.path.dirname(toplevel) if os.path.isabs(toplevel) else os.getcwd())


def current_session() -> Session | None:
    rec = _recording
    return rec.session if rec is not None and rec.pid == os.getpid() else None


# -- start --------------------------------------------------------------------------------

def _start_from_env() -> None:
    raw = os.environ.get(ENV_TRACE, "").strip()
    if not raw:
        return
    settings = children.inherited()
    if _is_rewind_command():
        os.environ.pop(ENV_TRACE, None)
        os.environ.pop(children.ENV_CHILD, None)
        return
    if settings is None and not env_flag(children.ENV_FOLLOW_CHILDREN):
        os.environ.pop(ENV_TRACE, None)  # a Python child must not write over this trace
    if recording_disabled():
        _say("recording disabled by CODETRACER_PYTHON_RECORDER_DISABLED; running without a trace")
        return
    if _is_helper_process():
        return
    trace_dir = raw.replace(children.PID_PLACEHOLDER, str(os.getpid()))
    start = "exec" if settings is not None else None
    argv0 = sys.argv[0] if sys.argv else ""
    if argv0 == "-m":
        _defer_to_runpy(trace_dir, settings, start)
    elif argv0 == "-c":
        _begin(trace_dir, settings=settings, start=start, toplevel_path="<string>", activation_path=None,
               program="-c", args=sys.argv[1:], script_dir=os.getcwd())
    elif argv0 in ("", "-"):
        _begin(trace_dir, settings=settings, start=start, toplevel_path="<stdin>", activation_path=None,
               program=argv0 or "<stdin>", args=sys.argv[1:], script_dir=os.getcwd())
    else:
        script = os.path.abspath(argv0)
        if os.path.isdir(script) and os.path.isfile(os.path.join(script, "__main__.py")):
            script = os.path.join(script, "__main__.py")
        framework = _FRAMEWORK_SCRIPTS.get(os.path.basename(argv0))
        _begin(trace_dir, settings=settings, start=start, toplevel_path=script, activation_path=script,
               program=argv0, args=sys.argv[1:], script_dir=os.path.dirname(script), framework=framework)
    _install_exit_hooks()


def _begin(trace_dir: str, *, settings: dict | None, start: str | None, toplevel_path: str,
           activation_path: str | None, program: str, args: list, script_dir: str,
           framework: str | None = None) -> Session:
    if settings is not None:
        overrides = dict(settings.get("policy") or {})
        fmt = settings.get("format")
        trace_filter = list(settings.get("trace_filter") or ())
        framework = settings.get("framework")
    else:
        overrides, fmt, trace_filter = {}, None, []
    policy = resolve_policy(overrides, source="api")
    diagnostics.setup_logging(policy)
    session = Session(trace_dir, policy=policy, format=fmt or os.environ.get("CODETRACER_FORMAT") or "json",
                      trace_filter=trace_filter, activation_path=activation_path, program=program, args=args,
                      script_dir=script_dir, framework=framework, toplevel_path=toplevel_path)
    api.begin(session)
    finish_at_exit(session)
    if settings is not None:
        children.adopt(session, settings, start or "exec")
    if settings is not None or env_flag(children.ENV_FOLLOW_CHILDREN):
        # A followed child follows its own children too (into its own T.children/).
        children.follow(session, settings=children.settings_of(session) if settings is not None else None)
    return session


def _defer_to_runpy(trace_dir: str, settings: dict | None, start: str | None) -> None:
    """`python -m module`: start when runpy runs the module, so the trace begins there."""
    import runpy
    real = runpy._run_module_as_main

    def _run_module_as_main(mod_name, alter_argv=True):
        runpy._run_module_as_main = real
        try:
            origin = _module_origin(mod_name)
            _begin(trace_dir, settings=settings, start=start, toplevel_path=origin or mod_name,
                   activation_path=None, program=mod_name, args=sys.argv[1:],
                   script_dir=os.path.dirname(origin) if origin else os.getcwd(),
                   framework=mod_name if mod_name in ("pytest", "unittest") else None)
        except errors.RecorderError as err:
            diagnostics.report_error(err, None)
        except Exception as exc:  # noqa: BLE001 - the module runs, unrecorded
            _say("auto-start failed: %s: %s" % (type(exc).__name__, exc))
        try:
            return real(mod_name, alter_argv)
        except SystemExit as exc:
            _note_end(exc)
            raise

    runpy._run_module_as_main = _run_module_as_main


def _module_origin(name: str) -> str | None:
    """The file `-m name` runs, found without importing anything."""
    from importlib.machinery import PathFinder
    path = None
    spec = None
    parts = name.split(".")
    for i in range(len(parts)):
        spec = PathFinder.find_spec(".".join(parts[:i + 1]), path)
        if spec is None:
            return None
        path = spec.submodule_search_locations
    if spec is None:
        return None
    if spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = os.path.join(location, "__main__.py")
            if os.path.isfile(candidate):
                return candidate
        return None
    return spec.origin if spec.origin and os.path.isfile(spec.origin) else None


def _orig_argv() -> list[str]:
    return list(getattr(sys, "orig_argv", None) or [])


def _main_module() -> str | None:
    """With `-m`, the module name, read from the interpreter's own command line."""
    argv = _orig_argv()
    for i, arg in enumerate(argv[1:], 1):
        if arg == "-m":
            return argv[i + 1] if i + 1 < len(argv) else None
        if arg.startswith("-m") and not arg.startswith("--"):
            return arg[2:]
    return None


def _is_rewind_command() -> bool:
    argv0 = sys.argv[0] if sys.argv else ""
    if os.path.basename(argv0) in ("rewind", "rewind.exe", "rewind-script.py"):
        return True
    if argv0 == "-m":
        module = _main_module() or ""
        return module == "rewind" or module.startswith("rewind.")
    return False


def _is_helper_process() -> bool:
    if not sys.argv or sys.argv[0] != "-c":
        return False
    argv = _orig_argv()
    try:
        command = argv[argv.index("-c", 1) + 1]
    except (ValueError, IndexError):
        return False
    return any(helper in command for helper in _HELPER_COMMANDS)


# -- the end ------------------------------------------------------------------------------

def finish_at_exit(session: Session) -> None:
    """Finish `session` at interpreter exit if it still records then, with the exit status
    (see above): an auto-started one, or one `rewind.start()` began and nothing stopped."""
    global _recording
    _recording = _ProcessRecording(session)
    _watch_outermost_unwind(session)
    _install_exit_hooks()


def _install_exit_hooks() -> None:
    """Once per process (a forked child inherits them)."""
    global _hooks_installed, _previous_excepthook
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(_at_exit)  # registered first, so it runs last
    # _excepthook formats the traceback, which on 3.13 imports tokenize (through linecache)
    # the first time, and tokenize builds a namedtuple with eval(): any eval after an
    # unhandled KeyboardInterrupt makes CPython forget it, and the process would exit with 1
    # instead of by SIGINT (130).  So tokenize is imported now.
    import tokenize  # noqa: F401
    _previous_excepthook = sys.excepthook
    sys.excepthook = _excepthook
    sys.exit = _sys_exit


def _mine() -> _ProcessRecording | None:
    rec = _recording
    if rec is None or rec.pid != os.getpid() or rec.session.finished:
        return None
    return rec


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return int(code)
    return 1  # SystemExit("message"): Python prints it and exits with 1


def _note_end(exc: BaseException) -> None:
    rec = _mine()
    if rec is None:
        return
    if isinstance(exc, SystemExit):
        rec.exit_code, rec.exception, rec.traceback_text = _exit_code(exc.code), exc, None
    else:
        rec.exit_code = 130 if isinstance(exc, KeyboardInterrupt) else 1
        rec.exception, rec.traceback_text = exc, None


def _watch_outermost_unwind(session: Session) -> None:
    """Note an exception leaving the outermost recorded frame of the main thread (such as
    `raise SystemExit(main())` at a script's top level, which no hook reports)."""
    rec = getattr(session, "recorder", None)
    original = getattr(rec, "leave_exception", None)
    if original is None:
        return
    main_tid = rec.main_tid

    def leave_exception(ts, exc):
        try:
            if ts.tid == main_tid and len(ts.stack) == 1:
                _note_end(exc)
        except Exception:  # noqa: BLE001, S110 - only a better exit status is at stake
            pass
        return original(ts, exc)

    rec.leave_exception = leave_exception


def _sys_exit(status=None):
    if threading.current_thread() is threading.main_thread():
        _note_end(SystemExit(status))
    _real_sys_exit(status)


def _excepthook(exc_type, exc, tb):
    own = _without_own_frames(tb)
    if own is not tb and isinstance(exc, BaseException) and exc.__traceback__ is tb:
        exc.__traceback__ = own  # Python prints the exception's own traceback
    rec = _mine()
    if rec is not None:
        rec.exit_code = 130 if issubclass(exc_type, KeyboardInterrupt) else 1
        rec.exception = exc
        rec.traceback_text = "".join(traceback.format_exception(exc_type, exc, own))
    hook = _previous_excepthook or sys.__excepthook__
    hook(exc_type, exc, own)


def _without_own_frames(tb):
    """Python prints the traceback from the first frame: skip the runpy wrapper above."""
    while tb is not None and tb.tb_frame.f_code.co_filename == _THIS_FILE:
        tb = tb.tb_next
    return tb


def _at_exit() -> None:
    rec = _mine()
    if rec is None:
        return
    finish(rec)


def finish(rec: _ProcessRecording) -> None:
    session = rec.session
    api.release(session)
    code = rec.exit_code if rec.exit_code is not None else 0
    exc = rec.exception
    text = rec.traceback_text
    if text is None and exc is not None and not isinstance(exc, SystemExit):
        text = "".join(traceback.format_exception(type(exc), exc, _without_own_frames(exc.__traceback__)))
    try:
        session.stop(code, exc, text)
    except errors.RecorderError as err:
        diagnostics.report_error(err, session.policy)
        return
    except Exception as exc2:  # noqa: BLE001 - the interpreter is exiting: say it, nothing more
        _say("cannot finish the trace: %s: %s" % (type(exc2).__name__, exc2))
        return
    if session.failed is not None and session.policy.on_recorder_error == "abort":
        diagnostics.report_error(session.failed, session.policy)


def _say(message: str) -> None:
    try:
        stream = sys.__stderr__ or sys.stderr
        stream.write("rewind: %s\n" % message)
        stream.flush()
    except Exception:  # noqa: BLE001, S110
        pass
