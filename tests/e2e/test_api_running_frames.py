"""`rewind.start()` and `with rewind.trace()` in the middle of a program: the function that
starts the recording, and the functions that called it, are already running, so no call
event will ever come for them.  They are recorded from the line they are at on (a Call, a
Step at that line with their variables, then every line they run), and when the recording
stops while they still run, their calls end with `<running when recording stopped>`."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from rewind_testing import assert_valid, run_python
from tracemodel import Raw, TraceView

STILL_RUNNING = Raw("<running when recording stopped>", "<exit>")


def _run(tmp_path: Path, source: str, env: dict) -> tuple[TraceView, dict]:
    """Run `source` as prog.py (it writes its trace to ./out); the trace, validated, and the
    line number of each `# at:NAME` marker."""
    source = textwrap.dedent(source)
    (tmp_path / "prog.py").write_text(source)
    proc = run_python(["prog.py"], cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    assert_valid(tmp_path / "out")
    lines = {}
    for number, text in enumerate(source.splitlines(), 1):
        if "# at:" in text:
            lines[text.split("# at:")[1].strip()] = number
    return TraceView(str(tmp_path / "out")), lines


@pytest.fixture
def env(backend, core):
    return {**backend, **core}


def test_the_with_block_is_recorded_line_by_line(tmp_path, env):
    view, at = _run(tmp_path, """
        import rewind

        def work(n):
            total = 0
            for i in range(n):
                total += i
            return total

        def main():
            a = 1
            with rewind.trace("out"):  # at:with
                b = a + 1  # at:b
                c = work(3)  # at:c
                d = b + c  # at:d
            print(d)  # at:after

        main()
        """, env)
    main, = view.calls_of("main")
    # Entered where it was, with what it held then; every line of the block follows.
    assert view.lines_of("main") == [at["with"], at["b"], at["c"], at["d"], at["with"]]
    assert view.values_at("main", at["with"])[0] == {"a": 1}
    assert view.values_at("main", at["d"])[0] == {"a": 1, "b": 2, "c": 3}
    work, = view.calls_of("work")
    assert work.parent is main and work.args == {"n": 3} and work.returned == 3
    # main goes on after the block: the trace says so instead of making up a return value.
    assert main.returned == STILL_RUNNING
    assert at["after"] not in view.lines_of("main")


def test_the_callers_of_start_are_recorded_after_it_returns(tmp_path, env):
    view, at = _run(tmp_path, """
        import rewind

        def begin():
            rewind.start("out")  # at:start
            return "started"  # at:return

        def main(limit):
            x = 10
            state = begin()  # at:call
            for y in range(limit):  # at:loop
                x += y  # at:add
            rewind.stop()  # at:stop

        main(2)
        """, env)
    module, = view.calls_of("<__main__>")
    main, = view.calls_of("main")
    begin, = view.calls_of("begin")
    assert begin.parent is main and main.parent is module
    assert main.args == {"limit": 2}
    assert begin.returned == "started"
    assert view.lines_of("begin") == [at["start"], at["return"]]
    # main shows its variables at the call it was making, then runs on, recorded.
    assert view.values_at("main", at["call"]) == [{"limit": 2, "x": 10}]
    assert view.lines_of("main") == [at["call"], at["loop"], at["add"], at["loop"], at["add"],
                                     at["loop"], at["stop"]]
    assert view.values_at("main", at["stop"])[0] == {"limit": 2, "x": 11, "state": "started", "y": 1}
    assert main.returned == STILL_RUNNING and module.returned == STILL_RUNNING


def test_start_at_module_level_records_the_rest_of_the_module(tmp_path, env):
    view, at = _run(tmp_path, """
        import rewind

        rewind.start("out")  # at:start

        def square(v):
            return v * v

        values = [square(n) for n in range(3)]  # at:values
        done = len(values)  # at:done
        """, env)
    module, = view.calls_of("<__main__>")
    lines = view.lines_of("<__main__>")
    assert lines[0] == at["start"] and at["values"] in lines and lines[-1] == at["done"]
    assert [call.args for call in view.calls_of("square")] == [{"v": 0}, {"v": 1}, {"v": 2}]
    # The module ran to its end while recorded (finished at exit): a real return.
    assert module.closed and module.returned is None


def test_start_in_a_generator_records_its_next_resumptions(tmp_path, env):
    view, at = _run(tmp_path, """
        import rewind

        def numbers():
            rewind.start("out")  # at:start
            yield 1  # at:first
            yield 2  # at:second

        def main():
            got = list(numbers())  # at:list
            rewind.stop()  # at:stop

        main()
        """, env)
    main, = view.calls_of("main")
    calls = view.calls_of("numbers")
    # Adopted while running, then resumed twice more by list() (the last one ends it).
    assert [call.parent for call in calls] == [main] * 3
    assert [call.returned for call in calls] == [1, 2, None]
    assert view.lines_of("numbers") == [at["start"], at["first"], at["second"]]
    assert view.lines_of("main") == [at["list"], at["stop"]]
    assert view.values_at("main", at["stop"])[0] == {"got": [1, 2]}


def test_start_in_a_thread_skips_the_frames_the_filter_skips(tmp_path, env):
    # threading's own frames (Thread.run, _bootstrap) call the target: the builtin filter
    # skips the standard library, so the target is adopted on its own.
    view, at = _run(tmp_path, """
        import threading
        import rewind

        def target(box):
            rewind.start("out")  # at:start
            box.append(len(box))  # at:append
            rewind.stop()  # at:stop

        box = []
        worker = threading.Thread(target=target, args=(box,))
        worker.start()
        worker.join()
        """, env)
    assert [call.function for call in view.calls] == ["<toplevel>", "target"]
    target, = view.calls_of("target")
    assert target.parent is view.toplevel and target.args == {"box": []}
    assert view.lines_of("target") == [at["start"], at["append"], at["stop"]]
    assert view.values_at("target", at["stop"])[0] == {"box": [0]}


def test_a_second_recording_in_the_same_function_adopts_it_again(tmp_path, env):
    # Decisions and turned-on events belong to one session: the second one starts afresh.
    view, at = _run(tmp_path, """
        import rewind

        def main():
            rewind.start("first")  # at:first
            a = 1  # at:a
            rewind.stop()  # at:stop1
            b = 2  # at:b
            rewind.start("out")  # at:second
            c = a + b  # at:c
            rewind.stop()  # at:stop2

        main()
        """, env)
    assert_valid(tmp_path / "first")
    assert TraceView(str(tmp_path / "first")).lines_of("main") == [at["first"], at["a"], at["stop1"]]
    assert view.lines_of("main") == [at["second"], at["c"], at["stop2"]]
    assert view.values_at("main", at["stop2"])[0] == {"a": 1, "b": 2, "c": 3}


@pytest.mark.parametrize("ending, status", [("", 0), ("raise SystemExit(3)", 3), ("1 / 0", 1)])
def test_a_recording_never_stopped_is_finished_at_exit(tmp_path, ending, status):
    # Before, the trace stayed in its staging directory, unfinished, and was lost.
    (tmp_path / "prog.py").write_text(textwrap.dedent("""
        import rewind
        rewind.start("out")
        counted = sum(range(4))
        done = True
        """) + ending + "\n")
    proc = run_python(["prog.py"], cwd=tmp_path)
    assert proc.returncode == status
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "prog.py"]  # no staging left
    assert_valid(tmp_path / "out")
    view = TraceView(str(tmp_path / "out"))
    assert view.toplevel.returned == status
    assert view.values_at("<__main__>", 5) == [{"counted": 6}]  # the module's own lines
    if status == 1:
        assert "ZeroDivisionError" in view.errors[0]["content"]
