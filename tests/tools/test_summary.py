"""`rewind summary`: exact counts on small hand-made traces, CLI output, streaming on a large one."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from rewind.tools import summary
from rewind.tools.summary import summarize
from rewind.tools.trace_reader import TraceNotFoundError
from rewind.tools.validate import validate_trace

MAIN, LIB = "/p/main.py", "/p/lib.py"
NONE = {"kind": "None", "type_id": 0}


def int_value(i: int) -> dict:
    return {"kind": "Int", "i": i, "type_id": 1}


def loop_trace() -> list:
    """main.py runs `for x in 1..3: sq(x)`; lib.py's sq(x) calls helper() once per call."""
    events = [
        {"Path": MAIN},
        {"Function": {"path_id": 0, "line": 1, "name": "<toplevel>"}},
        {"Call": {"function_id": 0, "args": []}},
        {"Type": {"kind": 30, "lang_type": "None", "specific_info": {"kind": "None"}}},
        {"Path": LIB},
        {"Function": {"path_id": 0, "line": 1, "name": "<module>"}},
        {"Step": {"path_id": 0, "line": 1}},
        {"Call": {"function_id": 1, "args": []}},
        {"Type": {"kind": 7, "lang_type": "int", "specific_info": {"kind": "None"}}},
        {"VariableName": "x"},
        {"Function": {"path_id": 1, "line": 3, "name": "sq"}},
        {"Function": {"path_id": 1, "line": 7, "name": "helper"}},
    ]
    for x in (1, 2, 3):
        events += [
            {"Step": {"path_id": 0, "line": 2}},
            {"Value": {"variable_id": 0, "value": int_value(x)}},
            {"Step": {"path_id": 1, "line": 3}},
            {"Call": {"function_id": 2, "args": [{"variable_id": 0, "value": int_value(x)}]}},
            {"Step": {"path_id": 1, "line": 4}},
            {"Step": {"path_id": 1, "line": 7}},
            {"Call": {"function_id": 3, "args": []}},
            {"Step": {"path_id": 1, "line": 8}},
            {"Return": {"return_value": NONE}},
            {"Step": {"path_id": 1, "line": 5}},
            {"Return": {"return_value": int_value(x * x)}},
        ]
    events += [
        {"Step": {"path_id": 0, "line": 3}},
        {"Event": {"kind": 0, "metadata": "", "content": "done\n"}},
        {"Event": {"kind": 2, "metadata": "", "content": "warning\n"}},
        {"ThreadStart": 1},
        {"Return": {"return_value": NONE}},
        {"Return": {"return_value": int_value(0)}},
    ]
    return events


METADATA = {
    "recording_id": "01949fcc-7d92-7e9c-aaaa-bbbbbbbbbbbb",
    "program": "main.py",
    "args": ["--fast"],
    "workdir": "/p",
    "recorder": {"name": "rewind", "version": "0.1.0", "python": "3.11.7", "backend": "settrace"},
    "process_exit_status": {"code": 0, "label": "ok"},
    "trace_filter": {
        "filters": [{"name": "builtin-default", "version": 1, "path": "<builtin>", "sha256": "ab12"}],
        "stats": {"scopes_skipped": 2, "value_redactions": {"local": 1}, "value_drops": {}},
    },
}


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="rewind")
    summary.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


def test_minimal_trace_counts(make_trace):
    result = summarize(make_trace())
    assert {k: result[k] for k in (
        "events", "calls", "returns", "steps", "values", "call_args", "io_events", "io_events_by_kind",
        "paths", "functions", "types", "variable_names", "threads", "max_call_depth", "complete",
    )} == {
        "events": 23, "calls": 3, "returns": 3, "steps": 6, "values": 2, "call_args": 2, "io_events": 1,
        "io_events_by_kind": {"Write": 1}, "paths": 1, "functions": 3, "types": 2, "variable_names": 2,
        "threads": 0, "max_call_depth": 3, "complete": True,
    }
    assert result["events_by_variant"] == {"Step": 6, "Function": 3, "Call": 3, "Return": 3, "Type": 2,
                                           "VariableName": 2, "Value": 2, "Path": 1, "Event": 1}
    # The Step right before `add`'s Call is the call's own step (the reader relabels it).
    assert [(f["name"], f["calls"], f["steps"]) for f in result["hottest_by_steps"]] == [
        ("<module>", 1, 4), ("add", 1, 2)]


def test_hand_made_trace_exact_counts(make_trace):
    events = loop_trace()
    trace = make_trace(events, metadata=METADATA)
    assert validate_trace(trace).valid
    result = summarize(trace)
    assert result["events"] == len(events) == 51
    assert result["events_by_variant"] == {"Step": 20, "Call": 8, "Return": 8, "Function": 4, "Value": 3,
                                           "Path": 2, "Type": 2, "Event": 2, "VariableName": 1,
                                           "ThreadStart": 1}
    assert (result["calls"], result["returns"], result["steps"], result["values"], result["call_args"]) == (
        8, 8, 20, 3, 3)
    assert result["io_events"] == 2
    assert result["io_events_by_kind"] == {"Write": 1, "WriteOther": 1}
    assert (result["paths"], result["functions"], result["types"], result["variable_names"]) == (2, 4, 2, 1)
    assert (result["threads"], result["max_call_depth"]) == (1, 4)
    assert result["hottest_by_calls"] == [
        {"function_id": 2, "name": "sq", "path": LIB, "line": 3, "calls": 3, "steps": 9},
        {"function_id": 3, "name": "helper", "path": LIB, "line": 7, "calls": 3, "steps": 6},
        {"function_id": 0, "name": "<toplevel>", "path": MAIN, "line": 1, "calls": 1, "steps": 0},
        {"function_id": 1, "name": "<module>", "path": MAIN, "line": 1, "calls": 1, "steps": 5},
    ]
    assert [(f["name"], f["steps"]) for f in result["hottest_by_steps"]] == [
        ("sq", 9), ("helper", 6), ("<module>", 5)]


def test_metadata_and_file_sizes(make_trace):
    trace = make_trace(loop_trace(), metadata=METADATA)
    result = summarize(trace)
    assert result["program"] == "main.py" and result["args"] == ["--fast"]
    assert result["recording_id"] == METADATA["recording_id"]
    assert result["recorder"] == METADATA["recorder"]
    assert result["trace_filter"] == METADATA["trace_filter"]
    assert result["process_exit_status"] == {"code": 0, "label": "ok"}
    assert result["partial"] is False and result["error"] is None
    sizes = {p.name: p.stat().st_size for p in trace.iterdir()}
    assert result["file_sizes"] == sizes
    assert result["total_size"] == sum(sizes.values())
    assert result["format"] == "json" and result["trace_dir"] == str(trace)


def test_partial_trace_and_missing_metadata(make_trace):
    trace = make_trace(metadata={**METADATA, "partial": True, "error": {"code": "ERR_IO"}})
    result = summarize(trace)
    assert result["partial"] is True and result["error"] == {"code": "ERR_IO"}
    (trace / "trace_metadata.json").unlink()
    result = summarize(trace)
    assert result["recorder"] is None and result["trace_filter"] == {"filters": None, "stats": None}
    assert result["events"] == 23


def test_top_limits_the_hottest_lists(make_trace):
    result = summarize(make_trace(loop_trace()), top=1)
    assert [f["name"] for f in result["hottest_by_calls"]] == ["sq"]
    assert [f["name"] for f in result["hottest_by_steps"]] == ["sq"]


def test_cli_text(make_trace, capsys):
    trace = make_trace(loop_trace(), metadata=METADATA)
    assert run_cli(["summary", str(trace), "--top", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"trace: {trace} (json)"
    assert "program: main.py --fast" in out
    assert "calls: 8  steps: 20  values: 3  io events: 2  max call depth: 4" in out
    assert "paths: 2  functions: 4  types: 2  variable names: 1  threads: 1" in out
    assert out[out.index("hottest functions by calls:") + 1].split() == [
        "3", "calls", "9", "steps", "sq", f"{LIB}:3"]
    assert "recorder: name=rewind version=0.1.0 python=3.11.7 backend=settrace" in out
    assert "exit status: 0 (ok)" in out
    assert "filters: builtin-default v1" in out
    assert 'filter stats: scopes_skipped=2, value_redactions={"local": 1}, value_drops={}' in out


def test_cli_json(make_trace, capsys):
    trace = make_trace(loop_trace(), metadata=METADATA)
    assert run_cli(["summary", str(trace), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == summarize(trace)


def test_not_a_trace_directory(tmp_path, capsys):
    with pytest.raises(TraceNotFoundError):
        summarize(tmp_path / "nope")
    assert run_cli(["summary", str(tmp_path)]) == 2
    assert "has no trace.json" in capsys.readouterr().err


def test_malformed_trace_is_summarized_up_to_the_error(make_trace, events, capsys):
    text = "[" + ",\n".join(json.dumps(e) for e in events[:10]) + ",\n{oops}\n]"
    trace = make_trace(events, events_text=text)
    result = summarize(trace)
    assert result["complete"] is False and result["events"] == 10
    assert result["read_error"].startswith("event #10: malformed JSON")
    assert run_cli(["summary", str(trace)]) == 1
    assert "INCOMPLETE: reading stopped at event #10" in capsys.readouterr().out


def test_large_trace(large_trace: Path):
    result = summarize(large_trace)
    loops = 42_857
    assert result["events"] == 7 * loops + 12
    assert (result["calls"], result["steps"], result["values"]) == (loops + 1, 3 * loops, 2 * loops)
    assert result["hottest_by_steps"][0]["name"] == "f"
    assert result["hottest_by_steps"][0]["steps"] == 3 * loops  # 2 body steps + the call's own step
