"""`rewind validate`: one test per rule of trace-format.md, each breaking exactly that rule.

Event indexes of the minimal trace (the `events` fixture, trace-format.md section 5):
 0 Path  1 Function <toplevel>  2 Call 0  3 Type None  4 Function <module>  5 Step 1
 6 Call 1  7 Step 1  8 Step 4  9 Type int  10 VariableName a  11 VariableName b
12 Function add  13 Step 1  14 Call 2 (a, b)  15 Step 2  16 Value a  17 Value b
18 Return 9  19 Step 5  20 Event  21 Return None  22 Return 0
"""
from __future__ import annotations

import argparse
import json
import tracemalloc
from pathlib import Path

import pytest

from rewind.tools import validate
from rewind.tools.trace_reader import MissingExtraError, TraceNotFoundError, iter_events
from rewind.tools.validate import ValidationReport, validate_trace

INT = {"kind": "Int", "i": 4, "type_id": 1}


def problems(report: ValidationReport) -> list[tuple[int | None, str]]:
    return [(p.index, p.message) for p in report.problems]


def assert_only_problem(report: ValidationReport, index: int | None, fragment: str) -> None:
    """The report has exactly one problem, at `index`, whose message contains `fragment`."""
    assert problems(report) and len(problems(report)) == 1, problems(report)
    assert report.problem_count == 1
    found_index, message = problems(report)[0]
    assert found_index == index and fragment in message, (found_index, message)


def assert_has_problem(report: ValidationReport, index: int | None, fragment: str) -> None:
    assert any(i == index and fragment in m for i, m in problems(report)), problems(report)


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="rewind")
    validate.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


# --- valid traces and layouts -------------------------------------------------------------

def test_minimal_trace_is_valid(make_trace, capsys):
    trace = make_trace()
    report = validate_trace(trace)
    assert report.valid, problems(report)
    assert (report.events, report.calls, report.steps, report.values) == (23, 3, 6, 2)
    assert report.warnings == []
    assert run_cli(["validate", str(trace)]) == 0
    assert capsys.readouterr().out.strip() == "OK: 23 events, 3 calls, 6 steps"


@pytest.mark.parametrize("layout", ["lines", "indent", "single"])
def test_layout_does_not_matter(make_trace, events, layout):
    assert validate_trace(make_trace(events, layout=layout)).valid
    events[16]["Value"]["variable_id"] = 9
    events[8] = {"Stepp": {"path_id": 0, "line": 4}}
    expected = [(8, "unknown variant 'Stepp' (the reader rejects the whole trace)"),
                (16, "Value.variable_id: variable name 9 is used before it is defined (2 defined so far)")]
    assert problems(validate_trace(make_trace(events, layout=layout))) == expected


def test_layout_with_arbitrary_whitespace(make_trace, events):
    text = "\n\t [ \n" + " ,\r\n ".join(json.dumps(e, indent=1) for e in events) + "\n ]\n\n"
    report = validate_trace(make_trace(events, events_text=text))
    assert report.valid and report.events == 23


def test_event_file_path_is_accepted(make_trace):
    assert validate_trace(make_trace() / "trace.json").valid


def test_definitions_between_step_and_call_are_allowed(make_trace, events):
    # Step, then the callee's Function and the argument names, then the Call.
    reordered = events[:9] + [events[13], events[9], events[10], events[11], events[12]] + events[14:]
    assert validate_trace(make_trace(reordered)).valid


def test_all_value_kinds_valid(make_trace, events):
    struct_type = {"Type": {"kind": 6, "lang_type": "Point", "specific_info": {
        "kind": "Struct", "fields": [{"name": "x", "type_id": 1}, {"name": "next", "type_id": 2}]}}}
    values = [
        {"kind": "None", "type_id": 0},
        {"kind": "Bool", "b": True, "type_id": 1},
        {"kind": "BigInt", "b": "AQAAAAAAAAAA", "negative": True, "type_id": 1},
        {"kind": "String", "text": "héllo \U0001f600", "type_id": 1},
        {"kind": "Sequence", "elements": [INT, INT], "is_slice": False, "type_id": 1},
        {"kind": "Tuple", "elements": [], "type_id": 1},
        {"kind": "Struct", "field_values": [INT, {"kind": "None", "type_id": 0}], "type_id": 2},
        {"kind": "Raw", "r": "<object>", "type_id": 1},
        {"kind": "Error", "msg": "<redacted>", "type_id": 1},
    ] + [{"kind": "Float", "f": f, "type_id": 1} for f in ("2.5", "inf", "-inf", "nan", "-0.0", "1e+300")]
    events[16:16] = [struct_type] + [{"Value": {"variable_id": 0, "value": v}} for v in values]
    events.insert(20, {"ThreadStart": 1})
    report = validate_trace(make_trace(events))
    assert report.valid, problems(report)


# --- event shape and variant names ----------------------------------------------------------

def test_unknown_variant(make_trace, events):
    events.insert(8, {"Steps": {"path_id": 0, "line": 4}})
    assert_only_problem(validate_trace(make_trace(events)), 8, "unknown variant 'Steps'")


@pytest.mark.parametrize("variant", [
    "Assignment", "BindVariable", "DropVariables", "CompoundValue", "CellValue", "VariableCell",
    "AssignCell", "AssignCompoundItem", "Variable"])
def test_forbidden_variant(make_trace, events, variant):
    events.insert(8, {variant: {"place": 1}})
    assert_only_problem(validate_trace(make_trace(events)), 8, f"forbidden variant '{variant}'")


def test_drop_last_step_is_forbidden(make_trace, events):
    events.insert(9, "DropLastStep")
    assert_only_problem(validate_trace(make_trace(events)), 9, "forbidden variant 'DropLastStep'")


def test_event_must_be_a_single_key_object(make_trace, events):
    events.insert(9, {"Step": {"path_id": 0, "line": 4}, "Value": {}})
    assert_only_problem(validate_trace(make_trace(events)), 9, "exactly one key")


def test_unknown_payload_field(make_trace, events):
    events[8]["Step"]["column"] = 3
    assert_only_problem(validate_trace(make_trace(events)), 8,
                        "Step: unknown field(s) 'column' (the reader drops them silently)")


def test_missing_payload_field(make_trace, events):
    del events[12]["Function"]["name"]
    assert_only_problem(validate_trace(make_trace(events)), 12, "Function: missing field(s) 'name'")


def test_misspelt_value_field(make_trace, events):
    events[16]["Value"]["value"] = {"kind": "Int", "int": 4, "type_id": 1}
    assert_only_problem(validate_trace(make_trace(events)), 16,
                        "Value.value: missing field(s) 'i'; unknown field(s) 'int'")


# --- define before use ------------------------------------------------------------------------

def test_path_defined_before_step(make_trace, events):
    events[8]["Step"]["path_id"] = 1
    assert_only_problem(validate_trace(make_trace(events)), 8,
                        "Step.path_id: path 1 is used before it is defined (1 defined so far)")


def test_path_defined_before_function(make_trace, events):
    events[12]["Function"]["path_id"] = 3
    assert_only_problem(validate_trace(make_trace(events)), 12, "Function.path_id: path 3 is used before")


def test_function_defined_before_call(make_trace, events):
    events[12:15] = [events[13], events[14], events[12]]  # Step, Call 2, then Function 2
    assert_only_problem(validate_trace(make_trace(events)), 13,
                        "Call.function_id: function 2 is used before it is defined (2 defined so far)")


def test_type_defined_before_value(make_trace, events):
    events[16]["Value"]["value"]["type_id"] = 2
    assert_only_problem(validate_trace(make_trace(events)), 16,
                        "Value.value.type_id: type 2 is used before it is defined (2 defined so far)")


def test_type_defined_before_nested_value(make_trace, events):
    events[17]["Value"]["value"] = {"kind": "Sequence", "is_slice": False, "type_id": 1,
                                    "elements": [INT, {"kind": "Int", "i": 1, "type_id": 7}]}
    assert_only_problem(validate_trace(make_trace(events)), 17,
                        "Value.value.elements[1].type_id: type 7 is used before")


def test_type_defined_before_return_value(make_trace, events):
    events[18]["Return"]["return_value"]["type_id"] = 5
    assert_only_problem(validate_trace(make_trace(events)), 18, "Return.return_value.type_id: type 5")


def test_type_defined_before_struct_field_type(make_trace, events):
    events.insert(9, {"Type": {"kind": 6, "lang_type": "P", "specific_info": {
        "kind": "Struct", "fields": [{"name": "x", "type_id": 4}]}}})
    assert_only_problem(validate_trace(make_trace(events)), 9,
                        "Type.specific_info.fields[0].type_id: type 4 is used before")


def test_variable_name_defined_before_value(make_trace, events):
    events[16]["Value"]["variable_id"] = 2
    assert_only_problem(validate_trace(make_trace(events)), 16,
                        "Value.variable_id: variable name 2 is used before it is defined")


def test_variable_name_defined_before_argument(make_trace, events):
    events[14]["Call"]["args"][1]["variable_id"] = 5
    assert_only_problem(validate_trace(make_trace(events)), 14,
                        "Call.args[1].variable_id: variable name 5 is used before")


def test_argument_value_is_checked(make_trace, events):
    events[14]["Call"]["args"][0]["value"]["i"] = "4"
    assert_only_problem(validate_trace(make_trace(events)), 14, "Call.args[0].value.i must be an integer")


def test_ids_must_be_non_negative_integers(make_trace, events):
    events[8]["Step"]["path_id"] = -1
    events[16]["Value"]["variable_id"] = True
    report = validate_trace(make_trace(events))
    assert problems(report) == [(8, "Step.path_id must be a non-negative integer, got -1"),
                                (16, "Value.variable_id must be a non-negative integer, got True")]


# --- top level, calls and returns ---------------------------------------------------------------

def test_type_zero_must_be_the_none_type(make_trace, events):
    events[3]["Type"]["lang_type"] = "NoneType"
    assert_only_problem(validate_trace(make_trace(events)), 3, "type 0 must be the None type")


def test_function_zero_must_be_toplevel(make_trace, events):
    events[1]["Function"]["name"] = "main"
    assert_only_problem(validate_trace(make_trace(events)), 1, "function 0 must be '<toplevel>', got 'main'")


def test_step_before_toplevel_call(make_trace, events):
    events.insert(2, {"Step": {"path_id": 0, "line": 1}})
    report = validate_trace(make_trace(events))
    assert problems(report) == [
        (2, ("the trace must start with Path, Function <toplevel>, Call of function 0, then the None Type; "
            "event 3 of that prologue is 'Step'")),
        (2, "Step before the top-level Call (the reader asserts a call is open)"),
    ]


def test_none_type_must_follow_toplevel_call(make_trace, events):
    events[3], events[4] = events[4], events[3]
    report = validate_trace(make_trace(events))
    assert_has_problem(report, 3, "event 4 of that prologue is 'Function'")


def test_first_call_must_be_of_function_zero(make_trace, events):
    events[1:3] = [events[1], {"Function": {"path_id": 0, "line": 1, "name": "other"}},
                   {"Call": {"function_id": 1, "args": []}}]
    report = validate_trace(make_trace(events))
    assert_has_problem(report, 3, "the first Call must be of function 0 (<toplevel>), got 1")


def test_call_must_follow_a_step(make_trace, events):
    events.insert(14, {"Value": {"variable_id": 0, "value": INT}})  # between Step 13 and Call
    assert_only_problem(validate_trace(make_trace(events)), 15,
                        "Call of function 2 must come right after a Step at the callee's definition "
                        "(path 0, line 1)")


def test_call_step_must_be_at_callee_definition_line(make_trace, events):
    events[13]["Step"]["line"] = 3
    assert_only_problem(validate_trace(make_trace(events)), 14,
                        "Call of function 2 (defined at path 0, line 1) follows a Step at path 0, line 3")


def test_return_with_no_open_call(make_trace, events):
    events.append({"Return": {"return_value": {"kind": "None", "type_id": 0}}})
    assert_only_problem(validate_trace(make_trace(events)), 23, "Return with no open call")


def test_calls_must_be_closed(make_trace, events):
    del events[22]
    assert_only_problem(validate_trace(make_trace(events)), None, "end of trace: 1 call(s) still open")


def test_events_after_toplevel_returned(make_trace, events):
    events.append({"Step": {"path_id": 0, "line": 5}})
    assert_only_problem(validate_trace(make_trace(events)), 23, "Step after the top-level call returned")


def test_toplevel_return_value_warning(make_trace, events):
    events[22]["Return"]["return_value"] = {"kind": "None", "type_id": 0}
    report = validate_trace(make_trace(events))
    assert report.valid
    assert [(w.index, w.message) for w in report.warnings] == [
        (22, "the top-level call should return the exit code as an Int, or a String when it is unknown")]


def test_value_before_any_step_is_a_warning(make_trace, events):
    events.insert(5, {"Value": {"variable_id": 0, "value": {"kind": "None", "type_id": 0}}})
    events.insert(5, {"VariableName": "x"})
    for e in events[7:]:  # shift variable ids past the new name
        if "Value" in e:
            e["Value"]["variable_id"] += 1
        if "Call" in e:
            for arg in e["Call"]["args"]:
                arg["variable_id"] += 1
    report = validate_trace(make_trace(events))
    assert report.valid, problems(report)
    assert [(w.index, w.message) for w in report.warnings] == [
        (6, "Value before any Step (values attach to the last Step)")]


def test_empty_trace(make_trace):
    report = validate_trace(make_trace([], paths=[]))
    assert_only_problem(report, None, "the trace has no events")


# --- values --------------------------------------------------------------------------------

@pytest.mark.parametrize("f", ["2.5", "inf", "-inf", "nan", "-0.0", "1e+300", "+inf", "NaN", "5.", ".5"])
def test_float_literals_accepted(make_trace, events, f):
    events[16]["Value"]["value"] = {"kind": "Float", "f": f, "type_id": 1}
    assert validate_trace(make_trace(events)).valid


@pytest.mark.parametrize("f", ["2,5", "1e", "", "0x10", " 1", "1_000", "infinite"])
def test_float_literals_rejected(make_trace, events, f):
    events[16]["Value"]["value"] = {"kind": "Float", "f": f, "type_id": 1}
    assert_only_problem(validate_trace(make_trace(events)), 16, f"Value.value.f {f!r} is not a float literal")


def test_float_as_json_number_is_rejected(make_trace, events):
    events[16]["Value"]["value"] = {"kind": "Float", "f": 2.5, "type_id": 1}
    assert_only_problem(validate_trace(make_trace(events)), 16, "Value.value.f must be a string")


@pytest.mark.parametrize("i", [2**63, -(2**63) - 1, 1.5, True])
def test_int_must_fit_i64(make_trace, events, i):
    events[16]["Value"]["value"]["i"] = i
    assert_only_problem(validate_trace(make_trace(events)), 16, "Value.value.i must be an integer in the i64")


def test_int_i64_bounds_accepted(make_trace, events):
    events[16]["Value"]["value"]["i"] = 2**63 - 1
    events[17]["Value"]["value"]["i"] = -(2**63)
    assert validate_trace(make_trace(events)).valid


@pytest.mark.parametrize("b", ["AQ", "AR==", "AQ=", "A Q=", "AQ==\n", "-_8="])
def test_bigint_must_be_canonical_base64(make_trace, events, b):
    events[16]["Value"]["value"] = {"kind": "BigInt", "b": b, "negative": False, "type_id": 1}
    assert_only_problem(validate_trace(make_trace(events)), 16, "is not canonical padded standard base64")


def test_bigint_negative_must_be_bool(make_trace, events):
    events[16]["Value"]["value"] = {"kind": "BigInt", "b": "AQ==", "negative": 0, "type_id": 1}
    assert_only_problem(validate_trace(make_trace(events)), 16, "Value.value.negative must be a boolean")


def test_bool_must_be_bool(make_trace, events):
    events[16]["Value"]["value"] = {"kind": "Bool", "b": 1, "type_id": 1}
    assert_only_problem(validate_trace(make_trace(events)), 16, "Value.value.b must be a boolean, got 1")


def test_sequence_needs_is_slice(make_trace, events):
    events[16]["Value"]["value"] = {"kind": "Sequence", "elements": [], "type_id": 1}
    assert_only_problem(validate_trace(make_trace(events)), 16,
                        "Value.value: missing field(s) 'is_slice'")


def test_sequence_is_slice_must_be_bool(make_trace, events):
    events[16]["Value"]["value"] = {"kind": "Sequence", "elements": [], "is_slice": "no", "type_id": 1}
    assert_only_problem(validate_trace(make_trace(events)), 16, "Value.value.is_slice must be a boolean")


@pytest.mark.parametrize("kind", ["Cell", "Char", "Reference", "Variant"])
def test_disallowed_value_kinds(make_trace, events, kind):
    events[16]["Value"]["value"] = {"kind": kind, "place": 1}
    assert_only_problem(validate_trace(make_trace(events)), 16, f"value kind '{kind}' is not allowed")


def test_unknown_value_kind(make_trace, events):
    events[16]["Value"]["value"] = {"kind": "Integer", "i": 4, "type_id": 1}
    assert_only_problem(validate_trace(make_trace(events)), 16, "unknown value kind 'Integer'")


def _struct_type(kind: int = 6, info_kind: str = "Struct") -> dict:
    info = {"kind": info_kind, "fields": [{"name": "x", "type_id": 1}, {"name": "y", "type_id": 1}]}
    if info_kind != "Struct":
        info = {"kind": info_kind}
    return {"Type": {"kind": kind, "lang_type": "Point", "specific_info": info}}


def test_struct_value_type_must_be_a_struct_type(make_trace, events):
    events.insert(16, _struct_type(kind=6, info_kind="None"))
    events[17]["Value"]["value"] = {"kind": "Struct", "field_values": [INT, INT], "type_id": 2}
    assert_only_problem(validate_trace(make_trace(events)), 17, "a Struct value's type 2 must be of kind 6")


def test_struct_value_type_must_be_kind_6(make_trace, events):
    events.insert(16, _struct_type(kind=16))
    events[17]["Value"]["value"] = {"kind": "Struct", "field_values": [INT, INT], "type_id": 2}
    assert_only_problem(validate_trace(make_trace(events)), 17, "a Struct value's type 2 must be of kind 6")


def test_struct_field_count_must_match(make_trace, events):
    events.insert(16, _struct_type())
    events[17]["Value"]["value"] = {"kind": "Struct", "field_values": [INT], "type_id": 2}
    assert_only_problem(validate_trace(make_trace(events)), 17,
                        "Value.value has 1 field value(s) but type 2 declares 2 field(s)")


def test_struct_value_valid(make_trace, events):
    events.insert(16, _struct_type())
    events[17]["Value"]["value"] = {"kind": "Struct", "field_values": [INT, INT], "type_id": 2}
    assert validate_trace(make_trace(events)).valid


# --- types, lines, events, threads ----------------------------------------------------------

@pytest.mark.parametrize("kind", [34, -1, "7"])
def test_type_kind_range(make_trace, events, kind):
    events[9]["Type"]["kind"] = kind
    assert_only_problem(validate_trace(make_trace(events)), 9, "Type.kind must be an integer 0..33")


def test_type_specific_info_kind(make_trace, events):
    events[9]["Type"]["specific_info"] = {"kind": "Int"}
    assert_only_problem(validate_trace(make_trace(events)), 9, "Type.specific_info must be an object whose")


@pytest.mark.parametrize("line", [0, -3, "4"])
def test_step_line_at_least_one(make_trace, events, line):
    events[8]["Step"]["line"] = line
    assert_only_problem(validate_trace(make_trace(events)), 8, "Step.line must be an integer >= 1")


def test_function_line_at_least_one(make_trace, events):
    events[4]["Function"]["line"] = 0
    assert_only_problem(validate_trace(make_trace(events)), 4, "Function.line must be an integer >= 1")


@pytest.mark.parametrize("kind", [14, -1, "0"])
def test_event_kind_range(make_trace, events, kind):
    events[20]["Event"]["kind"] = kind
    assert_only_problem(validate_trace(make_trace(events)), 20, "Event.kind must be an integer 0..13")


def test_event_needs_metadata(make_trace, events):
    del events[20]["Event"]["metadata"]
    assert_only_problem(validate_trace(make_trace(events)), 20, "Event: missing field(s) 'metadata'")


def test_event_content_must_be_a_string(make_trace, events):
    events[20]["Event"]["content"] = 9
    assert_only_problem(validate_trace(make_trace(events)), 20, "Event.content must be a string, got int")


@pytest.mark.parametrize("variant", ["ThreadStart", "ThreadSwitch", "ThreadExit"])
@pytest.mark.parametrize("payload", [-1, 2**64, "1", {"id": 1}])
def test_thread_payload(make_trace, events, variant, payload):
    events.insert(8, {variant: payload})
    assert_only_problem(validate_trace(make_trace(events)), 8,
                        "thread id must be a non-negative 64-bit integer")


# --- strings -----------------------------------------------------------------------------------

@pytest.mark.parametrize("index, edit, where", [
    (10, lambda e: e.__setitem__("VariableName", "a\ud800"), "VariableName"),
    (12, lambda e: e["Function"].__setitem__("name", "add\udfff"), "Function.name"),
    (16, lambda e: e["Value"].__setitem__("value", {"kind": "String", "text": "\udc80", "type_id": 1}),
     "Value.value.text"),
    (17, lambda e: e["Value"].__setitem__("value", {"kind": "Raw", "r": "x\ud83d", "type_id": 1}),
     "Value.value.r"),
    (20, lambda e: e["Event"].__setitem__("content", "9\ud800\n"), "Event.content"),
    (20, lambda e: e["Event"].__setitem__("metadata", "\ud800"), "Event.metadata"),
    (9, lambda e: e["Type"].__setitem__("lang_type", "\ud800"), "Type.lang_type"),
])
def test_lone_surrogates_rejected(make_trace, events, index, edit, where):
    edit(events[index])
    assert_only_problem(validate_trace(make_trace(events)), index, f"{where} contains a lone surrogate")


def test_lone_surrogate_in_path(make_trace, events):
    events[0]["Path"] = "/home/u/p/ma\udcffin.py"
    report = validate_trace(make_trace(events, paths=["/home/u/p/main.py"]))
    assert_has_problem(report, 0, "Path contains a lone surrogate U+DCFF at character 12")


def test_surrogate_pairs_are_fine(make_trace, events):
    events[20]["Event"]["content"] = "\U0001f600\n"  # json.dumps writes it as an escaped surrogate pair
    assert validate_trace(make_trace(events)).valid


# --- side files -------------------------------------------------------------------------------

def test_paths_file_must_match_path_events(make_trace):
    report = validate_trace(make_trace(paths=["/home/u/p/other.py"]))
    assert_only_problem(report, 0,
                        "Path 0 is '/home/u/p/main.py' but trace_paths.json[0] is '/home/u/p/other.py'")


def test_paths_file_must_have_as_many_paths(make_trace):
    report = validate_trace(make_trace(paths=["/home/u/p/main.py", "/x.py"]))
    assert_only_problem(report, None, "trace_paths.json lists 2 path(s) but the trace has 1 Path event(s)")


def test_paths_file_must_be_a_list_of_strings(make_trace):
    report = validate_trace(make_trace(paths={"0": "/home/u/p/main.py"}))
    assert_only_problem(report, None, "trace_paths.json: must be a JSON array of path strings")


def test_paths_file_missing(make_trace):
    trace = make_trace()
    (trace / "trace_paths.json").unlink()
    assert_only_problem(validate_trace(trace), None, "trace_paths.json is missing")


def test_metadata_missing(make_trace):
    trace = make_trace()
    (trace / "trace_metadata.json").unlink()
    assert_only_problem(validate_trace(trace), None, "trace_metadata.json is missing")


def _metadata(**changes):
    metadata = {"recording_id": "01949fcc-7d92-7e9c-aaaa-bbbbbbbbbbbb", "program": "main.py",
                "args": [], "workdir": "/home/u/p"}
    metadata.update(changes)
    return {k: v for k, v in metadata.items() if v is not None}


@pytest.mark.parametrize("metadata, fragment", [
    (_metadata(recording_id=None), "trace_metadata.json: missing key 'recording_id'"),
    (_metadata(program=None), "trace_metadata.json: missing key 'program'"),
    (_metadata(args=None), "trace_metadata.json: missing key 'args'"),
    (_metadata(workdir=None), "trace_metadata.json: missing key 'workdir'"),
    (_metadata(recording_id=7), "'recording_id' must be a string"),
    (_metadata(recording_id="01949fcc7d927e9caaaabbbbbbbbbbbb"), "is not a 36-character UUID"),
    (_metadata(program=["main.py"]), "'program' must be a string"),
    (_metadata(args="a b"), "'args' must be a list of strings"),
    (_metadata(args=["a", 2]), "'args'[1] must be a string"),
    (_metadata(workdir="home/u/p"), "'workdir' 'home/u/p' must be an absolute path"),
    ([], "trace_metadata.json: must be a JSON object"),
])
def test_metadata_rules(make_trace, metadata, fragment):
    assert_only_problem(validate_trace(make_trace(metadata=metadata)), None, fragment)


def test_metadata_extra_keys_allowed(make_trace):
    metadata = _metadata(recorder={"name": "rewind"}, process_exit_status={"code": 0, "label": "ok"})
    assert validate_trace(make_trace(metadata=metadata)).valid


def test_recording_id_not_v7_is_a_warning(make_trace):
    uuid4 = "6f1c3b1e-0a4b-4c4e-9a53-3d1f1c2b7a10"
    report = validate_trace(make_trace(metadata=_metadata(recording_id=uuid4)))
    assert report.valid
    assert [str(w) for w in report.warnings] == [
        "trace_metadata.json: 'recording_id' '6f1c3b1e-0a4b-4c4e-9a53-3d1f1c2b7a10' is not a UUIDv7"]


def test_partial_trace_is_a_warning(make_trace):
    report = validate_trace(make_trace(metadata=_metadata(partial=True, error={"code": "ERR_IO"})))
    assert report.valid
    assert [str(w) for w in report.warnings] == ["trace_metadata.json: the trace is marked partial (ERR_IO)"]


def test_ct_file_is_rejected(make_trace):
    trace = make_trace()
    (trace / "trace.ct").write_bytes(b"")
    assert_only_problem(validate_trace(trace), None, "trace.ct: remove it")


# --- malformed JSON ---------------------------------------------------------------------------

def test_malformed_json_reports_index_and_byte_offset(make_trace, events):
    lines = [json.dumps(e) for e in events]
    lines[7] = '{"Step": {"path_id": 0, "line": }}'
    text = "[" + ",\n".join(lines) + "\n]\n"
    offset = text.index("}}", text.index('"line": }'))
    report = validate_trace(make_trace(events, events_text=text))
    assert problems(report) == [
        (7, f"malformed JSON: Expecting value at byte offset {offset} (validation stopped here)")]
    assert report.events == 7


def test_truncated_trace(make_trace, events):
    text = "[" + ",\n".join(json.dumps(e) for e in events[:10])
    assert_only_problem(validate_trace(make_trace(events, events_text=text)), 10,
                        "unexpected end of file: the event array is not closed with ']'")


def test_nan_token_is_rejected(make_trace, events):
    lines = [json.dumps(e) for e in events]
    lines[16] = '{"Value": {"variable_id": 0, "value": {"kind": "Float", "f": NaN, "type_id": 1}}}'
    report = validate_trace(make_trace(events, events_text="[" + ",\n".join(lines) + "\n]"))
    event_start = len("[" + ",\n".join(lines[:16]) + ",\n")
    assert problems(report) == [
        (16, (f"non-standard JSON token(s) NaN in the event starting at byte offset {event_start} "
             "(NaN/Infinity are not valid JSON)")),
        (16, "Value.value.f must be a string such as \"2.5\" or \"inf\", got nan"),
    ]


def test_invalid_utf8(make_trace, events):
    events[20]["Event"]["content"] = "\u00e9XX"
    text = ("[" + ",\n".join(json.dumps(e, ensure_ascii=False) for e in events) + "\n]").encode()
    trace = make_trace(events)
    bad = text.replace("é".encode(), b"\xff\xfe")
    (trace / "trace.json").write_bytes(bad)
    report = validate_trace(trace)
    offset = bad.index(b"\xff")
    assert problems(report) == [
        (20, f"invalid UTF-8 (invalid start byte) at byte offset {offset} (validation stopped here)")]


def test_reader_yields_the_same_events_in_every_layout(make_trace, events):
    for layout in ("lines", "indent", "single"):
        assert [e for _, e in iter_events(make_trace(events, layout=layout))] == events


# --- not a trace, binary, CLI -----------------------------------------------------------------

def test_not_a_trace_directory(tmp_path, capsys):
    with pytest.raises(TraceNotFoundError, match="has no trace.json"):
        validate_trace(tmp_path)
    assert run_cli(["validate", str(tmp_path)]) == 2
    assert "has no trace.json" in capsys.readouterr().err
    assert run_cli(["validate", str(tmp_path / "missing")]) == 2
    assert "no such trace directory" in capsys.readouterr().err


def test_binary_trace_needs_the_binary_extra_or_is_read(tmp_path, capsys):
    (tmp_path / "trace.bin").write_bytes(b"\xc0\xde\x72\xac\xe2\x01\x00\x00")
    try:
        import cbor2  # noqa: F401
        import zstandard  # noqa: F401
    except ImportError:
        with pytest.raises(MissingExtraError, match=r"'binary' extra"):
            validate_trace(tmp_path)
        assert run_cli(["validate", str(tmp_path)]) == 2
        assert "trace.bin" in capsys.readouterr().err
        return
    # A header alone: no seek table (an unfinished trace) and no events; more in test_convert.py.
    assert run_cli(["validate", str(tmp_path)]) == 1
    assert "trace.bin: no seek table" in capsys.readouterr().out


def test_cli_lists_problems_and_limits_them(make_trace, events, capsys):
    events[16:16] = [{"Value": {"variable_id": 0, "value": {"kind": "Bool", "b": "yes", "type_id": 1}}}] * 6
    trace = make_trace(events)
    assert run_cli(["validate", str(trace), "--max-problems", "2"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"INVALID: 6 problem(s) in 29 events ({trace})"
    assert out[1:] == ["event #16: Value.value.b must be a boolean, got 'yes'",
                       "event #17: Value.value.b must be a boolean, got 'yes'",
                       "... and 4 more problem(s) (use --max-problems N to see more)"]


def test_cli_json_output(make_trace, events, capsys):
    events.append({"Return": {"return_value": {"kind": "None", "type_id": 0}}})
    assert run_cli(["validate", str(make_trace(events)), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["valid"] is False and data["problem_count"] == 1 and data["events"] == 24
    assert data["problems"] == [
        {"index": 23, "message": "Return with no open call (the debugger crashes on it)"}]
    assert data["events_by_variant"]["Return"] == 4


def test_problem_count_is_total_even_beyond_the_limit(make_trace, events):
    events[5:5] = [{"Bogus": i} for i in range(50)]
    report = validate_trace(make_trace(events), max_problems=5)
    assert report.problem_count == 50 and len(report.problems) == 5
    assert [p.index for p in report.problems] == [5, 6, 7, 8, 9]


# --- large traces -----------------------------------------------------------------------------

def test_large_trace_is_validated_in_bounded_memory(large_trace: Path):
    size = (large_trace / "trace.json").stat().st_size
    tracemalloc.start()
    try:
        report = validate_trace(large_trace)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.valid, problems(report)
    assert report.events == 300_011
    assert size > 15_000_000
    assert peak < 2_000_000, peak  # well below the file size: only id tables and one line are held


def test_large_events_and_lines_longer_than_the_read_limit(make_trace, events):
    # A 3 MB string of 2-byte characters: lines and values span many reads and UTF-8 sequences
    # get split between reads.
    events[16]["Value"]["value"] = {"kind": "String", "text": "é" * 1_500_000, "type_id": 1}
    for layout in ("lines", "single"):
        report = validate_trace(make_trace(events, layout=layout))
        assert report.valid and report.events == 23, problems(report)


@pytest.mark.parametrize("layout", ["indent", "single"])
def test_malformed_json_offset_in_other_layouts(make_trace, events, layout):
    text = json.dumps(events, indent=2 if layout == "indent" else None)
    broken = text.replace('"Return"', '"Return" "', 1)  # a missing ':' in event 18
    report = validate_trace(make_trace(events, events_text=broken))
    offset = broken.index('"Return" "') + len('"Return" ')
    assert problems(report) == [
        (18, f"malformed JSON: Expecting ':' delimiter at byte offset {offset} (validation stopped here)")]
