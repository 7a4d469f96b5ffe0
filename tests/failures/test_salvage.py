"""salvage.finish_json_trace: a trace.json cut anywhere becomes a valid, closed trace."""
from __future__ import annotations

import json
import shutil

import pytest

from rewind import salvage
from rewind.tools.validate import validate_trace
from rewind_testing import run_rewind
from tracemodel import TraceView

METADATA = {"recording_id": "01920000-0000-7000-8000-000000000000", "program": "p.py", "args": [],
            "workdir": "/", "partial": True}


# Threads, a generator and an exception: thread switches and nesting to cut through.
PROGRAM = """
import threading

def gen(n):
    for i in range(n):
        yield i

def fails():
    raise ValueError("x")

def worker(k):
    total = sum(gen(k))
    try:
        fails()
    except ValueError:
        total += 1
    return total

threads = [threading.Thread(target=worker, args=(k,)) for k in (2, 3)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(worker(4))
"""


@pytest.fixture(scope="module")
def threaded_trace(tmp_path_factory):
    """A small finished trace of PROGRAM."""
    base = tmp_path_factory.mktemp("salvage")
    script = base / "prog.py"
    script.write_text(PROGRAM)
    out = base / "trace"
    proc = run_rewind(["-o", str(out), str(script)], cwd=base)
    assert proc.returncode == 0, proc.stderr
    assert (out / "trace.json").stat().st_size < 20000
    return out


def _salvage_copy(source, target, data: bytes, **kw) -> list:
    target.mkdir()
    (target / "trace.json").write_bytes(data)
    paths = salvage.finish_json_trace(str(target / "trace.json"), toplevel_path="/x/p.py", **kw)
    (target / "trace_paths.json").write_text(json.dumps(paths))
    (target / "trace_metadata.json").write_text(json.dumps(METADATA))
    return paths


def _assert_valid(directory):
    report = validate_trace(str(directory))
    assert report.valid, "\n".join(map(str, report.problems))


def test_cut_at_any_byte_gives_a_valid_trace(threaded_trace, tmp_path):
    data = (threaded_trace / "trace.json").read_bytes()
    closing = len(data) - len(b"\n]\n")
    assert data[closing:] == b"\n]\n"
    step = max(1, len(data) // 400)
    for cut in [*range(0, len(data), step), closing - 1, closing, len(data) - 1, len(data)]:
        target = tmp_path / ("cut%d" % cut)
        _salvage_copy(threaded_trace, target, data[:cut], exit_code=1)
        _assert_valid(target)
        view = TraceView(str(target))
        assert view.open_at_end == {}
        # Cut before the end, the salvaged trace returns the given status; else the original's.
        assert view.toplevel.returned == (1 if cut < closing else 0)
        shutil.rmtree(target)


def test_a_finished_trace_keeps_its_events(threaded_trace, tmp_path):
    data = (threaded_trace / "trace.json").read_bytes()
    paths = _salvage_copy(threaded_trace, tmp_path / "t", data, exit_code=0)
    assert paths == json.loads((threaded_trace / "trace_paths.json").read_text())
    assert json.loads((tmp_path / "t" / "trace.json").read_text()) == json.loads(data)


def test_error_text_and_unknown_exit(threaded_trace, tmp_path):
    data = (threaded_trace / "trace.json").read_bytes()
    _salvage_copy(threaded_trace, tmp_path / "t", data[: len(data) // 2], exit_code=None,
                  error_text="Traceback...\nValueError: \udcff bad\n")
    _assert_valid(tmp_path / "t")
    view = TraceView(str(tmp_path / "t"))
    assert view.toplevel.returned == "<exit>"
    (error,) = view.errors
    assert error["content"].startswith("Traceback") and "\udcff" not in error["content"]


def test_a_missing_or_empty_file_becomes_a_minimal_trace(tmp_path):
    for name, data in (("empty", b""), ("torn", b'[{"Path":"/x/p.p')):
        paths = _salvage_copy(None, tmp_path / name, data, exit_code=3)
        assert paths == ["/x/p.py"]
        _assert_valid(tmp_path / name)
        assert TraceView(str(tmp_path / name)).toplevel.returned == 3
    (tmp_path / "none").mkdir()
    paths = salvage.finish_json_trace(str(tmp_path / "none" / "trace.json"), toplevel_path="/x/p.py")
    assert paths == ["/x/p.py"] and (tmp_path / "none" / "trace.json").exists()


def test_stale_staging_of_dead_processes_is_removed(tmp_path):
    dead = tmp_path / ".trace.rewind-staging-999999999-abcd"
    mine = tmp_path / (".trace.rewind-staging-%d-abcd" % __import__("os").getpid())
    other = tmp_path / ".other.rewind-staging-999999999-abcd"
    for d in (dead, mine, other):
        d.mkdir()
    salvage.remove_stale_staging(str(tmp_path), "trace")
    assert not dead.exists() and mine.exists() and other.exists()
