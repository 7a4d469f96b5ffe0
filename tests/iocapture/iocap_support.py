"""Helpers for the IO capture tests: small programs on disk, plain runs to compare with,
and the IO events of a trace with their metadata decoded."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from rewind_testing import assert_valid, subprocess_env
from tracemodel import TraceView

FD = ["--io-capture", "proxies+fd"]
BUFFERED = {"PYTHONUNBUFFERED": ""}  # the environment of these runs sets it; Python ignores an empty value


def script(tmp_path: Path, text: str, name: str = "prog.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def io_events(view: TraceView, stream: str | None = None) -> list[dict]:
    """IO events in trace order: content, kind, meta (decoded metadata), step (the Step the
    event follows in the trace)."""
    out = []
    for record in view.io:
        meta = json.loads(record["metadata"])
        if stream is None or meta["stream"] == stream:
            out.append({"content": record["content"], "kind": record["kind"], "meta": meta,
                        "step": record["step"]})
    return out


def text_of(events: list[dict]) -> str:
    return "".join(e["content"] for e in events)


def line_of(path: Path, marker: str) -> int:
    """1-based number of the line of `path` holding `marker`."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if marker in line:
            return number
    raise AssertionError("%r not in %s" % (marker, path))


def run_bytes(args: list[str], *, cwd: Path, env: dict | None = None, stdin: bytes | None = None,
              stdout=subprocess.PIPE) -> subprocess.CompletedProcess:
    """Run `python ARGS` with byte-exact output (the record fixture decodes text)."""
    return subprocess.run([sys.executable, *args], cwd=str(cwd), env=subprocess_env(env), input=stdin,
                          stdout=stdout, stderr=subprocess.PIPE, timeout=120)


def record_bytes(tmp_path: Path, prog: Path, *options: str, env: dict | None = None, stdin: bytes | None = None,
                 stdout=subprocess.PIPE, name: str = "trace") -> tuple[subprocess.CompletedProcess, TraceView]:
    out = tmp_path / name
    proc = run_bytes(["-m", "rewind", "-o", str(out), *options, str(prog)], cwd=tmp_path, env=env, stdin=stdin,
                     stdout=stdout)
    assert out.is_dir(), proc.stderr.decode(errors="replace")
    assert_valid(out)
    return proc, TraceView(str(out))


FD_TRIES = 3


def record_settled(record, prog: Path, settled, **options):
    """`record(prog, **options)` until `settled(recording)` holds, at most FD_TRIES times (the
    last recording otherwise, for the caller's assertions to report).

    Bytes written straight to descriptor 1/2 are recorded as the output of the step that
    was running when the tee took them from its pipe.  On a loaded machine the tee's reader
    thread can take them late, and they land one step later: a known gap of fd capture
    (its order, bytes and stream are always right, and are checked on every recording).
    Only the line a step is recorded at may need another recording."""
    for _ in range(FD_TRIES):
        recording = record(prog, **options)
        if settled(recording):
            break
    return recording

