"""Helpers for the tool tests: write trace directories by hand from lists of event dicts."""
from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

import pytest

_SRC = Path(__file__).resolve().parents[2] / "src"
if str(_SRC) not in sys.path:
    sys.path.insert(0, str(_SRC))

MAIN_PY = "/home/u/p/main.py"

# trace-format.md section 5, event for event.
MINIMAL_EVENTS: list[Any] = [
    {"Path": MAIN_PY},
    {"Function": {"path_id": 0, "line": 1, "name": "<toplevel>"}},
    {"Call": {"function_id": 0, "args": []}},
    {"Type": {"kind": 30, "lang_type": "None", "specific_info": {"kind": "None"}}},
    {"Function": {"path_id": 0, "line": 1, "name": "<module>"}},
    {"Step": {"path_id": 0, "line": 1}},
    {"Call": {"function_id": 1, "args": []}},
    {"Step": {"path_id": 0, "line": 1}},
    {"Step": {"path_id": 0, "line": 4}},
    {"Type": {"kind": 7, "lang_type": "int", "specific_info": {"kind": "None"}}},
    {"VariableName": "a"},
    {"VariableName": "b"},
    {"Function": {"path_id": 0, "line": 1, "name": "add"}},
    {"Step": {"path_id": 0, "line": 1}},
    {"Call": {"function_id": 2, "args": [
        {"variable_id": 0, "value": {"kind": "Int", "i": 4, "type_id": 1}},
        {"variable_id": 1, "value": {"kind": "Int", "i": 5, "type_id": 1}}]}},
    {"Step": {"path_id": 0, "line": 2}},
    {"Value": {"variable_id": 0, "value": {"kind": "Int", "i": 4, "type_id": 1}}},
    {"Value": {"variable_id": 1, "value": {"kind": "Int", "i": 5, "type_id": 1}}},
    {"Return": {"return_value": {"kind": "Int", "i": 9, "type_id": 1}}},
    {"Step": {"path_id": 0, "line": 5}},
    {"Event": {"kind": 0, "metadata": "", "content": "9\n"}},
    {"Return": {"return_value": {"kind": "None", "type_id": 0}}},
    {"Return": {"return_value": {"kind": "Int", "i": 0, "type_id": 1}}},
]

MINIMAL_METADATA: dict[str, Any] = {
    "recording_id": "01949fcc-7d92-7e9c-aaaa-bbbbbbbbbbbb",
    "program": "main.py",
    "args": [],
    "workdir": "/home/u/p",
}


def minimal_events() -> list[Any]:
    """A fresh deep copy of the minimal valid trace, safe to mutate."""
    return copy.deepcopy(MINIMAL_EVENTS)


def dump_events(events: list[Any], layout: str = "lines") -> str:
    """The text of trace.json in a given layout: "lines" (rewind's), "indent" or "single"."""
    if layout == "lines":
        return "[" + ",\n".join(json.dumps(e) for e in events) + "\n]\n"
    if layout == "indent":
        return json.dumps(events, indent=2) + "\n"
    if layout == "single":
        return json.dumps(events, separators=(",", ":"))
    raise ValueError(layout)


def write_trace(directory: Path, events: list[Any] | None = None, *, layout: str = "lines",
                metadata: dict[str, Any] | None = None, paths: list[str] | None = None,
                events_text: str | None = None) -> Path:
    """Write a trace directory; paths default to the Path events, metadata to a valid one."""
    directory.mkdir(parents=True, exist_ok=True)
    events = minimal_events() if events is None else events
    if events_text is None:
        events_text = dump_events(events, layout)
    (directory / "trace.json").write_text(events_text, encoding="utf-8")
    if paths is None:
        paths = [e["Path"] for e in events if isinstance(e, dict) and "Path" in e]
    (directory / "trace_paths.json").write_text(json.dumps(paths), encoding="utf-8")
    metadata = dict(MINIMAL_METADATA) if metadata is None else metadata
    (directory / "trace_metadata.json").write_text(json.dumps(metadata), encoding="utf-8")
    return directory


def write_large_trace(directory: Path, loops: int) -> Path:
    """A valid trace of 7 * loops + 12 events, written piece by piece (never held in memory)."""
    directory.mkdir(parents=True, exist_ok=True)
    head = [
        {"Path": MAIN_PY},
        {"Function": {"path_id": 0, "line": 1, "name": "<toplevel>"}},
        {"Call": {"function_id": 0, "args": []}},
        {"Type": {"kind": 30, "lang_type": "None", "specific_info": {"kind": "None"}}},
        {"Type": {"kind": 7, "lang_type": "int", "specific_info": {"kind": "None"}}},
        {"Type": {"kind": 9, "lang_type": "str", "specific_info": {"kind": "None"}}},
        {"Type": {"kind": 0, "lang_type": "list", "specific_info": {"kind": "None"}}},
        {"VariableName": "i"},
        {"VariableName": "s"},
        {"VariableName": "xs"},
        {"Function": {"path_id": 0, "line": 3, "name": "f"}},
    ]
    # Mostly small events, as in a real trace, and few allocations each (tracemalloc is slow).
    loop = (',\n{"Step":{"path_id":0,"line":3}}'
            ',\n{"Call":{"function_id":1,"args":[{"variable_id":0,'
            '"value":{"kind":"Int","i":@N@,"type_id":1}}]}}'
            ',\n{"Step":{"path_id":0,"line":4}}'
            ',\n{"Value":{"variable_id":0,"value":{"kind":"Int","i":@N@,"type_id":1}}}'
            ',\n{"Step":{"path_id":0,"line":5}}'
            ',\n{"Value":{"variable_id":1,"value":{"kind":"String","text":"hello @N@","type_id":2}}}'
            ',\n{"Return":{"return_value":{"kind":"None","type_id":0}}}')
    with open(directory / "trace.json", "w", encoding="utf-8") as f:
        f.write("[" + ",\n".join(json.dumps(e) for e in head))
        f.writelines(loop.replace("@N@", str(i)) for i in range(loops))
        f.write(',\n{"Return":{"return_value":{"kind":"Int","i":0,"type_id":1}}}\n]\n')
    (directory / "trace_paths.json").write_text(json.dumps([MAIN_PY]), encoding="utf-8")
    (directory / "trace_metadata.json").write_text(json.dumps(MINIMAL_METADATA), encoding="utf-8")
    return directory


@pytest.fixture(scope="session")
def large_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid trace of 300,011 events (about 24 MB), shared by the tests that need one."""
    return write_large_trace(tmp_path_factory.mktemp("large") / "trace", loops=42_857)


@pytest.fixture
def events() -> list[Any]:
    """A fresh copy of the minimal valid trace's events (trace-format.md section 5)."""
    return minimal_events()


@pytest.fixture
def make_trace(tmp_path: Path):
    """`make_trace(events=None, name="trace", **kwargs)` -> path of a new trace directory."""
    counter = iter(range(1_000_000))

    def make(events: list[Any] | None = None, name: str | None = None, **kwargs: Any) -> Path:
        return write_trace(tmp_path / (name or f"trace{next(counter)}"), events, **kwargs)

    return make
