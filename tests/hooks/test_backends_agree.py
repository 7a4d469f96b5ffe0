"""Both interpreter hooks write the same trace for the same program (issue: one event
stream whatever the backend).  Runs where both exist: Python 3.12+."""
from __future__ import annotations

import json
import re
import sys

import pytest

from rewind_testing import CORPUS, per_thread_flow

pytestmark = pytest.mark.skipif(not hasattr(sys, "monitoring"), reason="sys.monitoring needs Python 3.12+")

PROGRAMS = sorted(p.name for p in CORPUS.glob("*.py") if p.name not in {"os_exit.py", "interrupt.py"})


def _events(trace_dir) -> list:
    """The events, with what differs between any two runs masked inside repr texts: object
    addresses (` at 0x...`) and OS thread idents (`<Thread(..., stopped 1398...)>`)."""
    return _masked(json.loads((trace_dir / "trace.json").read_text()))


def _masked(node):
    if isinstance(node, dict):
        return {key: (_mask_repr(value) if key == "r" and isinstance(value, str) else _masked(value))
                for key, value in node.items()}
    if isinstance(node, list):
        return [_masked(item) for item in node]
    return node


def _mask_repr(text: str) -> str:
    return re.sub(r"\b\d{9,}\b", "<ident>", re.sub(r" at 0x[0-9a-f]+", " at 0x?", text))


@pytest.mark.parametrize("program", PROGRAMS)
def test_monitoring_and_settrace_write_the_same_trace(record, program):
    monitoring = record(CORPUS / program, env={"REWIND_BACKEND": "monitoring"}, cwd=CORPUS)
    settrace = record(CORPUS / program, env={"REWIND_BACKEND": "settrace"}, cwd=CORPUS)
    assert monitoring.stdout == settrace.stdout
    a, b = _events(monitoring.trace_dir), _events(settrace.trace_dir)
    if program == "threads_prog.py":
        assert per_thread_flow(a) == per_thread_flow(b)
    else:
        assert a == b
    meta = json.loads((settrace.trace_dir / "trace_metadata.json").read_text())
    assert meta["recorder"]["backend"] == "settrace"
