"""IO capture through the stream proxies (`--io-capture proxies`, the default): what the user
sees is byte-identical to an unrecorded run, and the trace holds each piece of output as an
Event right after the Step that wrote it."""
from __future__ import annotations

import sys

import pytest
from iocap_support import BUFFERED, io_events, line_of, record_bytes, run_bytes, script, text_of

from rewind_testing import run_python
from tracemodel import Raw


def test_print_is_an_event_after_its_step(record, backend, tmp_path):
    prog = script(tmp_path, """
        def greet(name):
            print("hello", name)        # greet
            return len(name)

        n = greet("ada")
        print("n =", n)                 # module
        print("a\\nb")                   # two lines
    """)
    rec = record(prog, env=backend)
    assert rec.stdout == run_python([str(prog)], cwd=tmp_path).stdout == "hello ada\nn = 3\na\nb\n"
    events = io_events(rec.view)
    # print("a\nb") writes "a\nb" then "\n": an event ends at the last newline of a write
    assert [e["content"] for e in events] == ["hello ada\n", "n = 3\n", "a\n", "b\n"]
    assert all(e["kind"] == 0 and e["meta"]["stream"] == "stdout" for e in events)
    for event, marker in zip(events, ["# greet", "# module", "# two lines", "# two lines"]):
        line = line_of(prog, marker)
        assert event["meta"]["line"] == line and event["step"].line == line
        assert event["meta"]["path_id"] == 0 and event["meta"]["thread"] == 0
        assert "newline" in event["meta"]["flags"]
    assert events[0]["step"].function == "greet"


def test_partial_lines_split_at_step_boundaries_and_kept_at_exit(record, backend, tmp_path):
    prog = script(tmp_path, """
        import sys
        sys.stdout.write("a")           # first
        sys.stdout.write("b")           # second
        for i in range(2):
            sys.stdout.write(str(i))    # loop
        print("!")                      # bang
        sys.stdout.write("no newline at exit")  # last
    """)
    rec = record(prog, env=backend)
    assert rec.stdout == run_python([str(prog)], cwd=tmp_path).stdout == "ab01!\nno newline at exit"
    events = io_events(rec.view)
    loop = line_of(prog, "# loop")
    assert [(e["content"], e["meta"]["line"]) for e in events] == [
        ("a", line_of(prog, "# first")), ("b", line_of(prog, "# second")),
        ("0", loop), ("1", loop), ("!\n", line_of(prog, "# bang")),
        ("no newline at exit", line_of(prog, "# last"))]
    for event in events:
        assert event["step"].line == event["meta"]["line"]  # each after the step that wrote it
    assert "step_boundary" in events[0]["meta"]["flags"]


def test_partial_line_before_a_call_on_the_same_line(record, backend, tmp_path):
    prog = script(tmp_path, """
        import sys
        def work():
            return 42                   # callee
        sys.stdout.write("x="); v = work(); print(v)   # caller
    """)
    rec = record(prog, env=backend)
    assert rec.stdout == "x=42\n"
    events = io_events(rec.view)
    caller = line_of(prog, "# caller")
    assert [(e["content"], e["meta"]["line"]) for e in events] == [("x=", caller), ("42\n", caller)]
    # "x=" is written before the callee's entry step: it stays with the caller's step
    assert events[0]["step"].line == caller and not events[0]["step"].is_entry


def test_explicit_flush_ends_an_event(record, tmp_path):
    prog = script(tmp_path, """
        import sys
        print("progress", end="", flush=True); print(" done")
    """)
    rec = record(prog)
    events = io_events(rec.view)
    assert [e["content"] for e in events] == ["progress", " done\n"]
    assert "flush" in events[0]["meta"]["flags"]


def test_stderr_is_kind_2(record, backend, tmp_path):
    prog = script(tmp_path, """
        import sys
        print("to out")
        print("to err", file=sys.stderr)   # err
        sys.stderr.write("partial err")
    """)
    rec = record(prog, env=backend)
    plain = run_python([str(prog)], cwd=tmp_path)
    assert (rec.stdout, rec.stderr) == (plain.stdout, plain.stderr)
    err = io_events(rec.view, "stderr")
    assert [e["content"] for e in err] == ["to err\n", "partial err"]
    assert {e["kind"] for e in err} == {2}
    assert err[0]["meta"]["line"] == line_of(prog, "# err")
    assert text_of(io_events(rec.view, "stdout")) == "to out\n"


def test_input_and_stdin_reads_from_a_pipe(record, backend, tmp_path):
    prog = script(tmp_path, """
        import sys
        name = input("name? ")          # input
        line = sys.stdin.readline()     # readline
        rest = [l for l in sys.stdin]   # iterate
        print("hi", name, line.strip(), len(rest))
    """)
    feed = "ada\nsecond\nthird\nfourth\n"
    rec = record(prog, env=backend, input=feed)
    plain = run_python([str(prog)], cwd=tmp_path, input=feed)
    assert rec.stdout == plain.stdout == "name? hi ada second 2\n"
    events = io_events(rec.view)
    assert [(e["meta"]["stream"], e["content"]) for e in events] == [
        ("stdout", "name? "), ("stdin", "ada\n"), ("stdin", "second\n"), ("stdin", "third\n"),
        ("stdin", "fourth\n"), ("stdout", "hi ada second 2\n")]
    stdin = io_events(rec.view, "stdin")
    assert {e["kind"] for e in stdin} == {3}
    assert all("input" in e["meta"]["flags"] for e in stdin)
    assert stdin[0]["meta"]["line"] == line_of(prog, "# input")
    assert stdin[1]["meta"]["line"] == line_of(prog, "# readline")
    assert stdin[2]["meta"]["line"] == line_of(prog, "# iterate")


def test_binary_read_of_stdin(record, tmp_path):
    prog = script(tmp_path, """
        import sys
        data = sys.stdin.buffer.read()
        print(len(data))
    """)
    rec = record(prog, input="abc\n")
    assert rec.stdout == "4\n"
    (event,) = io_events(rec.view, "stdin")
    assert event["content"] == "abc\n" and "binary" in event["meta"]["flags"]


def test_threads_attributed_to_their_own_steps(record, backend, tmp_path):
    prog = script(tmp_path, """
        import sys, threading
        def worker(n):
            for i in range(3):
                sys.stdout.write("worker %d %d\\n" % (n, i))   # worker line
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print("main done")              # main line
    """)
    rec = record(prog, env=backend)
    plain = run_python([str(prog)], cwd=tmp_path)
    assert sorted(rec.stdout.splitlines()) == sorted(plain.stdout.splitlines())
    events = io_events(rec.view)
    assert sorted(e["content"] for e in events) == sorted(line + "\n" for line in plain.stdout.splitlines())
    view = rec.view
    worker_line = line_of(prog, "# worker line")
    by_thread: dict[int, set] = {}
    for e in events:
        if e["content"].startswith("worker"):
            assert e["meta"]["line"] == worker_line
            by_thread.setdefault(e["meta"]["thread"], set()).add(e["content"].split()[1])
        else:
            assert e["meta"] == {"stream": "stdout", "thread": 0, "path_id": 0,
                                 "line": line_of(prog, "# main line"), "flags": ["newline"]}
    # each worker's lines carry one thread number, not the main thread's, and that thread
    # really ran the worker's steps
    assert len(by_thread) == 3 and 0 not in by_thread
    assert all(len(ns) == 1 for ns in by_thread.values())
    worker_threads = {s.thread for s in view.steps if s.function == "worker"}
    assert set(by_thread) == worker_threads


def test_program_closing_stdout(record, backend, tmp_path):
    prog = script(tmp_path, """
        import sys
        print("before")
        sys.stdout.close()
        try:
            print("after")
        except ValueError as exc:
            print("closed:", exc, file=sys.stderr)
    """)
    rec = record(prog, env=backend)
    plain = run_python([str(prog)], cwd=tmp_path)
    expected = ("before\n", "closed: I/O operation on closed file.\n")
    assert (rec.stdout, rec.stderr) == (plain.stdout, plain.stderr) == expected
    assert [(e["meta"]["stream"], e["content"]) for e in io_events(rec.view)] == [
        ("stdout", "before\n"), ("stderr", "closed: I/O operation on closed file.\n")]


def test_program_replacing_and_restoring_stdout(record, backend, tmp_path):
    prog = script(tmp_path, """
        import io, sys
        facts = [isinstance(sys.stdout, io.TextIOWrapper), sys.stdout is sys.__stdout__,
                 sys.stdout.fileno(), sys.stdout.isatty(), sys.stdout.encoding, sys.stdout.name,
                 sys.stdout.line_buffering, sys.stdout.errors, sys.stdin.fileno(), sys.stdin.isatty(),
                 isinstance(sys.stdout.buffer, io.BufferedIOBase) or isinstance(sys.stdout.buffer, io.RawIOBase)]
        print(facts)
        sys.stdout = io.StringIO()
        print("swallowed")
        captured = sys.stdout.getvalue()
        sys.stdout = sys.__stdout__
        print("got", repr(captured))    # restored
        with open("side.txt", "w") as f:
            print("to a file", file=f)
    """)
    rec = record(prog, env=backend)
    plain = run_python([str(prog)], cwd=tmp_path)
    assert rec.stdout == plain.stdout
    assert rec.stdout.splitlines()[0].startswith("[True, True, 1, False, 'utf-8', '<stdout>'")
    events = io_events(rec.view)
    assert text_of(events) == plain.stdout
    assert "swallowed\n" not in [e["content"] for e in events] and "to a file" not in text_of(events)
    assert events[-1]["meta"]["line"] == line_of(prog, "# restored")


def test_redirection_to_a_file_is_unchanged(tmp_path):
    prog = script(tmp_path, """
        import sys
        for i in range(3):
            print("line", i)
        sys.stdout.write("tail")
        print("err", file=sys.stderr)
    """)
    for env in (None, BUFFERED):
        with open(tmp_path / "plain.txt", "wb") as f:
            run_bytes([str(prog)], cwd=tmp_path, env=env, stdout=f)
        with open(tmp_path / "rec.txt", "wb") as f:
            proc, view = record_bytes(tmp_path, prog, env=env, stdout=f)
        expected = b"line 0\nline 1\nline 2\ntail"
        assert (tmp_path / "rec.txt").read_bytes() == (tmp_path / "plain.txt").read_bytes() == expected
        assert proc.stderr == b"err\n"
        assert text_of(io_events(view, "stdout")) == "line 0\nline 1\nline 2\ntail"


def test_binary_and_undecodable_output(tmp_path):
    prog = script(tmp_path, """
        import sys
        sys.stdout.buffer.write(b"bin \\xff\\xfe ok\\n")
        sys.stdout.buffer.write("caf\\u00e9 ".encode()[:4])   # a character split across writes
        sys.stdout.buffer.write("caf\\u00e9 ".encode()[4:] + b"\\n")
        sys.stdout.flush()
        print("lone \\udcff surrogate")     # surrogateescape: the byte 0xff
        print("text \\u2603")
    """)
    plain = run_bytes([str(prog)], cwd=tmp_path)
    proc, view = record_bytes(tmp_path, prog)
    assert proc.stdout == plain.stdout
    assert b"\xff\xfe" in proc.stdout
    events = io_events(view, "stdout")
    assert text_of(events) == "bin \ufffd\ufffd ok\ncaf\u00e9 \nlone \ufffd surrogate\ntext \u2603\n"
    assert "binary" in events[0]["meta"]["flags"]


def test_long_output_is_split_into_bounded_events(record, tmp_path):
    prog = script(tmp_path, """
        import sys
        sys.stdout.write("x" * 200_000)
        sys.stdout.write("y" * 100 + "\\n" + "z" * 70_000)
    """)
    rec = record(prog)
    expected = "x" * 200_000 + "y" * 100 + "\n" + "z" * 70_000
    assert rec.stdout == expected
    events = io_events(rec.view)
    assert text_of(events) == expected
    assert max(len(e["content"]) for e in events) <= 64 * 1024
    assert any("split" in e["meta"]["flags"] for e in events)


def test_capture_off(record, tmp_path):
    prog = script(tmp_path, """
        print("hello")
    """)
    rec = record(prog, options=["--io-capture", "off"])
    assert rec.stdout == "hello\n"
    assert io_events(rec.view) == []
    rec = record(prog, env={"CODETRACER_CAPTURE_IO": "0"})
    assert io_events(rec.view) == []


@pytest.mark.parametrize("io_table, captured", [
    ("capture = false", set()),
    ('capture = true\nstreams = ["stderr"]', {"stderr"}),
    ('capture = true\nstreams = ["stdout", "stdin"]', {"stdout", "stdin"}),
])
def test_filter_io_section_selects_streams(record, tmp_path, io_table, captured):
    flt = tmp_path / "io.toml"
    flt.write_text('[meta]\nname = "io"\nversion = 1\n\n[io]\n%s\n\n[scope]\ndefault_exec = "trace"\n'
                   'default_value_action = "allow"\n' % io_table, encoding="utf-8")
    prog = script(tmp_path, """
        import sys
        line = input()
        print("out", line)
        print("err", file=sys.stderr)
    """)
    for options in (["--trace-filter", str(flt)], ["--trace-filter", str(flt), *["--io-capture", "proxies+fd"]]):
        rec = record(prog, options=options, input="in\n")
        assert (rec.stdout, rec.stderr) == ("out in\n", "err\n")
        events = io_events(rec.view)
        assert {e["meta"]["stream"] for e in events} == captured
        expected = {"stdout": "out in\n", "stderr": "err\n", "stdin": "in\n"}
        for stream in captured:
            assert text_of(io_events(rec.view, stream)) == expected[stream]


def test_output_of_unrecorded_code(record, backend, tmp_path):
    prog = script(tmp_path, """
        import json, sys, threading
        json.dump({"a": 1}, sys.stdout)   # dump
        print()                           # newline
        t = threading.Thread(target=print, args=("from a thread that runs no recorded code",))
        t.start(); t.join()
    """)
    rec = record(prog, env=backend)
    events = io_events(rec.view)
    assert text_of(events) == '{"a": 1}\nfrom a thread that runs no recorded code\n'
    # written inside the (unrecorded) stdlib: attributed to the recorded line that called it
    assert [(e["content"], e["meta"]["line"]) for e in events[:2]] == [
        ('{"a": 1}', line_of(prog, "# dump")), ("\n", line_of(prog, "# newline"))]
    # a thread with no recorded frame: no location, flagged detached, its own thread number
    meta = events[2]["meta"]
    assert (meta["path_id"], meta["line"]) == (None, None) and "detached" in meta["flags"]
    assert meta["thread"] != 0


def test_recorder_diagnostics_are_not_program_output(record, tmp_path):
    # A recorder failure with on_recorder_error=disable logs a warning while the program
    # runs on; the warning reaches stderr but is never an event of the kept trace.
    prog = script(tmp_path, """
        import sys
        print("one")
        print("two", file=sys.stderr)
        x = 1
        print("three")
    """)
    for options in ([], ["--io-capture", "proxies+fd"]):
        rec = record(prog, options=[*options, "--on-recorder-error", "disable", "--keep-partial-trace"],
                     env={"CODETRACER_TEST_INJECT_FAILURE": "line:4"})
        assert rec.stdout == "one\nthree\n"
        assert "two\n" in rec.stderr and "recording stopped" in rec.stderr
        assert all("recording stopped" not in e["content"] for e in io_events(rec.view))


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX pty")
def test_input_on_a_terminal_is_recorded(tmp_path):
    """input() on a terminal reads through readline, not sys.stdin: still recorded."""
    import os
    import pty
    import select
    import subprocess

    from rewind_testing import assert_valid, subprocess_env
    from tracemodel import TraceView

    prog = script(tmp_path, """
        name = input("who? ")
        print("hello", name)
    """)
    master, slave = pty.openpty()
    out = tmp_path / "tty-trace"
    proc = subprocess.Popen([sys.executable, "-m", "rewind", "-o", str(out), str(prog)], cwd=str(tmp_path),
                            env=subprocess_env(), stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    seen = b""
    try:
        os.write(master, b"ada\n")
        while proc.poll() is None or select.select([master], [], [], 0)[0]:
            if select.select([master], [], [], 0.2)[0]:
                try:
                    chunk = os.read(master, 1024)
                except OSError:
                    break
                if not chunk:
                    break
                seen += chunk
    finally:
        proc.wait(timeout=60)
        os.close(master)
    assert b"hello ada" in seen
    assert_valid(out)
    events = io_events(TraceView(str(out)))
    assert [(e["meta"]["stream"], e["content"]) for e in events] == [
        ("stdout", "who? "), ("stdin", "ada\n"), ("stdout", "hello ada\n")]


def test_api_session_restores_the_streams(tmp_path):
    from rewind_testing import assert_valid
    from tracemodel import TraceView

    prog = script(tmp_path, """
        import io, sys
        import rewind
        before = (sys.stdout, sys.stderr, sys.stdin, sys.__stdout__)
        with rewind.trace("api-trace"):
            def work():
                print("inside")         # inside
                print("inside err", file=sys.stderr)
            work()
        after = (sys.stdout, sys.stderr, sys.stdin, sys.__stdout__)
        print("outside", before == after, type(sys.stdout) is io.TextIOWrapper)
    """)
    plain_like = "inside\noutside True True\n"
    proc = run_bytes([str(prog)], cwd=tmp_path)
    assert proc.stdout.decode() == plain_like, proc.stderr
    assert proc.stderr == b"inside err\n"
    assert_valid(tmp_path / "api-trace")
    events = io_events(TraceView(str(tmp_path / "api-trace")))
    assert [(e["meta"]["stream"], e["content"], e["meta"]["line"]) for e in events] == [
        ("stdout", "inside\n", line_of(prog, "# inside")), ("stderr", "inside err\n", line_of(prog, "# inside") + 1)]


def test_a_captured_stream_held_in_a_variable_is_shown_as_the_stream(record, backend, tmp_path):
    # sys.stdout is rewind's proxy while output is captured; a program that keeps it (as pytest's
    # capture does) must see the stream there, never rewind's internals.
    prog = script(tmp_path, """
        import sys

        def keep():
            out = sys.stdout
            err = sys.stderr
            return out is sys.stdout

        keep()
    """)
    rec = record(prog, env=backend)
    shown, = rec.view.values_at("keep", line_of(prog, "return out is sys.stdout"))
    assert isinstance(shown["out"], Raw) and shown["out"].r.startswith("<_io.TextIOWrapper name='<stdout>'")
    assert isinstance(shown["err"], Raw) and shown["err"].r.startswith("<_io.TextIOWrapper name='<stderr>'")
    trace_text = (rec.trace_dir / "trace.json").read_text()
    assert "_rw_" not in trace_text and "Recorder" not in trace_text
