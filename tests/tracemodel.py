"""A test-side model of a trace: decodes the events into steps, calls and values so tests
can assert on what the program did.  Independent of the recorder's code on purpose."""
from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Raw:
    r: str
    type: str


@dataclass(frozen=True)
class Err:
    msg: str


@dataclass
class Step:
    index: int
    path: str
    line: int
    thread: int
    function: str | None
    values: dict = field(default_factory=dict)
    # The Step right before a Call is the callee's entry (the reader relabels it as the
    # call's location), not a line executed by the caller.
    is_entry: bool = False

    @property
    def file(self) -> str:
        return os.path.basename(self.path)


@dataclass
class Call:
    index: int
    function: str
    path: str
    line: int
    thread: int
    args: dict
    depth: int
    parent: "Call | None" = None
    returned: object = None
    closed: bool = False
    children: list = field(default_factory=list)


class TraceView:
    def __init__(self, trace_dir: str):
        with open(os.path.join(trace_dir, "trace.json"), encoding="utf-8") as f:
            self.events = json.load(f)
        with open(os.path.join(trace_dir, "trace_metadata.json"), encoding="utf-8") as f:
            self.metadata = json.load(f)
        self.paths: list[str] = []
        self.functions: list[dict] = []
        self.types: list[dict] = []
        self.names: list[str] = []
        self.steps: list[Step] = []
        self.calls: list[Call] = []
        self.io: list[dict] = []
        self.errors: list[dict] = []
        self.threads_seen: list[int] = []
        self._build()

    # -- decoding ------------------------------------------------------------------------

    def decode(self, value: dict):
        kind = value["kind"]
        if kind == "None":
            return None
        if kind == "Bool":
            return value["b"]
        if kind == "Int":
            return value["i"]
        if kind == "BigInt":
            magnitude = int.from_bytes(base64.b64decode(value["b"]), "big")
            return -magnitude if value["negative"] else magnitude
        if kind == "Float":
            return float(value["f"])
        if kind == "String":
            return value["text"]
        if kind == "Sequence":
            return [self.decode(v) for v in value["elements"]]
        if kind == "Tuple":
            return tuple(self.decode(v) for v in value["elements"])
        if kind == "Struct":
            t = self.types[value["type_id"]]
            names = [f["name"] for f in t["specific_info"]["fields"]]
            out = {"__type__": t["lang_type"]}
            out.update(zip(names, (self.decode(v) for v in value["field_values"])))
            return out
        if kind == "Raw":
            return Raw(value["r"], self.types[value["type_id"]]["lang_type"])
        if kind == "Error":
            return Err(value["msg"])
        raise AssertionError("unknown value kind %r" % kind)

    def type_name(self, value: dict) -> str:
        return self.types[value["type_id"]]["lang_type"]

    # -- model ---------------------------------------------------------------------------

    def _build(self) -> None:
        stacks: dict[int, list[Call]] = {0: []}
        thread = 0
        last_step: Step | None = None
        for index, event in enumerate(self.events):
            if isinstance(event, str):
                raise AssertionError("bare string event %r" % event)
            (variant, payload), = event.items()
            if variant == "Path":
                self.paths.append(payload)
            elif variant == "Function":
                self.functions.append(payload)
            elif variant == "Type":
                self.types.append(payload)
            elif variant == "VariableName":
                self.names.append(payload)
            elif variant in ("ThreadStart", "ThreadSwitch"):
                thread = payload
                stacks.setdefault(thread, [])
                if variant == "ThreadStart":
                    self.threads_seen.append(thread)
            elif variant == "ThreadExit":
                pass
            elif variant == "Step":
                stack = stacks[thread]
                last_step = Step(index, self.paths[payload["path_id"]], payload["line"], thread,
                                 stack[-1].function if stack else None)
                self.steps.append(last_step)
            elif variant == "Value":
                assert last_step is not None, "Value before any Step at event %d" % index
                last_step.values[self.names[payload["variable_id"]]] = self.decode(payload["value"])
            elif variant == "Call":
                fn = self.functions[payload["function_id"]]
                stack = stacks[thread]
                args = {self.names[a["variable_id"]]: self.decode(a["value"]) for a in payload["args"]}
                call = Call(index, fn["name"], self.paths[fn["path_id"]], fn["line"], thread, args,
                            len(stack), stack[-1] if stack else None)
                if last_step is not None and last_step.index == index - 1:
                    last_step.is_entry = True
                    last_step.function = fn["name"]
                if stack:
                    stack[-1].children.append(call)
                stack.append(call)
                self.calls.append(call)
            elif variant == "Return":
                call = stacks[thread].pop()
                call.returned = self.decode(payload["return_value"])
                call.closed = True
            elif variant == "Event":
                record = dict(payload, step=last_step)
                (self.errors if payload["kind"] == 11 else self.io).append(record)
            else:
                raise AssertionError("unexpected variant %s" % variant)
        self.open_at_end = {t: [c.function for c in s] for t, s in stacks.items() if s}

    # -- queries -------------------------------------------------------------------------

    def calls_of(self, name: str) -> list[Call]:
        return [c for c in self.calls if c.function == name]

    def steps_in(self, function: str) -> list[Step]:
        return [s for s in self.steps if s.function == function and not s.is_entry]

    def lines_of(self, function: str) -> list[int]:
        return [s.line for s in self.steps_in(function)]

    def values_at(self, function: str, line: int) -> list[dict]:
        return [s.values for s in self.steps if s.function == function and s.line == line]

    @property
    def toplevel(self) -> Call:
        return self.calls[0]

    def step_sequence(self) -> list[tuple[str, int]]:
        return [(s.function, s.line) for s in self.steps if not s.is_entry]
