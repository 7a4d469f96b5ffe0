"""--follow-children: subprocess and multiprocessing children are each recorded into
TRACE.children/PID, and the parent's metadata lists them (docs/auto-start.md)."""
from __future__ import annotations

import os
import sys

import pytest

from process_testing import assert_all_valid, hook_env, metadata, run, trace_dirs, write_tree
from rewind_testing import HAS_MONITORING, assert_valid
from tracemodel import TraceView

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="fork and POSIX signals")

PROGRAM = """
import multiprocessing as mp
import os
import subprocess
import sys

def square(x):
    return x * x

def work(q, n):
    q.put(square(n))

def run_child():
    out = subprocess.run([sys.executable, "child.py", "3"], capture_output=True, text=True)
    return out.stdout.strip(), out.returncode

def run_process(method):
    ctx = mp.get_context(method)
    q = ctx.Queue()
    p = ctx.Process(target=work, args=(q, 7))
    p.start()
    got = q.get()
    p.join()
    return got, p.exitcode

if __name__ == "__main__":
    what = sys.argv[1:]
    if "subprocess" in what:
        print("subprocess", *run_child())
    for method in ("fork", "spawn"):
        if method in what:
            print(method, *run_process(method))
    if "pool" in what:
        with mp.get_context("spawn").Pool(2) as pool:
            print("pool", pool.map(square, range(6)))
    if "grandchild" in what:
        out = subprocess.run([sys.executable, "child.py", "2", "nested"], capture_output=True, text=True)
        print("grandchild", out.stdout.split())
"""

CHILD = """
import subprocess, sys

def triple(n):
    return n * 3

if __name__ == "__main__":
    print(triple(int(sys.argv[1])))
    if "nested" in sys.argv:
        subprocess.run([sys.executable, "child.py", "5"])
    sys.exit(2)
"""


@pytest.fixture
def project(tmp_path):
    write_tree(tmp_path, {"prog.py": PROGRAM, "child.py": CHILD})
    return tmp_path


@pytest.fixture(params=["monitoring", "settrace"] if HAS_MONITORING else ["settrace"])
def backend(request):
    return {"REWIND_BACKEND": request.param}


def record(project, *what, options=("--follow-children",), env=None):
    rec = run(["-m", "rewind", "-o", "out", *options, "prog.py", *what], cwd=project,
              env=hook_env(project, env))
    assert rec.returncode == 0, rec.stderr
    assert_valid(project / "out")
    return rec, metadata(project / "out")


def child_view(entry) -> TraceView:
    assert entry["complete"], entry
    assert_valid(entry["trace_dir"])
    return TraceView(entry["trace_dir"])


def test_subprocess_child(project, backend):
    rec, meta = record(project, "subprocess", env=backend)
    assert rec.stdout == "subprocess 9 2\n"
    (child,) = meta["children"]
    assert child["trace_dir"] == str(project / "out.children" / str(child["pid"]))
    assert child["start"] == "exec"
    assert child["process_exit_status"] == {"code": 2, "label": "exit"}
    view = child_view(child)
    assert view.calls_of("triple")[0].returned == 9
    assert view.metadata["parent"]["recording_id"] == meta["recording_id"]
    assert view.metadata["program"] == "child.py" and view.metadata["args"] == ["3"]
    assert_all_valid(project / "out.children")


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_multiprocessing_process(project, method, backend):
    rec, meta = record(project, method, env=backend)
    assert rec.stdout == "%s 49 0\n" % method
    (child,) = meta["children"]
    assert child["start"] == ("fork" if method == "fork" else "exec")
    assert child["process_exit_status"]["code"] == 0
    view = child_view(child)
    (call,) = view.calls_of("work")
    assert call.args["n"] == 7
    assert view.calls_of("square")[0].returned == 49
    assert view.metadata["parent"]["recording_id"] == meta["recording_id"]
    # The parent's own trace has no call made in the child.
    assert not TraceView(str(project / "out")).calls_of("work")


def test_spawn_pool_workers_are_finished_when_the_pool_ends(project):
    rec, meta = record(project, "pool")
    assert rec.stdout == "pool [0, 1, 4, 9, 16, 25]\n"
    workers = meta["children"]
    # A worker the pool terminates while it is still starting up may end before its
    # recording starts: then it ran no task and is not listed.
    assert 1 <= len(workers) <= 2
    # Known gap (see the closing note of issue 7): under load, a worker that the pool's
    # terminate() ends is sometimes listed as not complete (its trace was not finished).
    # What is listed as complete must be right: finished, and each task recorded once.
    squares = []
    for worker in workers:
        if not worker["complete"]:
            assert "process_exit_status" not in worker
            continue
        # A worker either ends on the pool's sentinel or is terminated (SIGTERM): finished either way.
        assert worker["process_exit_status"]["code"] in (0, 143), worker
        squares += [c.args["x"] for c in child_view(worker).calls_of("square")]
    assert len(squares) == len(set(squares)) and set(squares) <= set(range(6))


def test_grandchildren_are_nested_under_their_parent(project):
    rec, meta = record(project, "grandchild")
    (child,) = meta["children"]
    view = child_view(child)
    (grandchild,) = view.metadata["children"]
    assert grandchild["trace_dir"] == child["trace_dir"] + ".children/%d" % grandchild["pid"]
    assert child_view(grandchild).calls_of("triple")[0].returned == 15
    assert child_view(grandchild).metadata["parent"]["recording_id"] == child["recording_id"]
    assert len(trace_dirs(project / "out.children")) == 2


def test_not_followed_without_the_flag(project):
    rec, meta = record(project, "subprocess", "fork", options=())
    assert "children" not in meta
    assert not (project / "out.children").exists()


def test_a_new_recording_replaces_the_previous_children(project):
    record(project, "subprocess")
    _, meta = record(project, "fork")
    (child,) = meta["children"]
    assert child["start"] == "fork"
    assert trace_dirs(project / "out.children") == [project / "out.children" / str(child["pid"])]


def test_plain_os_fork(tmp_path):
    write_tree(tmp_path, {"prog.py": """
        import os

        def in_child():
            return "child"

        pid = os.fork()
        if pid == 0:
            in_child()
            os._exit(3)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status))
    """})
    rec = run(["-m", "rewind", "-o", "out", "--follow-children", "prog.py"], cwd=tmp_path, env=hook_env(tmp_path))
    assert rec.stdout == "3\n", rec.stderr
    (child,) = metadata(tmp_path / "out")["children"]
    assert child["process_exit_status"] == {"code": 3, "label": "os._exit"}
    assert child_view(child).calls_of("in_child")[0].returned == "child"
    assert not TraceView(str(tmp_path / "out")).calls_of("in_child")


def test_auto_start_follows_children_with_the_variable(project):
    env = hook_env(project, {"CODETRACER_TRACE": "auto", "CODETRACER_FOLLOW_CHILDREN": "1"})
    rec = run(["prog.py", "subprocess", "spawn"], cwd=project, env=env)
    assert rec.stdout == "subprocess 9 2\nspawn 49 0\n", rec.stderr
    assert_valid(project / "auto")
    children = metadata(project / "auto")["children"]
    assert sorted(e["start"] for e in children) == ["exec", "exec"]
    for entry in children:
        child_view(entry)
    # The parent stopped exporting the variables when its trace was finished.
    assert "CODETRACER_TRACE" not in os.environ


def test_forking_while_another_thread_is_in_the_middle_of_an_event(tmp_path, backend):
    # Another thread is between the take and the give of the recorder's lock (as when it
    # writes its buffer) when the main thread forks.  The child runs traced code before
    # rewind detaches there (threading's own after-fork hook); it used to wait forever for
    # the lock, held by a thread the child does not have.  Now the fork waits for the event.
    write_tree(tmp_path, {"prog.py": """
        import _thread
        import os
        import threading
        import time

        import rewind

        session = rewind.start("out")
        lock = session.recorder.lock  # taken around every event
        gate = _thread.allocate_lock()  # taken and given in C: no event
        gate.acquire()


        def hold():
            with lock:
                gate.release()
                time.sleep(0.5)


        def in_child():
            return 7


        warm = threading.Thread(target=len, args=((),))
        warm.start(); warm.join()  # noqa: E702 - threading's code is looked up once here
        first = os.fork()  # and so is the code run around a fork (logging's hooks)
        if first == 0:
            os._exit(0)
        os.waitpid(first, 0)
        holder = threading.Thread(target=hold)
        holder.start(); gate.acquire(); pid = os.fork()  # noqa: E702 - no event between them
        if pid == 0:
            os._exit(in_child())
        _, status = os.waitpid(pid, 0)
        holder.join()
        rewind.stop()
        print(os.waitstatus_to_exitcode(status))
    """})
    rec = run(["-W", "ignore::DeprecationWarning", "prog.py"], cwd=tmp_path, env=hook_env(tmp_path, backend),
              timeout=60)
    assert rec.returncode == 0, rec.stderr
    assert rec.stdout == "7\n", rec.stderr
    assert_valid(tmp_path / "out")
    assert TraceView(str(tmp_path / "out")).calls_of("hold")
