"""Helpers for the failure-behaviour tests (imported by name; conftest.py holds the fixtures)."""
from __future__ import annotations

import json
import os
from pathlib import Path

REPORT_KEYS = {"run_id", "trace_id", "error_code", "error_kind", "message", "context"}


def stderr_json_lines(stderr: str) -> list[dict]:
    """Every stderr line that is a JSON object."""
    found = []
    for line in stderr.splitlines():
        if line.startswith("{"):
            found.append(json.loads(line))
    return found


def error_reports(stderr: str) -> list[dict]:
    """The --json-errors lines: {"run_id", "trace_id", "error_code", "error_kind", "message", "context"}."""
    return [obj for obj in stderr_json_lines(stderr) if set(obj) == REPORT_KEYS]


def metadata(trace_dir: Path) -> dict:
    with open(trace_dir / "trace_metadata.json", encoding="utf-8") as f:
        return json.load(f)


def leftovers(directory: Path) -> list[str]:
    """Staging directories left in `directory`."""
    return sorted(name for name in os.listdir(directory) if ".rewind-staging-" in name)

