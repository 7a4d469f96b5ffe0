"""Fixtures for the failure-behaviour tests: tiny programs written on the fly, and a way to
run rewind as a child process that a test can signal or limit."""
from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rewind_testing import subprocess_env


@pytest.fixture
def program(tmp_path):
    """program("name.py", source) -> the path of a script holding the dedented source."""

    def _program(name: str, source: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source).lstrip(), encoding="utf-8")
        return path

    return _program


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def popen_rewind(tmp_path):
    """popen_rewind(args, env=..., **popen_kw) -> a running `python -m rewind args` in tmp_path."""
    started = []

    def _popen(args, env=None, **kw):
        # The signal tests need Python's own SIGINT handling in the child: a test run started in
        # the background by a shell without job control inherits SIGINT ignored, and so would it.
        kw.setdefault("preexec_fn", _default_sigint)
        proc = subprocess.Popen([sys.executable, "-m", "rewind", *map(str, args)], cwd=str(tmp_path),
                                env=subprocess_env(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, **kw)
        started.append(proc)
        return proc

    yield _popen
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
