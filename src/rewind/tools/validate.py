"""`rewind validate DIR`: check a trace against every rule of trace-format.md.

The events are streamed: only id-table sizes and small per-id facts (a function's location,
a type's Struct field count) are kept, so memory stays bounded for traces of any size.
"""
from __future__ import annotations

import argparse
import base64
import binascii
import json
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from .trace_reader import (
    METADATA_FILE,
    PATHS_FILE,
    MissingExtraError,
    TraceNotFoundError,
    TraceSyntaxError,
    iter_events,
    locate_trace,
    read_json_file,
)

DEFAULT_MAX_PROBLEMS = 20

I64_MIN, I64_MAX = -(1 << 63), (1 << 63) - 1
U64_MAX = (1 << 64) - 1
MAX_TYPE_KIND = 33
MAX_EVENT_KIND = 13
NONE_TYPE_KIND = 30
STRUCT_TYPE_KIND = 6
TOPLEVEL_NAME = "<toplevel>"
# Distinct variant names counted one by one; the rest are lumped (garbage input stays bounded).
_MAX_COUNTED_VARIANTS = 64

PAYLOAD_FIELDS: dict[str, frozenset[str]] = {
    "Function": frozenset({"path_id", "line", "name"}),
    "Type": frozenset({"kind", "lang_type", "specific_info"}),
    "Step": frozenset({"path_id", "line"}),
    "Call": frozenset({"function_id", "args"}),
    "Return": frozenset({"return_value"}),
    "Value": frozenset({"variable_id", "value"}),
    "Event": frozenset({"kind", "metadata", "content"}),
}
ARG_FIELDS = frozenset({"variable_id", "value"})
STRUCT_FIELD_FIELDS = frozenset({"name", "type_id"})
SPECIFIC_INFO_FIELDS: dict[str, frozenset[str]] = {
    "None": frozenset({"kind"}),
    "Struct": frozenset({"kind", "fields"}),
    "Pointer": frozenset({"kind", "dereference_type_id"}),
}
VALUE_FIELDS: dict[str, frozenset[str]] = {
    "None": frozenset({"kind", "type_id"}),
    "Bool": frozenset({"kind", "b", "type_id"}),
    "Int": frozenset({"kind", "i", "type_id"}),
    "BigInt": frozenset({"kind", "b", "negative", "type_id"}),
    "Float": frozenset({"kind", "f", "type_id"}),
    "String": frozenset({"kind", "text", "type_id"}),
    "Sequence": frozenset({"kind", "elements", "is_slice", "type_id"}),
    "Tuple": frozenset({"kind", "elements", "type_id"}),
    "Struct": frozenset({"kind", "field_values", "type_id"}),
    "Raw": frozenset({"kind", "r", "type_id"}),
    "Error": frozenset({"kind", "msg", "type_id"}),
}
# Value kinds the reader's types know but a Python trace must not carry.
DISALLOWED_VALUE_KINDS = {
    "Cell": "a Cell value that reaches the screen panics the debugger",
    "Char": "readers older than 2026-02 reject it",
    "Reference": "a Python writer needs no Reference values",
    "Variant": "a Python writer needs no Variant values",
}
THREAD_VARIANTS = frozenset({"ThreadStart", "ThreadSwitch", "ThreadExit"})
# Variants that define an id and do not move the current step.
DEFINITION_VARIANTS = frozenset({"Path", "Function", "Type", "VariableName"}) | THREAD_VARIANTS
FORBIDDEN_VARIANTS = {
    "Assignment": "older readers hit unimplemented!() on it",
    "BindVariable": "older readers hit unimplemented!() on it",
    "DropVariables": "older readers hit unimplemented!() on it",
    "DropVariable": "it is an experimental cell-tracking event",
    "Cell": "cell-based value tracking does not serve a Python trace",
    "CompoundValue": "cell-based value tracking does not serve a Python trace",
    "CellValue": "cell-based value tracking does not serve a Python trace",
    "VariableCell": "cell-based value tracking does not serve a Python trace",
    "AssignCell": "cell-based value tracking does not serve a Python trace",
    "AssignCompoundItem": "cell-based value tracking does not serve a Python trace",
    "DropLastStep": "it is not undone in every table and can fail the reader's length check",
    "Variable": "it is a legacy alias; write VariableName",
    "Asm": "it is not part of a Python trace",
}
PROLOGUE = ("Path", "Function", "Call", "Type")
NONE_TYPE = {"kind": NONE_TYPE_KIND, "lang_type": "None", "specific_info": {"kind": "None"}}

_MISSING: Any = object()  # a field that is absent (already reported by _check_fields)

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# What Rust's f64::from_str accepts (the reader parses `Float.f` with it).
_FLOAT_LITERAL = re.compile(r"[+-]?(?:inf|infinity|nan|(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?)", re.IGNORECASE)
_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


@dataclass(frozen=True)
class Problem:
    """One finding; `index` is the event's position in the trace, None outside the event stream."""

    index: int | None
    message: str

    def __str__(self) -> str:
        return self.message if self.index is None else f"event #{self.index}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "message": self.message}


@dataclass
class ValidationReport:
    trace_dir: str
    max_problems: int = DEFAULT_MAX_PROBLEMS
    events: int = 0
    calls: int = 0
    steps: int = 0
    values: int = 0
    events_by_variant: dict[str, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)  # the first `max_problems`
    problem_count: int = 0
    warnings: list[Problem] = field(default_factory=list)  # the first `max_problems`
    warning_count: int = 0

    @property
    def valid(self) -> bool:
        return self.problem_count == 0

    def add_problem(self, index: int | None, message: str) -> None:
        self.problem_count += 1
        if len(self.problems) < self.max_problems:
            self.problems.append(Problem(index, message))

    def add_warning(self, index: int | None, message: str) -> None:
        self.warning_count += 1
        if len(self.warnings) < self.max_problems:
            self.warnings.append(Problem(index, message))

    def to_dict(self) -> dict[str, Any]:
        return {
            "trace_dir": self.trace_dir,
            "valid": self.valid,
            "events": self.events,
            "calls": self.calls,
            "steps": self.steps,
            "values": self.values,
            "events_by_variant": dict(self.events_by_variant),
            "problem_count": self.problem_count,
            "problems": [p.to_dict() for p in self.problems],
            "warning_count": self.warning_count,
            "warnings": [w.to_dict() for w in self.warnings],
        }


def validate_trace(path: str | Path, max_problems: int = DEFAULT_MAX_PROBLEMS) -> ValidationReport:
    """Validate the trace directory at `path` (or its event file).

    Raises `TraceNotFoundError` when `path` is not a trace directory and `MissingExtraError`
    when a `trace.bin` cannot be read without the `binary` extra; everything else is a problem
    in the report.
    """
    location = locate_trace(path)
    report = ValidationReport(trace_dir=str(location.directory), max_problems=max_problems)
    _check_no_ct_files(location.directory, report)
    _check_metadata(location.directory / METADATA_FILE, report)
    expected_paths = _load_paths_file(location.directory / PATHS_FILE, report)

    checker = _EventChecker(report, expected_paths)
    try:
        for index, event in iter_events(location.events_file, on_problem=report.add_problem):
            checker.check(index, event)
    except TraceSyntaxError as err:
        report.add_problem(err.event_index, f"{err.message} at byte offset {err.byte_offset} "
                                            "(validation stopped here)")
        checker.finish(complete=False)
    except OSError as err:
        report.add_problem(None, f"{location.events_file.name}: cannot be read: {err}")
        checker.finish(complete=False)
    else:
        checker.finish(complete=True)
    return report


# --- side files ---------------------------------------------------------------------------

def _check_no_ct_files(directory: Path, report: ValidationReport) -> None:
    for ct_file in sorted(directory.glob("*.ct")):
        report.add_problem(None, f"{ct_file.name}: remove it: the debugger prefers a *.ct file "
                                 "over trace.json")


def _load_side_file(path: Path, report: ValidationReport) -> Any:
    if not path.is_file():
        report.add_problem(None, f"{path.name} is missing")
        return None
    try:
        return read_json_file(path)
    except (ValueError, OSError) as err:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        report.add_problem(None, f"{path.name}: not valid JSON: {err}")
        return None


def _check_metadata(path: Path, report: ValidationReport) -> None:
    metadata = _load_side_file(path, report)
    if metadata is None:
        return
    name = path.name
    if not isinstance(metadata, dict):
        report.add_problem(None, f"{name}: must be a JSON object")
        return
    for key in ("recording_id", "program", "args", "workdir"):
        if key not in metadata:
            report.add_problem(None, f"{name}: missing key '{key}'")

    recording_id = metadata.get("recording_id")
    if "recording_id" in metadata:
        if not isinstance(recording_id, str):
            report.add_problem(None, f"{name}: 'recording_id' must be a string")
        elif len(recording_id) != 36 or not _UUID.fullmatch(recording_id):
            report.add_problem(None, f"{name}: 'recording_id' {_short(recording_id)} "
                                     "is not a 36-character UUID")
        elif recording_id[14] != "7" or recording_id[19].lower() not in "89ab":
            report.add_warning(None, f"{name}: 'recording_id' {_short(recording_id)} is not a UUIDv7")
    if "program" in metadata:
        _check_side_string(report, metadata["program"], f"{name}: 'program'")
    if "args" in metadata:
        args = metadata["args"]
        if not isinstance(args, list):
            report.add_problem(None, f"{name}: 'args' must be a list of strings")
        else:
            for i, arg in enumerate(args):
                _check_side_string(report, arg, f"{name}: 'args'[{i}]")
    if "workdir" in metadata:
        workdir = metadata["workdir"]
        if _check_side_string(report, workdir, f"{name}: 'workdir'") and not _is_absolute(workdir):
            report.add_problem(None, f"{name}: 'workdir' {_short(workdir)} must be an absolute path")
    if metadata.get("partial") is True:
        error = metadata.get("error")
        detail = f" ({error.get('code', error) if isinstance(error, dict) else error})" if error else ""
        report.add_warning(None, f"{name}: the trace is marked partial{detail}")


def _check_side_string(report: ValidationReport, value: Any, where: str) -> bool:
    if not isinstance(value, str):
        report.add_problem(None, f"{where} must be a string")
        return False
    if _LONE_SURROGATE.search(value):
        report.add_problem(None, f"{where} contains a lone surrogate")
        return False
    return True


def _is_absolute(path: str) -> bool:
    return PurePosixPath(path).is_absolute() or PureWindowsPath(path).is_absolute()


def _load_paths_file(path: Path, report: ValidationReport) -> list[str] | None:
    paths = _load_side_file(path, report)
    if paths is None:
        return None
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        report.add_problem(None, f"{path.name}: must be a JSON array of path strings")
        return None
    return paths


# --- events -------------------------------------------------------------------------------

class _EventChecker:
    """Checks events one at a time, keeping only id-table sizes and small per-id facts."""

    def __init__(self, report: ValidationReport, expected_paths: list[str] | None):
        self.report = report
        self.expected_paths = expected_paths
        self.path_count = 0
        self.function_locations: list[tuple[Any, Any]] = []  # (path_id, line) per function id
        self.struct_field_counts: list[int] = []  # per type id; -1 unless a kind-6 Struct type
        self.variable_count = 0
        self.call_depth = 0
        self.toplevel_closed = False
        self.prologue_seen = 0  # how many of PROLOGUE's events have been checked
        self.last_step: tuple[Any, Any] | None = None
        self.step_is_current = False  # only definitions since the last Step
        self.variant_counts: Counter[str] = Counter()
        self.handlers = {
            "Path": self._check_path,
            "Function": self._check_function,
            "Type": self._check_type,
            "VariableName": self._check_variable_name,
            "Step": self._check_step,
            "Call": self._check_call,
            "Return": self._check_return,
            "Value": self._check_value_event,
            "Event": self._check_event,
            "ThreadStart": self._check_thread,
            "ThreadSwitch": self._check_thread,
            "ThreadExit": self._check_thread,
        }
        self._index = 0

    # -- entry points

    def check(self, index: int, event: Any) -> None:
        self._index = index
        self.report.events = index + 1
        if isinstance(event, dict) and len(event) == 1:
            ((variant, payload),) = event.items()
        elif isinstance(event, str):
            variant, payload = event, None  # only "DropLastStep" is spelt as a bare string
        else:
            self._problem("an event must be an object with exactly one key, the variant name")
            return
        self._count_variant(variant)
        handler = self.handlers.get(variant)
        if handler is None:
            if variant in FORBIDDEN_VARIANTS:
                self._problem(f"forbidden variant {_short(variant)}: {FORBIDDEN_VARIANTS[variant]}")
            else:
                self._problem(f"unknown variant {_short(variant)} (the reader rejects the whole trace)")
            self.step_is_current = False
            return
        if isinstance(event, str):
            self._problem(f"variant {_short(variant)} must be an object {{{_short(variant)}: payload}}")
            return
        if self.prologue_seen < len(PROLOGUE) and variant not in THREAD_VARIANTS:
            self._check_prologue(variant)
        handler(payload)
        if variant not in DEFINITION_VARIANTS and variant != "Step":
            self.step_is_current = False

    def finish(self, complete: bool) -> None:
        report = self.report
        report.events_by_variant = dict(self.variant_counts)
        if not complete:
            return
        if report.events == 0:
            report.add_problem(None, "end of trace: the trace has no events")
            return
        if self.call_depth > 0:
            report.add_problem(None, f"end of trace: {self.call_depth} call(s) still open; "
                                     "every Call needs a Return before the trace ends")
        if self.expected_paths is not None and len(self.expected_paths) != self.path_count:
            report.add_problem(None, f"{PATHS_FILE} lists {len(self.expected_paths)} path(s) but the "
                                     f"trace has {self.path_count} Path event(s)")

    # -- helpers

    def _problem(self, message: str) -> None:
        self.report.add_problem(self._index, message)

    def _count_variant(self, variant: str) -> None:
        counts = self.variant_counts
        if variant in counts or len(counts) < _MAX_COUNTED_VARIANTS:
            counts[variant] += 1
        else:
            counts["<other>"] += 1

    def _check_fields(self, payload: Any, expected: frozenset[str], where: str) -> bool:
        """Exact field names (the reader drops unknown ones silently); False if not an object."""
        if not isinstance(payload, dict):
            self._problem(f"{where} must be an object with fields {_names(expected)}")
            return False
        if payload.keys() != expected:
            missing = expected - payload.keys()
            unknown = payload.keys() - expected
            parts = []
            if missing:
                parts.append(f"missing field(s) {_names(missing)}")
            if unknown:
                parts.append(f"unknown field(s) {_names(unknown)} (the reader drops them silently)")
            self._problem(f"{where}: " + "; ".join(parts))
        return True

    def _check_id(self, value: Any, defined: int, what: str, where: str) -> bool:
        if value is _MISSING:
            return False
        if type(value) is not int or value < 0:
            self._problem(f"{where} must be a non-negative integer, got {_short(value)}")
            return False
        if value >= defined:
            self._problem(f"{where}: {what} {value} is used before it is defined "
                          f"({defined} defined so far)")
            return False
        return True

    def _check_line(self, value: Any, where: str) -> bool:
        if value is _MISSING:
            return False
        if type(value) is not int or not 1 <= value <= I64_MAX:
            self._problem(f"{where} must be an integer >= 1, got {_short(value)}")
            return False
        return True

    def _check_text(self, value: Any, where: str) -> None:
        if value is _MISSING:
            return
        if type(value) is not str:
            self._problem(f"{where} must be a string, got {_type_name(value)}")
            return
        match = _LONE_SURROGATE.search(value)
        if match:
            self._problem(f"{where} contains a lone surrogate U+{ord(match.group()):04X} at "
                          f"character {match.start()} (the reader rejects it)")

    def _check_bool(self, value: Any, where: str) -> None:
        if value is not _MISSING and type(value) is not bool:
            self._problem(f"{where} must be a boolean, got {_short(value)}")

    def _check_prologue(self, variant: str) -> None:
        position = self.prologue_seen
        self.prologue_seen += 1
        if variant != PROLOGUE[position]:
            self.prologue_seen = len(PROLOGUE)  # report the broken prologue once
            self._problem(f"the trace must start with Path, Function {TOPLEVEL_NAME}, Call of function 0, "
                          f"then the None Type; event {position + 1} of that prologue is {_short(variant)}")

    # -- variants

    def _check_path(self, payload: Any) -> None:
        path_id = self.path_count
        self.path_count += 1
        self._check_text(payload, "Path")
        if type(payload) is not str:
            return
        if not _is_absolute(payload):
            self.report.add_warning(self._index, f"Path {_short(payload)} is not absolute")
        expected = self.expected_paths
        if expected is not None and path_id < len(expected) and expected[path_id] != payload:
            self._problem(f"Path {path_id} is {_short(payload)} but {PATHS_FILE}[{path_id}] is "
                          f"{_short(expected[path_id])}")

    def _check_function(self, payload: Any) -> None:
        function_id = len(self.function_locations)
        if not self._check_fields(payload, PAYLOAD_FIELDS["Function"], "Function"):
            self.function_locations.append((None, None))
            return
        path_id = payload.get("path_id", _MISSING)
        line = payload.get("line", _MISSING)
        name = payload.get("name", _MISSING)
        path_known = self._check_id(path_id, self.path_count, "path", "Function.path_id")
        line_valid = self._check_line(line, "Function.line")
        self._check_text(name, "Function.name")
        if function_id == 0 and name != TOPLEVEL_NAME:
            self._problem(f"function 0 must be {TOPLEVEL_NAME!r}, got {_short(name)}")
        # An invalid location is reported here once, not again at every Call of the function.
        self.function_locations.append((path_id, line) if path_known and line_valid else (None, None))

    def _check_type(self, payload: Any) -> None:
        type_id = len(self.struct_field_counts)
        field_count = -1
        # Appended first, so a Struct field may name its own type (recursive classes).
        self.struct_field_counts.append(field_count)
        if not self._check_fields(payload, PAYLOAD_FIELDS["Type"], "Type"):
            return
        kind = payload.get("kind", _MISSING)
        if type(kind) is not int or not 0 <= kind <= MAX_TYPE_KIND:
            self._problem(f"Type.kind must be an integer 0..{MAX_TYPE_KIND}, got {_short(kind)}")
        self._check_text(payload.get("lang_type", _MISSING), "Type.lang_type")
        info = payload.get("specific_info", _MISSING)
        info_kind = info.get("kind", _MISSING) if isinstance(info, dict) else None
        expected = SPECIFIC_INFO_FIELDS.get(info_kind) if type(info_kind) is str else None
        if info is _MISSING:
            pass
        elif expected is None:
            self._problem("Type.specific_info must be an object whose 'kind' is one of "
                          f"{_names(SPECIFIC_INFO_FIELDS)}, got {_short(info)}")
        elif self._check_fields(info, expected, "Type.specific_info"):
            if info_kind == "Struct":
                field_count = self._check_struct_fields(info.get("fields", _MISSING), type_id)
            elif info_kind == "Pointer":
                self._check_id(info.get("dereference_type_id", _MISSING), type_id + 1, "type",
                               "Type.specific_info.dereference_type_id")
        if type_id == 0 and payload != NONE_TYPE:
            self._problem(f"type 0 must be the None type {json.dumps(NONE_TYPE)}, got {json.dumps(payload)}")
        if kind == STRUCT_TYPE_KIND and field_count >= 0:
            self.struct_field_counts[type_id] = field_count

    def _check_struct_fields(self, fields: Any, type_id: int) -> int:
        if fields is _MISSING:
            return -1
        if not isinstance(fields, list):
            self._problem("Type.specific_info.fields must be a list of {name, type_id}")
            return -1
        for i, struct_field in enumerate(fields):
            where = f"Type.specific_info.fields[{i}]"
            if self._check_fields(struct_field, STRUCT_FIELD_FIELDS, where):
                self._check_text(struct_field.get("name", _MISSING), f"{where}.name")
                self._check_id(struct_field.get("type_id", _MISSING), type_id + 1, "type", f"{where}.type_id")
        return len(fields)

    def _check_variable_name(self, payload: Any) -> None:
        self.variable_count += 1
        self._check_text(payload, "VariableName")

    def _check_step(self, payload: Any) -> None:
        self.report.steps += 1
        self._check_open_call("Step")
        if not self._check_fields(payload, PAYLOAD_FIELDS["Step"], "Step"):
            self.last_step = None
            return
        path_id, line = payload.get("path_id", _MISSING), payload.get("line", _MISSING)
        self._check_id(path_id, self.path_count, "path", "Step.path_id")
        self._check_line(line, "Step.line")
        self.last_step = (path_id, line)
        self.step_is_current = True

    def _check_open_call(self, variant: str) -> None:
        if self.toplevel_closed:
            self._problem(f"{variant} after the top-level call returned")
        elif self.call_depth == 0:
            self._problem(f"{variant} before the top-level Call (the reader asserts a call is open)")

    def _check_call(self, payload: Any) -> None:
        is_toplevel = self.report.calls == 0
        self.report.calls += 1
        if self.toplevel_closed:
            self._problem("Call after the top-level call returned (a trace has one top-level call)")
        if not self._check_fields(payload, PAYLOAD_FIELDS["Call"], "Call"):
            self.call_depth += 1
            return
        function_id = payload.get("function_id", _MISSING)
        known = self._check_id(function_id, len(self.function_locations), "function", "Call.function_id")
        if is_toplevel:
            if function_id != 0:
                self._problem(f"the first Call must be of function 0 ({TOPLEVEL_NAME}), "
                              f"got {_short(function_id)}")
        elif known:
            self._check_call_site(function_id)
        args = payload.get("args", _MISSING)
        if args is _MISSING:
            pass
        elif not isinstance(args, list):
            self._problem(f"Call.args must be a list of {{variable_id, value}}, got {_type_name(args)}")
        else:
            for i, arg in enumerate(args):
                where = f"Call.args[{i}]"
                if self._check_fields(arg, ARG_FIELDS, where):
                    self._check_id(arg.get("variable_id", _MISSING), self.variable_count, "variable name",
                                   f"{where}.variable_id")
                    if "value" in arg:
                        self._check_value(arg["value"], f"{where}.value")
        self.call_depth += 1

    def _check_call_site(self, function_id: int) -> None:
        callee = self.function_locations[function_id]
        if callee[0] is None:
            return  # the Function event's location was already reported
        if self.last_step is None or not self.step_is_current:
            self._problem(f"Call of function {function_id} must come right after a Step at the callee's "
                          f"definition (path {callee[0]}, line {callee[1]})")
        elif self.last_step != callee:
            self._problem(f"Call of function {function_id} (defined at path {callee[0]}, line {callee[1]}) "
                          f"follows a Step at path {self.last_step[0]}, line {self.last_step[1]}; the Step "
                          "before a Call must be at the callee's definition line")

    def _check_return(self, payload: Any) -> None:
        closes_toplevel = False
        if self.call_depth == 0:
            self._problem("Return with no open call (the debugger crashes on it)")
        else:
            self.call_depth -= 1
            closes_toplevel = self.call_depth == 0
            self.toplevel_closed = self.toplevel_closed or closes_toplevel
        if not self._check_fields(payload, PAYLOAD_FIELDS["Return"], "Return"):
            return
        if "return_value" in payload:
            value = payload["return_value"]
            self._check_value(value, "Return.return_value")
            if closes_toplevel and isinstance(value, dict) and value.get("kind") not in ("Int", "String"):
                self.report.add_warning(self._index, "the top-level call should return the exit code as "
                                                     "an Int, or a String when it is unknown")

    def _check_value_event(self, payload: Any) -> None:
        self.report.values += 1
        self._check_open_call("Value")
        if self.report.steps == 0:
            self.report.add_warning(self._index, "Value before any Step (values attach to the last Step)")
        if not self._check_fields(payload, PAYLOAD_FIELDS["Value"], "Value"):
            return
        self._check_id(payload.get("variable_id", _MISSING), self.variable_count, "variable name",
                       "Value.variable_id")
        if "value" in payload:
            self._check_value(payload["value"], "Value.value")

    def _check_event(self, payload: Any) -> None:
        self._check_open_call("Event")
        if not self._check_fields(payload, PAYLOAD_FIELDS["Event"], "Event"):
            return
        kind = payload.get("kind", _MISSING)
        if type(kind) is not int or not 0 <= kind <= MAX_EVENT_KIND:
            self._problem(f"Event.kind must be an integer 0..{MAX_EVENT_KIND}, got {_short(kind)}")
        self._check_text(payload.get("metadata", _MISSING), "Event.metadata")
        self._check_text(payload.get("content", _MISSING), "Event.content")

    def _check_thread(self, payload: Any) -> None:
        if type(payload) is not int or not 0 <= payload <= U64_MAX:
            self._problem(f"thread id must be a non-negative 64-bit integer, got {_short(payload)}")

    # -- values

    def _check_value(self, value: Any, where: str) -> None:
        if not isinstance(value, dict):
            self._problem(f"{where} must be a value object with a 'kind', got {_type_name(value)}")
            return
        kind = value.get("kind")
        expected = VALUE_FIELDS.get(kind) if type(kind) is str else None
        if expected is None:
            if kind is None:
                self._problem(f"{where}: a value needs a 'kind' field")
            elif kind in DISALLOWED_VALUE_KINDS:
                self._problem(f"{where}: value kind {_short(kind)} is not allowed: "
                              f"{DISALLOWED_VALUE_KINDS[kind]}")
            else:
                self._problem(f"{where}: unknown value kind {_short(kind)}")
            return
        self._check_fields(value, expected, where)
        type_id = value.get("type_id", _MISSING)
        type_known = self._check_id(type_id, len(self.struct_field_counts), "type", f"{where}.type_id")

        if kind == "Int":
            i = value.get("i", _MISSING)
            if i is not _MISSING and (type(i) is not int or not I64_MIN <= i <= I64_MAX):
                self._problem(f"{where}.i must be an integer in the i64 range (use BigInt beyond), "
                              f"got {_short(i)}")
        elif kind == "String":
            self._check_text(value.get("text", _MISSING), f"{where}.text")
        elif kind == "Sequence" or kind == "Tuple":
            if kind == "Sequence":
                self._check_bool(value.get("is_slice", _MISSING), f"{where}.is_slice")
            self._check_elements(value.get("elements", _MISSING), f"{where}.elements")
        elif kind == "Float":
            f = value.get("f", _MISSING)
            if f is _MISSING:
                pass
            elif type(f) is not str:
                self._problem(f"{where}.f must be a string such as \"2.5\" or \"inf\", got {_short(f)}")
            elif not _FLOAT_LITERAL.fullmatch(f):
                self._problem(f"{where}.f {_short(f)} is not a float literal")
        elif kind == "Bool":
            self._check_bool(value.get("b", _MISSING), f"{where}.b")
        elif kind == "Raw":
            self._check_text(value.get("r", _MISSING), f"{where}.r")
        elif kind == "Error":
            self._check_text(value.get("msg", _MISSING), f"{where}.msg")
        elif kind == "BigInt":
            self._check_bigint(value, where)
        elif kind == "Struct":
            field_values = value.get("field_values", _MISSING)
            self._check_elements(field_values, f"{where}.field_values")
            if type_known:
                field_count = self.struct_field_counts[type_id]
                if field_count < 0:
                    self._problem(f"{where}: a Struct value's type {type_id} must be of kind 6 with "
                                  "specific_info {\"kind\": \"Struct\", \"fields\": [...]}")
                elif isinstance(field_values, list) and len(field_values) != field_count:
                    self._problem(f"{where} has {len(field_values)} field value(s) but type {type_id} "
                                  f"declares {field_count} field(s)")

    def _check_elements(self, elements: Any, where: str) -> None:
        if elements is _MISSING:
            return
        if not isinstance(elements, list):
            self._problem(f"{where} must be a list of values, got {_type_name(elements)}")
            return
        for i, element in enumerate(elements):
            self._check_value(element, f"{where}[{i}]")

    def _check_bigint(self, value: dict[str, Any], where: str) -> None:
        self._check_bool(value.get("negative", _MISSING), f"{where}.negative")
        b = value.get("b", _MISSING)
        if b is _MISSING:
            return
        if type(b) is not str:
            self._problem(f"{where}.b must be a base64 string, got {_type_name(b)}")
            return
        canonical = False
        if _BASE64.fullmatch(b):
            try:
                canonical = base64.b64encode(base64.b64decode(b, validate=True)).decode("ascii") == b
            except binascii.Error:
                canonical = False
        if not canonical:
            self._problem(f"{where}.b {_short(b)} is not canonical padded standard base64")


def _short(value: Any, limit: int = 80) -> str:
    """repr() cut to `limit` characters, so one huge value cannot flood the report."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _names(names: Any) -> str:
    return ", ".join(repr(name) for name in sorted(names))


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


# --- CLI ----------------------------------------------------------------------------------

def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "validate", help="check a trace directory against the CodeTracer trace format",
        description="Check a trace directory against every rule of the CodeTracer trace format. "
                    "Exit status: 0 valid, 1 invalid, 2 not a readable trace directory.")
    parser.add_argument("trace_dir", metavar="DIR", help="the trace directory")
    parser.add_argument("--max-problems", type=int, default=DEFAULT_MAX_PROBLEMS, metavar="N",
                        help=f"show at most N problems (default {DEFAULT_MAX_PROBLEMS})")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        report = validate_trace(args.trace_dir, max_problems=max(args.max_problems, 0))
    except (TraceNotFoundError, MissingExtraError, NotImplementedError) as err:
        print(f"rewind validate: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
        return 0 if report.valid else 1
    if report.valid:
        print(f"OK: {report.events} events, {report.calls} calls, {report.steps} steps")
    else:
        print(f"INVALID: {report.problem_count} problem(s) in {report.events} events ({report.trace_dir})")
        for problem in report.problems:
            print(str(problem))
        _print_hidden(report.problem_count - len(report.problems), "problem(s)")
    for warning in report.warnings:
        print(f"warning: {warning}")
    _print_hidden(report.warning_count - len(report.warnings), "warning(s)")
    return 0 if report.valid else 1


def _print_hidden(hidden: int, what: str) -> None:
    if hidden > 0:
        print(f"... and {hidden} more {what} (use --max-problems N to see more)")
