"""Real faults, not injected ones: trace directories, file size limit, the program raising,
os._exit, signals, hostile __repr__, and a program that replaces or closes its streams."""
from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import textwrap

import pytest
from failure_support import error_reports, leftovers, metadata

from rewind_testing import assert_valid, run_python, run_rewind

LOOP = """
def work(n):
    total = 0
    for i in range(n):
        total += i
    return total

print("result", work(3000))
"""

# A program that says it is ready, then runs until a signal arrives.
SPIN = """
def tick(i):
    return i + 1

def main():
    i = 0
    print("ready", flush=True)
    while True:
        i = tick(i)

main()
"""


# -- the trace directory -------------------------------------------------------------------

def test_unwritable_trace_directory(record, program, tmp_path):
    script = program("hello.py", 'print("ran")\n')
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    rec = record(script, options=["-o", str(blocker / "trace")], expect_trace=False)
    assert rec.proc.returncode == 10 and rec.stdout == ""  # refused before the target ran
    assert rec.stderr.startswith("rewind: error: [ERR_TRACE_DIR_CREATE_FAILED]")
    rec = record(script, options=["-o", "/proc/rewind-cannot-be-here/trace"], expect_trace=False)
    assert rec.proc.returncode == 10 and rec.stdout == ""
    assert "ERR_TRACE_DIR_CREATE_FAILED" in rec.stderr


def test_conflicting_trace_directory(record, program, tmp_path):
    script = program("hello.py", 'print("ran")\n')
    a_file = tmp_path / "out-file"
    a_file.write_text("keep me")
    rec = record(script, options=["-o", str(a_file)], expect_trace=False)
    assert rec.proc.returncode == 2 and rec.stdout == ""
    assert rec.stderr.startswith("rewind: error: [ERR_TRACE_DIR_CONFLICT]")
    assert a_file.read_text() == "keep me"

    project = tmp_path / "project"
    project.mkdir()
    (project / "notes.txt").write_text("mine")
    rec = record(script, options=["-o", str(project)], expect_trace=False)
    assert rec.proc.returncode == 2 and rec.stdout == "" and "ERR_TRACE_DIR_CONFLICT" in rec.stderr
    assert os.listdir(project) == ["notes.txt"] and leftovers(tmp_path) == []


# -- the file size limit hit mid-write ------------------------------------------------------

def _limited(limit: int):
    def preexec():
        # Python ignores SIGXFSZ itself; set it anyway so the write fails with EFBIG
        # instead of the process being killed, whatever the interpreter does.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return preexec


@pytest.mark.parametrize("keep", [False, True])
def test_file_size_limit_mid_write(popen_rewind, program, tmp_path, backend, keep):
    limit = 64 * 1024
    script = program("loop.py", LOOP)
    out = tmp_path / "trace"
    options = ["--keep-partial-trace"] if keep else []
    proc = popen_rewind(["-o", out, *options, script], env=backend, preexec_fn=_limited(limit))
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 10, stderr
    assert stderr.startswith("rewind: error: [ERR_DISK_FULL]") and "EFBIG" in stderr
    assert stdout == ""  # aborted inside work()
    assert leftovers(tmp_path) == []
    if not keep:
        assert not out.exists()
        return
    assert_valid(out)
    assert os.path.getsize(out / "trace.json") <= limit  # the closing events fit under the limit
    meta = metadata(out)
    assert meta["partial"] is True and meta["error"]["code"] == "ERR_DISK_FULL"


# -- the program's own ends --------------------------------------------------------------------

def test_the_target_raising(record, program, tmp_path, backend):
    script = program("raises.py", """
        def fail():
            raise ValueError("boom")

        print("before")
        fail()
        """)
    plain = run_python([str(script)], cwd=tmp_path)
    rec = record(script, options=["--propagate-script-exit"], env=backend)
    assert (rec.proc.returncode, rec.stdout, rec.stderr) == (1, plain.stdout, plain.stderr)
    view = rec.view
    (error,) = view.errors
    assert "ValueError: boom" in error["content"]
    assert view.toplevel.returned == 1 and view.open_at_end == {}
    assert metadata(rec.trace_dir)["process_exit_status"] == {"code": 1, "label": "uncaught ValueError"}


OS_EXIT = """
import os

def finish(code):
    print("finishing", flush=True)
    os._exit(code)

finish(7)
print("never")
"""


def test_os_exit_finishes_the_trace_first(record, program, backend):
    script = program("os_exit.py", OS_EXIT)
    rec = record(script, options=["--propagate-script-exit"], env=backend)
    assert rec.proc.returncode == 7 and rec.stdout == "finishing\n" and rec.stderr == ""
    view = rec.view
    assert view.toplevel.returned == 7 and view.open_at_end == {}
    (finish,) = view.calls_of("finish")
    assert finish.returned.r.startswith("<unfinished")  # os._exit left it mid-way
    assert metadata(rec.trace_dir)["process_exit_status"] == {"code": 7, "label": "os._exit"}
    # Without --propagate-script-exit the usual rule applies: 0 and a note.
    rec = record(script, env=backend)
    assert rec.proc.returncode == 0 and "exited with status 7" in rec.stderr


def test_os_exit_in_a_forked_child_is_not_ours(record, program):
    script = program("fork.py", """
        import os

        pid = os.fork()
        if pid == 0:
            os._exit(3)  # the child: must not finish (or touch) the parent's trace
        _, status = os.waitpid(pid, 0)
        print("child", os.waitstatus_to_exitcode(status))
        """)
    rec = record(script)
    assert rec.stdout == "child 3\n" and rec.proc.returncode == 0
    assert rec.view.toplevel.returned == 0


def test_os_exit_after_an_abort_the_program_swallowed(record, program, tmp_path):
    script = program("swallow.py", """
        import os

        def step(i):
            return i

        try:
            for i in range(5):
                step(i)
        except Exception:
            pass
        os._exit(0)
        """)
    rec = record(script, options=["--json-errors"], env={"CODETRACER_TEST_INJECT_FAILURE": "line:3"},
                 expect_trace=False)
    assert rec.proc.returncode == 70  # the failure wins, even over os._exit
    (report,) = error_reports(rec.stderr)
    assert report["error_code"] == "ERR_UNKNOWN" and report["trace_id"]
    assert leftovers(tmp_path) == []


# -- signals -------------------------------------------------------------------------------------

def _interrupt(popen_rewind, script, out, sig, options=(), env=None):
    proc = popen_rewind(["-o", out, *options, script], env=env)
    assert proc.stdout.readline() == "ready\n"
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    return proc.returncode, stderr


@pytest.mark.parametrize("propagate", [False, True])
def test_sigint_finishes_the_trace(popen_rewind, program, tmp_path, backend, propagate):
    script = program("spin.py", SPIN)
    out = tmp_path / "trace"
    status, stderr = _interrupt(popen_rewind, script, out, signal.SIGINT,
                                ["--propagate-script-exit"] if propagate else [], backend)
    assert status == (-signal.SIGINT if propagate else 0)
    assert "KeyboardInterrupt" in stderr and "rewind" not in stderr.split("KeyboardInterrupt")[0]
    assert_valid(out)
    assert metadata(out)["process_exit_status"] == {"code": 130, "label": "interrupted"}
    assert leftovers(tmp_path) == []


def test_sigterm_finishes_the_trace_and_dies_by_the_signal(popen_rewind, program, tmp_path, backend):
    script = program("spin.py", SPIN)
    out = tmp_path / "trace"
    status, stderr = _interrupt(popen_rewind, script, out, signal.SIGTERM, env=backend)
    assert status == -signal.SIGTERM and stderr == ""  # as without rewind
    assert_valid(out)
    meta = metadata(out)
    assert meta["process_exit_status"] == {"code": 128 + signal.SIGTERM, "label": "signal SIGTERM"}
    assert "partial" not in meta
    assert leftovers(tmp_path) == []


def test_a_program_with_its_own_sigterm_handler_keeps_it(popen_rewind, program, tmp_path):
    script = program("handler.py", textwrap.dedent("""
        import signal
        import sys

        def on_term(signum, frame):
            print("handled", flush=True)
            sys.exit(5)

        signal.signal(signal.SIGTERM, on_term)
        """) + SPIN)
    out = tmp_path / "trace"
    proc = popen_rewind(["-o", out, "--propagate-script-exit", script])
    assert proc.stdout.readline() == "ready\n"
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 5 and stdout == "handled\n"
    assert_valid(out)
    assert metadata(out)["process_exit_status"]["code"] == 5


def test_sigkill_never_leaves_a_trace_under_the_final_name(popen_rewind, program, tmp_path):
    script = program("spin.py", SPIN)
    out = tmp_path / "trace"
    proc = popen_rewind(["-o", out, script])
    assert proc.stdout.readline() == "ready\n"
    proc.kill()
    proc.communicate(timeout=60)
    assert not out.exists()
    (stale,) = leftovers(tmp_path)  # the staging directory of a dead process...
    hello = program("hello.py", 'print("hi")\n')
    rec = run_rewind(["-o", str(out), str(hello)], cwd=tmp_path)
    assert rec.stdout == "hi\n" and out.is_dir()
    assert leftovers(tmp_path) == []  # ...is removed by the next recording into that place


def test_a_failed_run_leaves_the_previous_trace_in_place(program, tmp_path):
    script = program("hello.py", 'print("hi")\n')
    out = tmp_path / "trace"
    assert run_rewind(["-o", str(out), str(script)], cwd=tmp_path).returncode == 0
    before = metadata(out)["recording_id"]
    failed = run_rewind(["-o", str(out), str(script)], cwd=tmp_path, env={"CODETRACER_TEST_INJECT_FAILURE": "finish"})
    assert failed.returncode == 70
    assert metadata(out)["recording_id"] == before
    assert_valid(out)


# -- __repr__ that raises, hangs or mutates --------------------------------------------------------

HOSTILE = """
import threading

lock = threading.Lock()
lock.acquire()  # never released: a repr that takes it hangs forever
calls = []

class Raises:
    def __init__(self):
        self.v = 1
    def __repr__(self):
        raise RuntimeError("no repr for you")

class Hangs:
    def __init__(self):
        self.v = 2
    def __repr__(self):
        with lock:
            return "unreachable"

class Mutates:
    def __init__(self):
        self.count = 0
    def __repr__(self):
        self.count += 1
        calls.append(self)
        return "mutated"

class Opaque:
    __slots__ = ()  # no attributes to read: shown by its repr, which raises
    def __repr__(self):
        raise RuntimeError("opaque")

def main():
    a, b, c, d = Raises(), Hangs(), Mutates(), Opaque()
    seen = c.count
    print("count", seen, len(calls))
    return c

main()
print("after", len(calls))
"""


def test_hostile_repr_is_never_called_on_user_objects(record, program, tmp_path, backend):
    script = program("hostile.py", HOSTILE)
    plain = run_python([str(script)], cwd=tmp_path, timeout=30)
    rec = record(script, env=backend)  # a call of Hangs.__repr__ would hang until the timeout
    assert rec.proc.returncode == 0
    assert rec.stdout == plain.stdout == "count 0 0\nafter 0\n"
    values = rec.view.steps_in("main")[-1].values
    assert values["a"] == {"__type__": "Raises", "v": 1}
    assert values["b"] == {"__type__": "Hangs", "v": 2}
    assert values["c"] == {"__type__": "Mutates", "count": 0}
    assert values["d"].msg == "<unrepr>"  # the one repr recording may call raised: shown as such
    assert rec.view.calls_of("main")[0].returned == {"__type__": "Mutates", "count": 0}


# -- a program that replaces or closes its streams --------------------------------------------------

STREAMS = """
import io
import sys

def main():
    buffer = io.StringIO()
    real = sys.stdout
    sys.stdout = buffer
    print("hidden")
    sys.stdout = real
    print("captured:", buffer.getvalue().strip())
    sys.stdout.flush()
    sys.stdout.close()
    sys.stderr.close()
    return 0

main()
"""


def test_replaced_and_closed_stdout(record, program, tmp_path, backend):
    script = program("streams.py", STREAMS)
    plain = run_python([str(script)], cwd=tmp_path)
    rec = record(script, env=backend)
    assert (rec.proc.returncode, rec.stdout, rec.stderr) == (plain.returncode, plain.stdout, "")
    assert rec.stdout == "captured: hidden\n"


def test_an_error_is_still_reported_when_the_program_closed_stderr(record, program, tmp_path):
    script = program("streams.py", STREAMS)
    rec = record(script, options=["--json-errors"], env={"CODETRACER_TEST_INJECT_FAILURE": "finish"},
                 expect_trace=False)
    assert rec.proc.returncode == 70 and rec.stdout == "captured: hidden\n"
    (report,) = error_reports(rec.stderr)  # through file descriptor 2
    assert report["error_code"] == "ERR_UNKNOWN"
    assert [json.loads(line) for line in rec.stderr.splitlines()] == [report]


def test_sys_executable_is_the_one_under_test():
    # The signal and rlimit tests above rely on a real child process of this interpreter.
    assert subprocess.run([sys.executable, "-c", "pass"]).returncode == 0
