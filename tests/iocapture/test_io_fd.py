"""`--io-capture proxies+fd` (POSIX): bytes written straight to file descriptors 1 and 2
are recorded too, never twice, and the user sees the same bytes in the same order."""
from __future__ import annotations

import os

import pytest
from iocap_support import BUFFERED, FD, io_events, line_of, record_bytes, record_settled, run_bytes, script, text_of

from rewind_testing import run_python

pytestmark = pytest.mark.skipif(os.name != "posix", reason="file-descriptor capture is POSIX only")


def test_os_write_is_recorded_once(record, backend, tmp_path):
    prog = script(tmp_path, """
        import os, sys
        print("proxy line")             # proxy
        os.write(1, b"fd line\\n")       # fd out
        os.write(2, b"fd err\\n")        # fd err
        sys.stderr.write("proxy err\\n")
        print("last")
    """)
    fd_line = line_of(prog, "# fd out")
    rec = record_settled(record, prog, lambda r: any(
        e["content"] == "fd line\n" and e["meta"]["line"] == fd_line for e in io_events(r.view, "stdout")),
        options=FD, env=backend)
    plain = run_python([str(prog)], cwd=tmp_path)
    assert (rec.stdout, rec.stderr) == (plain.stdout, plain.stderr)
    out = io_events(rec.view, "stdout")
    assert text_of(out) == "proxy line\nfd line\nlast\n"  # in order, each once
    err = io_events(rec.view, "stderr")
    assert text_of(err) == "fd err\nproxy err\n"
    fd_out = [e for e in out if e["content"] == "fd line\n"][0]
    assert "mirror" in fd_out["meta"]["flags"] and fd_out["kind"] == 0
    assert fd_out["meta"]["line"] == fd_line
    assert "mirror" not in out[0]["meta"]["flags"]
    assert [e for e in err if e["content"] == "fd err\n"][0]["kind"] == 2


def test_subprocess_writing_to_the_inherited_stdout(record, tmp_path):
    prog = script(tmp_path, """
        import subprocess, sys
        print("parent before", flush=True)
        child = "import sys; print('child out'); print('child err', file=sys.stderr)"
        subprocess.run([sys.executable, "-c", child])   # child
        print("parent after")
    """)
    plain = run_python([str(prog)], cwd=tmp_path)
    child_line = line_of(prog, "# child")
    rec = record_settled(record, prog, lambda r: all(
        e["meta"]["line"] == child_line for e in io_events(r.view) if "child" in e["content"]), options=FD)
    assert (rec.stdout, rec.stderr) == (plain.stdout, plain.stderr)
    assert text_of(io_events(rec.view, "stdout")) == "parent before\nchild out\nparent after\n"
    assert text_of(io_events(rec.view, "stderr")) == "child err\n"
    child = [e for e in io_events(rec.view) if "child" in e["content"]]
    assert all(e["meta"]["line"] == child_line and "mirror" in e["meta"]["flags"] for e in child)
    # with the proxies alone, the child's output reaches the user but not the trace
    rec = record(prog)
    assert rec.stdout == plain.stdout
    assert text_of(io_events(rec.view, "stdout")) == "parent before\nparent after\n"


@pytest.mark.parametrize("env", [None, BUFFERED], ids=["unbuffered", "buffered"])
def test_order_and_bytes_match_an_unrecorded_run(tmp_path, env):
    # Block-buffered stdout (a pipe, PYTHONUNBUFFERED unset) puts os.write's bytes before the
    # print's: the recorded run must show exactly that too, and in a file as well.
    prog = script(tmp_path, """
        import os, sys
        print("printed 1")
        os.write(1, b"raw 1\\n")
        sys.stdout.buffer.write(b"bytes \\xff\\n")
        print("printed 2")
        os.write(1, b"raw 2\\n")
        sys.__stdout__.write("dunder\\n")
        sys.stdout.write("tail")
    """)
    plain = run_bytes([str(prog)], cwd=tmp_path, env=env)
    proc, view = record_bytes(tmp_path, prog, *FD, env=env)
    assert proc.stdout == plain.stdout
    assert sorted(text_of(io_events(view, "stdout")).splitlines()) == sorted(
        plain.stdout.decode("utf-8", "replace").splitlines())
    with open(tmp_path / "plain.txt", "wb") as f:
        run_bytes([str(prog)], cwd=tmp_path, env=env, stdout=f)
    with open(tmp_path / "rec.txt", "wb") as f:
        record_bytes(tmp_path, prog, *FD, env=env, stdout=f, name="trace-file")
    assert (tmp_path / "rec.txt").read_bytes() == (tmp_path / "plain.txt").read_bytes()


def test_program_closing_stdout_with_fd_capture(record, tmp_path):
    prog = script(tmp_path, """
        import os, sys
        print("before")
        sys.stdout.close()
        try:
            os.write(1, b"raw after close\\n")
        except OSError as exc:
            print("os.write:", exc.errno, file=sys.stderr)
        try:
            print("after")
        except ValueError as exc:
            print("print:", exc, file=sys.stderr)
    """)
    plain = run_python([str(prog)], cwd=tmp_path)
    raw_line = line_of(prog, "raw after close")
    rec = record_settled(record, prog, lambda r: any(
        e["content"] == "raw after close\n" and e["meta"]["line"] == raw_line for e in io_events(r.view, "stdout")),
        options=FD)
    assert (rec.stdout, rec.stderr) == (plain.stdout, plain.stderr)
    # sys.stdout.close() leaves descriptor 1 open (the interpreter's streams do not own it)
    assert plain.stdout == "before\nraw after close\n"
    assert plain.stderr == "print: I/O operation on closed file.\n"
    out = io_events(rec.view, "stdout")
    assert text_of(out) == plain.stdout
    assert out[1]["meta"]["line"] == raw_line and "mirror" in out[1]["meta"]["flags"]
    assert text_of(io_events(rec.view, "stderr")) == plain.stderr


def test_threads_writing_to_the_descriptor(record, tmp_path):
    # One write per line (print writes its text and the newline separately: another thread
    # may write in between, with or without rewind).
    prog = script(tmp_path, """
        import os, sys, threading
        def worker(n):
            for i in range(20):
                os.write(1, b"w%d %d\\n" % (n, i))
                sys.stdout.write("p%d %d\\n" % (n, i))
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    """)
    rec = record(prog, options=FD)
    expected = sorted("%s%d %d" % (kind, n, i) for kind in "wp" for n in range(3) for i in range(20))
    assert sorted(rec.stdout.splitlines()) == expected
    assert sorted(text_of(io_events(rec.view, "stdout")).splitlines()) == expected


def test_fd_capture_of_a_replaced_stdout(record, tmp_path):
    # A program that swaps in its own stream object on descriptor 1: recorded from the
    # descriptor (once), not from both places.
    prog = script(tmp_path, """
        import io, os, sys
        sys.stdout = io.TextIOWrapper(open(os.dup(1), "wb", buffering=0), write_through=True)
        print("through my own stream")
        sys.stdout.flush()
    """)
    rec = record(prog, options=FD)
    assert rec.stdout == "through my own stream\n"
    assert text_of(io_events(rec.view, "stdout")) == "through my own stream\n"


def test_forked_child_output_is_recorded_without_changing_the_parent(record, tmp_path):
    # The tee's reader thread stops around fork(): the parent sees no "multi-threaded
    # fork" warning (3.12+) that an unrecorded run would not show.
    prog = script(tmp_path, """
        import os, sys, warnings
        warnings.simplefilter("always")
        pid = os.fork()
        if pid == 0:
            print("from the child")
            sys.stdout.flush()
            os._exit(0)
        os.waitpid(pid, 0)              # wait
        print("parent done")
    """)
    plain = run_python([str(prog)], cwd=tmp_path)
    rec = record(prog, options=FD)
    assert (rec.stdout, rec.stderr) == (plain.stdout, plain.stderr) == ("from the child\nparent done\n", "")
    out = io_events(rec.view, "stdout")
    assert [(e["content"], "mirror" in e["meta"]["flags"]) for e in out] == [
        ("from the child\n", True), ("parent done\n", False)]


@pytest.mark.parametrize("options", [[], FD], ids=["proxies", "fd"])
def test_os_exit_leaves_buffered_output_unwritten_as_without_rewind(tmp_path, options):
    prog = script(tmp_path, """
        import os, sys
        print("buffered")
        os.write(1, b"raw\\n")
        sys.stdout.write("partial")
        os._exit(0)
    """)
    plain = run_bytes([str(prog)], cwd=tmp_path, env=BUFFERED)
    proc, view = record_bytes(tmp_path, prog, *options, env=BUFFERED)
    assert proc.stdout == plain.stdout == b"raw\n"
    # the trace holds what the program wrote, including what os._exit threw away
    assert "buffered\n" in text_of(io_events(view, "stdout")) and text_of(io_events(view, "stdout")).endswith("partial")
