"""`rewind summary DIR`: what a trace holds, where its steps went, and how it was recorded.

Streaming, like `validate`: memory grows with the number of paths, functions and threads
and with the call depth, never with the number of events.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from .trace_reader import (
    METADATA_FILE,
    MissingExtraError,
    TraceNotFoundError,
    TraceSyntaxError,
    iter_events,
    locate_trace,
    read_json_file,
)

DEFAULT_TOP = 10
EVENT_KIND_NAMES = (
    "Write", "WriteFile", "WriteOther", "Read", "ReadFile", "ReadOther", "ReadDir", "OpenDir",
    "CloseDir", "Socket", "Open", "Error", "TraceLogEvent", "EvmEvent",
)
THREAD_VARIANTS = frozenset({"ThreadStart", "ThreadSwitch", "ThreadExit"})
# Events that do not end the "Step right before a Call" window (the reader relabels that step).
_DEFINITION_VARIANTS = frozenset({"Path", "Function", "Type", "VariableName"}) | THREAD_VARIANTS
_MAX_COUNTED_NAMES = 64  # distinct variant names counted one by one; garbage input stays bounded


def summarize(path: str | Path, top: int = DEFAULT_TOP) -> dict[str, Any]:
    """Summarize the trace directory at `path` (or its event file) in one streaming pass.

    Raises `TraceNotFoundError` when `path` is not a trace directory and `MissingExtraError`
    for a `trace.bin` without the `binary` extra.  Malformed JSON ends the pass early: the
    result then has `"complete": False` and the reader's message in `"read_error"`.
    """
    location = locate_trace(path)
    counter = _EventCounter()
    read_error = None
    reader_problems = 0

    def count_problem(index: int, message: str) -> None:
        nonlocal reader_problems
        reader_problems += 1

    try:
        for _, event in iter_events(location.events_file, on_problem=count_problem):
            counter.add(event)
    except TraceSyntaxError as err:
        read_error = f"event #{err.event_index}: {err}"

    metadata = _load_metadata(location.directory / METADATA_FILE)
    trace_filter = metadata.get("trace_filter") if isinstance(metadata.get("trace_filter"), dict) else {}
    file_sizes = {p.name: p.stat().st_size for p in sorted(location.directory.iterdir()) if p.is_file()}
    return {
        "trace_dir": str(location.directory),
        "format": location.format,
        "complete": read_error is None,
        "read_error": read_error,
        "reader_problems": reader_problems,
        "program": metadata.get("program"),
        "args": metadata.get("args"),
        "recording_id": metadata.get("recording_id"),
        "events": counter.events,
        "events_by_variant": dict(counter.variants.most_common()),
        "calls": counter.calls,
        "returns": counter.returns,
        "steps": counter.steps,
        "values": counter.values,
        "call_args": counter.call_args,
        "io_events": counter.io_events,
        "io_events_by_kind": dict(counter.io_kinds.most_common()),
        "paths": len(counter.paths),
        "functions": len(counter.functions),
        "types": counter.types,
        "variable_names": counter.variable_names,
        "threads": len(counter.threads),
        "max_call_depth": counter.max_depth,
        "file_sizes": file_sizes,
        "total_size": sum(file_sizes.values()),
        "hottest_by_calls": counter.hottest("calls", top),
        "hottest_by_steps": counter.hottest("steps", top),
        "recorder": metadata.get("recorder"),
        "trace_filter": {"filters": trace_filter.get("filters"), "stats": trace_filter.get("stats")},
        "process_exit_status": metadata.get("process_exit_status"),
        "partial": bool(metadata.get("partial", False)),
        "error": metadata.get("error"),
    }


def _load_metadata(path: Path) -> dict[str, Any]:
    try:
        metadata = read_json_file(path)
    except (OSError, ValueError):
        return {}
    return metadata if isinstance(metadata, dict) else {}


def _int_or_none(value: Any) -> int | None:
    return value if type(value) is int and value >= 0 else None


class _EventCounter:
    """Counts one event at a time; tolerant of invalid input (that is `validate`'s job)."""

    def __init__(self) -> None:
        self.events = 0
        self.variants: Counter[str] = Counter()
        self.calls = self.returns = self.steps = self.values = self.call_args = 0
        self.io_events = 0
        self.io_kinds: Counter[str] = Counter()
        self.types = self.variable_names = 0
        self.paths: list[str] = []
        self.functions: list[tuple[str, int | None, Any]] = []  # (name, path_id, line)
        self.calls_by_function: list[int] = []
        self.steps_by_function: list[int] = []
        self.threads: set[int] = set()
        self.call_stack: list[int | None] = []  # function ids of the open calls
        self.max_depth = 0
        # Owner of the last Step while only definitions followed it (None when closed).
        self.pending_step_owner: int | None = None
        self.handlers = {
            "Path": self._on_path, "Function": self._on_function, "Type": self._on_type,
            "VariableName": self._on_variable_name, "Step": self._on_step, "Call": self._on_call,
            "Return": self._on_return, "Value": self._on_value, "Event": self._on_event,
            "ThreadStart": self._on_thread, "ThreadSwitch": self._on_thread, "ThreadExit": self._on_thread,
        }

    def add(self, event: Any) -> None:
        self.events += 1
        if isinstance(event, dict) and len(event) == 1:
            ((variant, payload),) = event.items()
        else:
            variant, payload = (event if isinstance(event, str) else "<malformed>"), None
        if variant in self.variants or len(self.variants) < _MAX_COUNTED_NAMES:
            self.variants[variant] += 1
        else:
            self.variants["<other>"] += 1
        payload = payload if isinstance(payload, dict) else {"value": payload}
        handler = self.handlers.get(variant)
        if handler is not None:
            handler(payload)
        if variant not in _DEFINITION_VARIANTS and variant != "Step":
            self.pending_step_owner = None

    def _on_path(self, payload: dict[str, Any]) -> None:
        path = payload.get("value")
        self.paths.append(path if isinstance(path, str) else repr(path))

    def _on_function(self, payload: dict[str, Any]) -> None:
        name = payload.get("name")
        self.functions.append((name if isinstance(name, str) else repr(name),
                               _int_or_none(payload.get("path_id")), payload.get("line")))
        self.calls_by_function.append(0)
        self.steps_by_function.append(0)

    def _on_type(self, payload: dict[str, Any]) -> None:
        self.types += 1

    def _on_variable_name(self, payload: dict[str, Any]) -> None:
        self.variable_names += 1

    def _on_step(self, payload: dict[str, Any]) -> None:
        self.steps += 1
        owner = self.call_stack[-1] if self.call_stack else None
        if owner is not None:
            self.steps_by_function[owner] += 1
        self.pending_step_owner = owner

    def _on_call(self, payload: dict[str, Any]) -> None:
        self.calls += 1
        function_id = _int_or_none(payload.get("function_id"))
        if function_id is not None and function_id >= len(self.functions):
            function_id = None
        if function_id is not None:
            self.calls_by_function[function_id] += 1
            # The reader relabels the Step right before a Call as the callee's first step.
            owner = self.pending_step_owner
            if owner is not None and self.call_stack:
                self.steps_by_function[owner] -= 1
                self.steps_by_function[function_id] += 1
        args = payload.get("args")
        if isinstance(args, list):
            self.call_args += len(args)
        self.call_stack.append(function_id)
        self.max_depth = max(self.max_depth, len(self.call_stack))

    def _on_return(self, payload: dict[str, Any]) -> None:
        self.returns += 1
        if self.call_stack:
            self.call_stack.pop()

    def _on_value(self, payload: dict[str, Any]) -> None:
        self.values += 1

    def _on_event(self, payload: dict[str, Any]) -> None:
        self.io_events += 1
        kind = payload.get("kind")
        known = type(kind) is int and 0 <= kind < len(EVENT_KIND_NAMES)
        self.io_kinds[EVENT_KIND_NAMES[kind] if known else "<invalid>"] += 1

    def _on_thread(self, payload: dict[str, Any]) -> None:
        thread_id = payload.get("value")
        if type(thread_id) is int and len(self.threads) < 1 << 16:
            self.threads.add(thread_id)

    def hottest(self, key: str, top: int) -> list[dict[str, Any]]:
        counts = self.calls_by_function if key == "calls" else self.steps_by_function
        ranked = sorted((i for i, n in enumerate(counts) if n > 0), key=lambda i: (-counts[i], i))
        ranked = ranked[:max(top, 0)]
        result = []
        for function_id in ranked:
            name, path_id, line = self.functions[function_id]
            path = self.paths[path_id] if path_id is not None and path_id < len(self.paths) else None
            result.append({
                "function_id": function_id, "name": name, "path": path, "line": line,
                "calls": self.calls_by_function[function_id], "steps": self.steps_by_function[function_id],
            })
        return result


# --- CLI ----------------------------------------------------------------------------------

def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "summary", help="summarize a trace: events, calls, steps, sizes, hottest functions, filters",
        description="Summarize a trace directory in one streaming pass.")
    parser.add_argument("trace_dir", metavar="DIR", help="the trace directory")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--top", type=int, default=DEFAULT_TOP, metavar="N",
                        help=f"list the N hottest functions (default {DEFAULT_TOP})")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        summary = summarize(args.trace_dir, top=args.top)
    except (TraceNotFoundError, MissingExtraError, NotImplementedError) as err:
        print(f"rewind summary: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(summary, indent=2, ensure_ascii=False))
    else:
        print(format_summary(summary))
    return 0 if summary["complete"] else 1


def format_summary(summary: dict[str, Any]) -> str:
    """The human-readable text of `rewind summary`."""
    lines = [f"trace: {summary['trace_dir']} ({summary['format']})"]
    if summary["read_error"]:
        lines.append(f"INCOMPLETE: reading stopped at {summary['read_error']}")
    if summary["program"] is not None:
        lines.append(f"program: {summary['program']} {' '.join(map(str, summary['args'] or []))}".rstrip())
    variants = ", ".join(f"{name} {n}" for name, n in summary["events_by_variant"].items())
    lines.append(f"events: {summary['events']} ({variants})" if variants else "events: 0")
    lines.append(f"calls: {summary['calls']}  steps: {summary['steps']}  values: {summary['values']}  "
                 f"io events: {summary['io_events']}  max call depth: {summary['max_call_depth']}")
    lines.append(f"paths: {summary['paths']}  functions: {summary['functions']}  types: {summary['types']}  "
                 f"variable names: {summary['variable_names']}  threads: {summary['threads']}")
    sizes = ", ".join(f"{name} {_human_size(size)}" for name, size in summary["file_sizes"].items())
    lines.append(f"size: {_human_size(summary['total_size'])} ({sizes})")
    for key, title in (("hottest_by_calls", "by calls"), ("hottest_by_steps", "by steps")):
        if summary[key]:
            lines.append(f"hottest functions {title}:")
            for f in summary[key]:
                where = f"{f['path']}:{f['line']}" if f["path"] is not None else "?"
                lines.append(f"  {f['calls']:>9} calls {f['steps']:>11} steps  {f['name']}  {where}")
    recorder = summary["recorder"]
    if isinstance(recorder, dict):
        lines.append("recorder: " + " ".join(f"{k}={v}" for k, v in recorder.items()))
    status = summary["process_exit_status"]
    if isinstance(status, dict):
        lines.append(f"exit status: {status.get('code')} ({status.get('label')})")
    filters = summary["trace_filter"]["filters"]
    if isinstance(filters, list):
        names = [f"{f.get('name')} v{f.get('version')}" if isinstance(f, dict) else str(f) for f in filters]
        lines.append("filters: " + (" -> ".join(names) if names else "none"))
    stats = summary["trace_filter"]["stats"]
    if isinstance(stats, dict):
        lines.append("filter stats: " + ", ".join(f"{k}={json.dumps(v)}" for k, v in stats.items()))
    if summary["partial"]:
        lines.append(f"PARTIAL trace: {json.dumps(summary['error'])}")
    return "\n".join(lines)


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"
