"""Auto-start: CODETRACER_TRACE=DIR and rewind's start-up hook record a whole interpreter run,
finished at exit with the program's status (docs/auto-start.md)."""
from __future__ import annotations

import sys

import pytest

from process_testing import hook_env, metadata, paths_of, run, write_tree
from rewind_testing import HAS_MONITORING, assert_valid
from tracemodel import TraceView

PROGRAM = """
import sys

def double(x):
    return x * 2

def main(argv):
    total = double(int(argv[0])) if argv else 0
    print("total", total)
    return total

if __name__ == "__main__":
    code = main(sys.argv[1:])
    if len(sys.argv) > 2:
        {end}
"""


def program(tmp_path, end="sys.exit(code)"):
    write_tree(tmp_path, {"prog.py": PROGRAM.replace("{end}", end)})
    return tmp_path / "prog.py"


@pytest.fixture(params=["monitoring", "settrace"] if HAS_MONITORING else ["settrace"])
def backend(request):
    return {"REWIND_BACKEND": request.param}


def test_script_is_recorded_and_finished_at_exit(tmp_path, backend):
    prog = program(tmp_path)
    plain = run([str(prog), "21"], cwd=tmp_path, env=hook_env(tmp_path))
    rec = run([str(prog), "21"], cwd=tmp_path, env=hook_env(tmp_path, {"CODETRACER_TRACE": "out", **backend}))
    assert rec.returncode == plain.returncode == 0
    assert rec.stdout == plain.stdout == "total 42\n"
    assert rec.stderr == plain.stderr == ""
    out = tmp_path / "out"
    assert_valid(out)
    view = TraceView(str(out))
    assert [c.returned for c in view.calls_of("double")] == [42]
    assert view.calls_of("main")[0].args == {"argv": ["21"]}
    assert view.toplevel.returned == 0 and not view.open_at_end
    meta = view.metadata
    assert meta["process_exit_status"] == {"code": 0, "label": "ok"}
    assert meta["program"] == str(prog) and meta["args"] == ["21"]
    assert paths_of(out)[0] == str(prog)
    # Only the script: not the rest of interpreter start-up.
    assert all(not p.endswith("sitecustomize.py") for p in paths_of(out))


@pytest.mark.parametrize("end, code", [("sys.exit(code)", 4), ("raise SystemExit(code)", 4),
                                        ("sys.exit('bye')", 1), ("sys.exit()", 0)])
def test_exit_status_of_sys_exit_and_system_exit(tmp_path, end, code):
    prog = program(tmp_path, end)
    plain = run([str(prog), "2", "x"], cwd=tmp_path, env=hook_env(tmp_path))
    rec = run([str(prog), "2", "x"], cwd=tmp_path, env=hook_env(tmp_path, {"CODETRACER_TRACE": "out"}))
    assert rec.returncode == plain.returncode == code
    assert (rec.stdout, rec.stderr) == (plain.stdout, plain.stderr)
    assert_valid(tmp_path / "out")
    view = TraceView(str(tmp_path / "out"))
    assert view.toplevel.returned == code
    assert view.metadata["process_exit_status"] == {"code": code, "label": "ok" if code == 0 else "exit"}
    assert not view.errors


def test_uncaught_exception_is_an_error_event(tmp_path):
    prog = program(tmp_path, "raise ValueError('bad %d' % code)")
    plain = run([str(prog), "2", "x"], cwd=tmp_path, env=hook_env(tmp_path))
    rec = run([str(prog), "2", "x"], cwd=tmp_path, env=hook_env(tmp_path, {"CODETRACER_TRACE": "out"}))
    assert rec.returncode == plain.returncode == 1
    assert rec.stderr == plain.stderr  # the traceback Python prints is unchanged
    assert "ValueError: bad 4" in rec.stderr
    assert_valid(tmp_path / "out")
    view = TraceView(str(tmp_path / "out"))
    assert view.metadata["process_exit_status"] == {"code": 1, "label": "uncaught ValueError"}
    assert view.toplevel.returned == 1
    (error,) = view.errors
    assert "ValueError: bad 4" in error["content"] and "Traceback" in error["content"]


def test_module_run_with_dash_m(tmp_path):
    write_tree(tmp_path, {
        "app/__init__.py": "",
        "app/__main__.py": """
            import sys
            from app.core import work
            raise SystemExit(work(int(sys.argv[1])))
        """,
        "app/core.py": """
            def work(n):
                if n < 0:
                    raise RuntimeError("negative")
                return n + 1
        """,
    })
    rec = run(["-m", "app", "4"], cwd=tmp_path, env=hook_env(tmp_path, {"CODETRACER_TRACE": "out"}))
    assert rec.returncode == 5, rec.stderr
    assert_valid(tmp_path / "out")
    view = TraceView(str(tmp_path / "out"))
    assert view.calls_of("work")[0].returned == 5
    meta = view.metadata
    assert meta["process_exit_status"] == {"code": 5, "label": "exit"}
    assert meta["program"] == "app" and meta["args"] == ["4"]
    assert paths_of(tmp_path / "out")[0] == str(tmp_path / "app" / "__main__.py")

    # An uncaught exception: Python's own traceback, nothing of rewind in it.
    plain = run(["-m", "app", "-1"], cwd=tmp_path, env=hook_env(tmp_path))
    rec = run(["-m", "app", "-1"], cwd=tmp_path, env=hook_env(tmp_path, {"CODETRACER_TRACE": "out2"}))
    assert rec.returncode == plain.returncode == 1
    assert rec.stderr == plain.stderr and "rewind" not in rec.stderr
    assert_valid(tmp_path / "out2")
    assert metadata(tmp_path / "out2")["process_exit_status"] == {"code": 1, "label": "uncaught RuntimeError"}


def test_dash_c_and_placeholder_pid(tmp_path):
    write_tree(tmp_path, {"lib.py": "def f(x):\n    return x + 1\n"})
    rec = run(["-c", "import os, lib; lib.f(1); print(os.getpid())"], cwd=tmp_path,
              env=hook_env(tmp_path, {"CODETRACER_TRACE": "traces/run-{pid}"}))
    assert rec.returncode == 0, rec.stderr
    out = tmp_path / "traces" / ("run-" + rec.stdout.strip())
    assert_valid(out)
    assert TraceView(str(out)).calls_of("f")[0].returned == 2


def test_threads_and_atexit_handlers_are_recorded(tmp_path):
    write_tree(tmp_path, {"prog.py": """
        import atexit, threading

        def worker(n):
            return n * 3

        def goodbye():
            return "bye"

        atexit.register(goodbye)
        t = threading.Thread(target=worker, args=(5,))
        t.start()
    """})
    rec = run(["prog.py"], cwd=tmp_path, env=hook_env(tmp_path, {"CODETRACER_TRACE": "out"}))
    assert rec.returncode == 0, rec.stderr
    assert_valid(tmp_path / "out")
    view = TraceView(str(tmp_path / "out"))
    assert view.calls_of("worker")[0].returned == 15
    assert view.calls_of("goodbye")[0].returned == "bye"


def test_os_exit_is_finished_by_the_session(tmp_path):
    write_tree(tmp_path, {"prog.py": "import os\n\ndef f():\n    return 1\n\nf()\nos._exit(7)\n"})
    rec = run(["prog.py"], cwd=tmp_path, env=hook_env(tmp_path, {"CODETRACER_TRACE": "out"}))
    assert rec.returncode == 7
    assert_valid(tmp_path / "out")
    assert metadata(tmp_path / "out")["process_exit_status"]["code"] == 7


def test_api_sees_the_auto_started_recording(tmp_path):
    write_tree(tmp_path, {"prog.py": """
        import os, rewind
        print(rewind.is_tracing(), "CODETRACER_TRACE" in os.environ)
        try:
            rewind.start("other")
        except rewind.UsageError as err:
            print(err.code)
    """})
    rec = run(["prog.py"], cwd=tmp_path, env=hook_env(tmp_path, {"CODETRACER_TRACE": "out"}))
    assert rec.stdout.split() == ["True", "False", "ERR_ALREADY_TRACING"], rec.stderr
    assert_valid(tmp_path / "out")
    assert not (tmp_path / "other").exists()


def test_python_children_do_not_write_over_the_trace(tmp_path):
    write_tree(tmp_path, {"prog.py": """
        import subprocess, sys
        def parent():
            return subprocess.run([sys.executable, "-c", "print('child')"], capture_output=True, text=True).stdout
        print(parent().strip())
    """})
    rec = run(["prog.py"], cwd=tmp_path, env=hook_env(tmp_path, {"CODETRACER_TRACE": "out"}))
    assert rec.stdout == "child\n", rec.stderr
    assert_valid(tmp_path / "out")
    view = TraceView(str(tmp_path / "out"))
    assert view.calls_of("parent")  # the parent's trace, not the child's
    assert not (tmp_path / "out.children").exists()


def test_inert_without_the_variable(tmp_path):
    probe = ["-c", "import sys; print('rewind' in sys.modules, 'rewind.autostart' in sys.modules)"]
    for extra in ({}, {"CODETRACER_TRACE": ""}):
        rec = run(probe, cwd=tmp_path, env=hook_env(tmp_path, extra))
        assert rec.stdout.split() == ["False", "False"], rec.stderr
    # The hook is active in these tests: with the variable, rewind is imported at start-up.
    rec = run(probe, cwd=tmp_path, env=hook_env(tmp_path, {"CODETRACER_TRACE": "out"}))
    assert rec.stdout.split() == ["True", "True"], rec.stderr
    assert_valid(tmp_path / "out")


def test_rewind_command_is_never_auto_recorded(tmp_path):
    prog = program(tmp_path)
    env = hook_env(tmp_path, {"CODETRACER_TRACE": "auto"})
    rec = run(["-m", "rewind", "-o", "explicit", str(prog), "1"], cwd=tmp_path, env=env)
    assert rec.returncode == 0, rec.stderr
    assert_valid(tmp_path / "explicit")
    check = run(["-m", "rewind", "validate", "explicit"], cwd=tmp_path, env=env)
    assert check.returncode == 0, check.stderr
    assert not (tmp_path / "auto").exists()


def test_disabled_and_bad_configuration_leave_the_program_alone(tmp_path):
    prog = program(tmp_path)
    rec = run([str(prog), "1"], cwd=tmp_path,
              env=hook_env(tmp_path, {"CODETRACER_TRACE": "out", "CODETRACER_PYTHON_RECORDER_DISABLED": "1"}))
    assert rec.returncode == 0 and rec.stdout == "total 2\n"
    assert "recording disabled" in rec.stderr
    assert not (tmp_path / "out").exists()

    rec = run([str(prog), "1", "x"], cwd=tmp_path,
              env=hook_env(tmp_path, {"CODETRACER_TRACE": "out", "CODETRACER_TRACE_FILTER": "missing.toml"}))
    assert rec.returncode == 2 and rec.stdout == "total 2\n"
    assert "ERR_FILTER_NOT_FOUND" in rec.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_keyboard_interrupt(tmp_path):
    write_tree(tmp_path, {"prog.py": "def f():\n    raise KeyboardInterrupt\n\nf()\n"})
    # The second run replaces the first one's trace at exit: the process must still end by
    # SIGINT (nothing rewind does at exit may make CPython forget the KeyboardInterrupt).
    for _ in range(2):
        rec = run(["prog.py"], cwd=tmp_path, env=hook_env(tmp_path, {"CODETRACER_TRACE": "out"}))
        assert rec.returncode in (-2, 130) and "KeyboardInterrupt" in rec.stderr
        assert_valid(tmp_path / "out")
        assert metadata(tmp_path / "out")["process_exit_status"] == {"code": 130, "label": "interrupted"}
