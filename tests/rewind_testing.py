"""Helpers shared by the tests: run rewind in a subprocess, validate its traces."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

from tracemodel import TraceView  # noqa: E402

CORPUS = Path(__file__).resolve().parent / "corpus"
WORKLOADS = ROOT / "bench" / "workloads"
HAS_MONITORING = hasattr(sys, "monitoring")


def subprocess_env(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    src = str(ROOT / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    for name in list(env):
        if name.startswith("CODETRACER_") or name == "REWIND_BACKEND":
            del env[name]
    env.update(extra or {})
    return env


def assert_valid(trace_dir: str | Path) -> None:
    """Every trace a test writes goes through rewind's own validator."""
    from rewind.tools.validate import validate_trace
    report = validate_trace(str(trace_dir))
    assert report.valid, "trace %s is invalid:\n%s" % (trace_dir, "\n".join(map(str, report.problems)))


@dataclass
class Recording:
    proc: subprocess.CompletedProcess
    trace_dir: Path

    @property
    def view(self) -> TraceView:
        return TraceView(str(self.trace_dir))

    @property
    def stdout(self) -> str:
        return self.proc.stdout

    @property
    def stderr(self) -> str:
        return self.proc.stderr


def run_rewind(args: list[str], *, cwd: Path, env: dict | None = None, input: str | None = None,
               timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rewind", *args], cwd=str(cwd), env=subprocess_env(env),
                          capture_output=True, text=True, input=input, timeout=timeout)


def run_python(args: list[str], *, cwd: Path, env: dict | None = None, input: str | None = None,
               timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=str(cwd), env=subprocess_env(env),
                          capture_output=True, text=True, input=input, timeout=timeout)


def per_thread_flow(events: list) -> dict:
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
