"""`rewind filter explain`: which rule of which file decides, and what it overrode.

`explain(chain, target, value)` returns plain data (JSON-ready); `format_explanation`
renders it for a terminal. The decision logic is the chain's own (`matching_rules`), so
the explanation cannot drift from what recording does.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .. import errors
from .chain import FilterChain, is_synthetic_filename
from .model import FilterFile, ScopeRule
from .schema import ERR_INVALID_FILTER
from .selectors import VALUE_KINDS

__all__ = ["Target", "explain", "format_explanation", "resolve_target"]


@dataclass
class Target:
    text: str
    module: str | None
    qualname: str
    filename: str | None
    notes: list[str] = field(default_factory=list)

    @property
    def object(self) -> str:
        return f"{self.module}.{self.qualname}" if self.module else self.qualname


# ---------------------------------------------------------------------------------------
# TARGET -> (module, qualname, filename)


def _looks_like_path(text: str) -> bool:
    return "/" in text or os.sep in text or text.endswith((".py", ".pyw")) or os.path.isfile(text)


def find_module_file(module: str, search_path: Sequence[str]) -> str | None:
    """The source file of a dotted module name, looked up on disk (never imported)."""
    parts = module.split(".")
    if not all(part.isidentifier() for part in parts):
        return None
    for directory in search_path:
        base = Path(directory or ".", *parts)
        for candidate in (base.with_name(base.name + ".py"), base / "__init__.py"):
            if candidate.is_file():
                return os.path.abspath(candidate)
    return None


def module_for_file(filename: str) -> str:
    """The dotted name a file is imported as, following `__init__.py` packages upwards."""
    path = Path(filename)
    parts = [] if path.stem == "__init__" else [path.stem]
    directory = path.parent
    while (directory / "__init__.py").is_file() and directory.name.isidentifier():
        parts.insert(0, directory.name)
        if directory.parent == directory:
            break
        directory = directory.parent
    return ".".join(parts) or path.stem


def resolve_target(target: str, search_path: Sequence[str] | None = None) -> Target:
    """A module name, a file path (optionally `FILE.py:QUALNAME`), `module.qualname`, or an
    explicit `module:qualname`."""
    if search_path is None:
        search_path = [os.getcwd(), *sys.path]
    text = target.strip()
    if not text:
        raise errors.usage(ERR_INVALID_FILTER, "empty explain target; give a module, a file or module.qualname")
    path_part, _, qual_part = text.rpartition(":")
    if path_part.endswith((".py", ".pyw")) and qual_part:
        target_obj = resolve_target(path_part, search_path)
        target_obj.text, target_obj.qualname = text, qual_part
        return target_obj
    if _looks_like_path(text):
        filename = os.path.abspath(text)
        module = module_for_file(filename)
        notes = [(f"module name {module!r} derived from the file's package directories "
                  "(a script run directly is '__main__')")]
        if not os.path.isfile(filename):
            notes.append("the file does not exist; only its path was matched")
        return Target(text, module, "<module>", filename, notes)
    if ":" in text:
        module, _, qualname = text.partition(":")
        return Target(text, module, qualname or "<module>", find_module_file(module, search_path),
                      _not_found_note(module, search_path))
    parts = text.split(".")
    for cut in range(len(parts), 0, -1):
        module = ".".join(parts[:cut])
        filename = find_module_file(module, search_path)
        if filename:
            qualname = ".".join(parts[cut:]) or "<module>"
            return Target(text, module, qualname, filename)
    if len(parts) == 1:
        return Target(text, text, "<module>", None, [f"module {text!r} not found on disk; file: rules not evaluated"])
    module, qualname = ".".join(parts[:-1]), parts[-1]
    return Target(
        text, module, qualname, None,
        [(f"{text!r} not found on disk: taken as module {module!r}, qualname {qualname!r} "
          "(write MODULE:QUALNAME to choose); file: rules not evaluated")],
    )


def _not_found_note(module: str, search_path: Sequence[str]) -> list[str]:
    if find_module_file(module, search_path):
        return []
    return [f"module {module!r} not found on disk; file: rules not evaluated"]


# ---------------------------------------------------------------------------------------
# The explanation


def _source(chain: FilterChain, file_index: int) -> dict:
    file: FilterFile = chain.files[file_index]
    return {"filter": file.name, "filter_index": file_index, "path": file.path}


def _rule_line(chain: FilterChain, file_index: int, rule: ScopeRule) -> int | None:
    return None if rule.generated else chain.files[file_index].line(f"scope.rules[{rule.index}]")


def _rule_step(chain: FilterChain, file_index: int, rule: ScopeRule, setting: str, value: str) -> dict:
    step = _source(chain, file_index)
    step.update(
        rule=rule.index,
        line=_rule_line(chain, file_index, rule),
        key=f"scope.rules[{rule.index}].{setting}",
        selector=rule.selector.text,
        value=value,
        reason=rule.reason,
        generated=rule.generated,
    )
    return step


def _default_step(chain: FilterChain, setting: str) -> dict:
    file_index = chain.default_exec_source if setting == "default_exec" else chain.default_value_source
    value = chain.default_exec if setting == "default_exec" else chain.default_value_action
    step = _source(chain, file_index)
    step.update(rule=None, line=chain.files[file_index].line(f"scope.{setting}"), key=f"scope.{setting}",
                selector=None, value=value,
                reason="the chain's default", generated=False)
    return step


def explain(chain: FilterChain, target: str | Target, value: str | None = None,
            *, search_path: Sequence[str] | None = None) -> dict:
    """Explain the decision for TARGET (and the value `kind:name`, if given)."""
    if not isinstance(target, Target):
        target = resolve_target(target, search_path)
    matched = list(chain.matching_rules(target.module, target.qualname, target.filename))

    exec_steps = [_default_step(chain, "default_exec")]
    value_steps = [_default_step(chain, "default_value_action")]
    for file_index, rule in matched:
        if rule.exec is not None:
            exec_steps.append(_rule_step(chain, file_index, rule, "exec", rule.exec))
        if rule.value_default is not None:
            value_steps.append(_rule_step(chain, file_index, rule, "value_default", rule.value_default))
    exec_decision = {"decision": exec_steps[-1]["value"], "decided_by": exec_steps[-1],
                     "overridden": exec_steps[:-1][::-1]}
    if is_synthetic_filename(target.filename) and target.filename:
        exec_decision = {
            "decision": "skip",
            "decided_by": {"filter": None, "reason": f"synthetic filename {target.filename!r} is never recorded"},
            "overridden": exec_steps[::-1],
        }
    paths = chain.relative_paths(target.filename)
    result = {
        "target": {
            "input": target.text,
            "module": target.module,
            "qualname": target.qualname,
            "object": target.object,
            "file": target.filename,
            "notes": list(target.notes),
        },
        "chain": [
            {**file.provenance(), "index": i, "root": None if file.root is None else str(file.root),
             "file_as_seen": paths[i]}
            for i, file in enumerate(chain.files)
        ],
        "matched_rules": [
            {**_source(chain, i), "rule": rule.index, "line": _rule_line(chain, i, rule),
             "selector": rule.selector.text,
             "reason": rule.reason}
            for i, rule in matched
        ],
        "exec": exec_decision,
        "value_default": {"decision": value_steps[-1]["value"], "decided_by": value_steps[-1],
                          "overridden": value_steps[:-1][::-1]},
        "value": None,
    }
    if value is not None:
        result["value"] = _explain_value(chain, matched, target, value, value_steps[-1])
    return result


def parse_value_spec(value: str) -> tuple[str, str]:
    kind, sep, name = value.partition(":")
    if kind not in VALUE_KINDS or (not sep and kind != "ret") or (sep and not name and kind != "ret"):
        raise errors.usage(
            ERR_INVALID_FILTER,
            f"bad value {value!r}; expected KIND:NAME with KIND one of {', '.join(VALUE_KINDS)} "
            "(e.g. arg:password; 'ret' alone for the return value)",
            value=value,
        )
    return kind, name


def _explain_value(chain: FilterChain, matched, target: Target, value: str, default_step: dict) -> dict:
    kind, name = parse_value_spec(value)
    subject = target.object if kind == "ret" else name
    hits = []
    # Consultation order: latest matching rule first, then top to bottom.
    for file_index, rule in reversed(matched):
        for pattern in rule.value_patterns:
            if pattern.selector.kind == kind and pattern.selector.matches(subject):
                step = _source(chain, file_index)
                step.update(
                    rule=rule.index,
                    pattern=pattern.index,
                    line=chain.files[file_index].line(
                        f"scope.rules[{rule.index}].value_patterns[{pattern.index}]"),
                    key=f"scope.rules[{rule.index}].value_patterns[{pattern.index}]",
                    selector=pattern.selector.text,
                    value=pattern.action,
                    reason=pattern.reason,
                )
                hits.append(step)
    decided_by = hits[0] if hits else {**default_step, "reason": "no value pattern matched; value_default decides"}
    action = decided_by["value"]
    return {
        "kind": kind,
        "name": name,
        "subject": subject,
        "action": action,
        "decided_by": decided_by,
        "overridden": hits[1:] + ([default_step] if hits else []),
    }


# ---------------------------------------------------------------------------------------
# Text


def _short(text: str | None, limit: int = 100) -> str:
    if text is None:
        return ""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _describe(step: dict) -> str:
    if step.get("filter") is None:
        return step.get("reason", "")
    where = f"{step['filter']}"
    if step.get("rule") is None:
        where += f" {step['key']} = \"{step['value']}\""
    else:
        where += f" rule {step['rule']}"
        if step.get("pattern") is not None:
            where += f" pattern {step['pattern']}"
        if step.get("line"):
            where += f" (line {step['line']})"
        if step.get("generated"):
            where += " (generated)"
        where += f": {_short(step['selector'])} -> {step['value']}"
    if step.get("reason") and step.get("rule") is not None:
        where += f"  # {step['reason']}"
    return where


def format_explanation(result: dict) -> str:
    target = result["target"]
    lines = [f"target:  {target['input']}", f"  module:   {target['module']}",
             f"  qualname: {target['qualname']}", f"  file:     {target['file'] or '(unknown)'}"]
    lines += [f"  note: {note}" for note in target["notes"]]
    lines.append("chain:")
    for entry in result["chain"]:
        seen = f"  (file seen as {entry['file_as_seen']})" if entry["file_as_seen"] and entry["root"] else ""
        lines.append(f"  [{entry['index']}] {entry['name']}  {entry['path']}{seen}")

    def section(title: str, block: dict, decision: str) -> None:
        lines.append(f"{title}: {decision}")
        lines.append(f"  decided by: {_describe(block['decided_by'])}")
        for step in block["overridden"]:
            lines.append(f"  overrides:  {_describe(step)}")

    section("exec", result["exec"], result["exec"]["decision"])
    section("value_default", result["value_default"], result["value_default"]["decision"])
    value = result["value"]
    if value is not None:
        label = f"{value['kind']}:{value['name']}" if value["kind"] != "ret" else f"ret of {value['subject']}"
        section(f"value {label}", value, value["action"])
    return "\n".join(lines)
