"""Both interpreter hooks write the same trace for the same program (issue: one event
stream whatever the backend).  Runs where both exist: Python 3.12+."""
from __future__ import annotations

import json
import re
import sys

import pytest

from rewind_testing import CORPUS

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


def _per_thread(events: list) -> dict:
    """Each thread's steps, calls and returns, definitions apart: threads interleave
    differently from run to run, and so do the values of what they share (the `out` dict
    they all fill), but each thread's own control flow does not."""
    threads: dict = {}
    definitions = []
    current = 0
    for event in events:
        (variant, payload), = event.items()
        if variant in ("ThreadStart", "ThreadSwitch"):
            current = payload
        elif variant == "ThreadExit":
            continue  # its number depends on which thread ran first
        elif variant in ("Path", "Function", "Type", "VariableName"):
            definitions.append(event)
        elif variant == "Step":
            threads.setdefault(current, []).append(("Step", payload["line"]))
        elif variant == "Call":
            threads.setdefault(current, []).append(("Call", payload["function_id"]))
        elif variant == "Return":
            threads.setdefault(current, []).append(("Return",))
    return {"definitions": sorted(map(json.dumps, definitions)),
            "threads": sorted(map(json.dumps, threads.values()))}


@pytest.mark.parametrize("program", PROGRAMS)
def test_monitoring_and_settrace_write_the_same_trace(record, program):
    monitoring = record(CORPUS / program, env={"REWIND_BACKEND": "monitoring"}, cwd=CORPUS)
    settrace = record(CORPUS / program, env={"REWIND_BACKEND": "settrace"}, cwd=CORPUS)
    assert monitoring.stdout == settrace.stdout
    a, b = _events(monitoring.trace_dir), _events(settrace.trace_dir)
    if program == "threads_prog.py":
        assert _per_thread(a) == _per_thread(b)
    else:
        assert a == b
    meta = json.loads((settrace.trace_dir / "trace_metadata.json").read_text())
    assert meta["recorder"]["backend"] == "settrace"
