"""Running one measured subprocess, and the bookkeeping around it (shared by run.py's suites).

Each run is a fresh process in its own directory: wall time (perf_counter around the process),
peak RSS of that process (`os.wait4` rusage, ru_maxrss), exit status, stdout (kept in a file and
compared with the untraced run's), the trace directory's size, and the number of steps (from
`trace_metadata.json` `events.steps`, else by counting `{"Step":` in `trace.json`).
A watchdog kills a run that exceeds the time limit or whose directory grows past the size limit,
so a pathological recording cannot fill the disk of a shared machine.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SRC = ROOT / "src"

# Environment variables that would change what a recorder does: never inherited.
_SCRUB_PREFIXES = ("CODETRACER_", "REWIND_")


def clean_env(extra: dict | None = None, *, rewind_src: bool = False) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUB_PREFIXES)}
    env.pop("PYTHONPATH", None)
    if rewind_src:
        env["PYTHONPATH"] = str(SRC)
    env["PYTHONHASHSEED"] = "0"
    env.update(extra or {})
    return env


@dataclass
class Outcome:
    wall: float
    returncode: int
    maxrss_kb: int
    stdout_path: Path
    stderr_tail: str
    killed: str | None = None          # "timeout" / "size" when the watchdog ended it
    trace_bytes: int = 0               # all files of the trace directory
    event_file_bytes: int = 0          # trace.json or trace.bin
    steps: int | None = None
    recorder: dict | None = None       # trace_metadata.json "recorder" (rewind and native)
    extra: dict = field(default_factory=dict)


def dir_size(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


def run_measured(argv: list[str], *, env: dict, cwd: Path, timeout: float,
                 max_bytes: int, watch_dir: Path) -> Outcome:
    """Run argv once (through launch.py, which measures wall time and peak RSS); stdout and
    stderr go to files in cwd."""
    cwd.mkdir(parents=True, exist_ok=True)
    out_path, err_path, stats_path = cwd / "stdout.txt", cwd / "stderr.txt", cwd / "launch.json"
    launcher = [sys.executable, "-S", "-E", str(BENCH / "launch.py"), str(stats_path)]
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(launcher + argv, cwd=str(cwd), env=env, stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        killed: list[str] = []
        done = threading.Event()

        def watchdog() -> None:
            deadline = start + timeout
            while not done.wait(0.5):
                reason = None
                if time.perf_counter() > deadline:
                    reason = "timeout"
                elif dir_size(watch_dir) > max_bytes:
                    reason = "size"
                if reason:
                    killed.append(reason)
                    try:
                        os.killpg(proc.pid, signal.SIGKILL)
                    except OSError:
                        pass
                    return

        thread = threading.Thread(target=watchdog, daemon=True)
        thread.start()
        proc.wait()
        outer_wall = time.perf_counter() - start
        done.set()
        thread.join()
    tail = err_path.read_bytes()[-1500:].decode("utf-8", "replace")
    try:
        stats = json.loads(stats_path.read_text())
    except (OSError, ValueError):
        stats = {"wall": outer_wall, "returncode": proc.returncode or -1, "maxrss_kb": 0}
    return Outcome(stats["wall"], stats["returncode"], stats["maxrss_kb"], out_path, tail,
                   killed[0] if killed else None, extra={"user": stats.get("user"), "sys": stats.get("sys")})


_STEP = b'{"Step":'


def count_steps_json(path: Path) -> int:
    """Count Step events in a trace.json without parsing it (`{"Step":` cannot occur inside
    a JSON string: a quote there is always escaped)."""
    count, tail = 0, b""
    with open(path, "rb") as f:
        while True:
            chunk = f.read(1 << 24)
            if not chunk:
                break
            data = tail + chunk
            count += data.count(_STEP)
            # keep the last len-1 bytes: a match across the boundary is counted once, and
            # the tail alone is too short to hold a match counted before
            tail = data[-(len(_STEP) - 1):]
    return count


def inspect_trace(trace_dir: Path, outcome: Outcome, *, want_steps: bool) -> None:
    if not trace_dir.is_dir():
        return
    outcome.trace_bytes = dir_size(trace_dir)
    for name in ("trace.json", "trace.bin"):
        if (trace_dir / name).is_file():
            outcome.event_file_bytes = (trace_dir / name).stat().st_size
            break
    meta = {}
    try:
        meta = json.loads((trace_dir / "trace_metadata.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    if isinstance(meta.get("recorder"), dict):
        outcome.recorder = meta["recorder"]
    if not want_steps:
        return
    events = meta.get("events")
    if isinstance(events, dict) and isinstance(events.get("steps"), int):
        outcome.steps = events["steps"]
    elif (trace_dir / "trace.json").is_file():
        outcome.steps = count_steps_json(trace_dir / "trace.json")


_TIMING = re.compile(rb"\d+\.\d+s\b")


def normalized_stdout(path: Path) -> bytes:
    """stdout with run-dependent timings ("60 passed in 0.14s") blanked."""
    try:
        return _TIMING.sub(b"<t>", path.read_bytes())
    except OSError:
        return b""


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def fmt_ratio(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return "%.0fx" % value
    if value >= 10:
        return "%.1fx" % value
    if 0 < value < 0.1:
        return "1/%.0f" % (1 / value)   # 0.0024 -> "1/417": a size far below the native one
    return "%.2fx" % value


def fmt_num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return ("%%.%df" % digits) % value


def fmt_size(n: int | None) -> str:
    if not n:
        return "-"
    if n >= 1 << 30:
        return "%.2f GB" % (n / (1 << 30))
    if n >= 1 << 20:
        return "%.1f MB" % (n / (1 << 20))
    return "%.0f KB" % (n / 1024)


def print_table(headers: list[str], rows: list[list[str]], out=None) -> None:
    widths = [max(len(str(r[i])) for r in [headers] + rows) for i in range(len(headers))]
    line = "  ".join(h.ljust(w) if i < 2 else h.rjust(w) for i, (h, w) in enumerate(zip(headers, widths)))
    print(line, file=out)
    print("-" * len(line), file=out)
    for row in rows:
        print("  ".join(str(c).ljust(w) if i < 2 else str(c).rjust(w)
                        for i, (c, w) in enumerate(zip(row, widths))), file=out)
