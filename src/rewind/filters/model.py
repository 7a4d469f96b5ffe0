"""The validated, compiled form of a filter file (what schema.py produces, chain.py consumes)."""
from __future__ import annotations

import functools
from typing import TYPE_CHECKING, NamedTuple

from .selectors import Selector

if TYPE_CHECKING:  # pathlib costs 5 ms at start, and recording needs no Path
    from pathlib import Path

EXEC_DIRECTIVES = ("trace", "skip", "inherit")
VALUE_ACTIONS = ("allow", "redact", "drop")
VALUE_DIRECTIVES = VALUE_ACTIONS + ("inherit",)
VALUE_ALIASES = {"deny": "redact"}
IO_STREAMS = ("stdout", "stderr", "stdin")


class ValuePattern(NamedTuple):
    selector: Selector
    action: str  # allow | redact | drop
    reason: str | None
    index: int  # position in its rule's value_patterns


class ScopeRule(NamedTuple):
    selector: Selector
    exec: str | None  # trace | skip; None when unset or "inherit" (leaves the decision as it is)
    value_default: str | None  # allow | redact | drop; None when unset or "inherit"
    reason: str | None
    value_patterns: tuple[ValuePattern, ...]
    index: int  # position in its file's scope.rules (generated rules count too)
    generated: bool = False  # computed for this interpreter (builtin-default's sysconfig paths)


class IoSettings(NamedTuple):
    capture: bool
    streams: tuple[str, ...]

    def as_dict(self) -> dict:
        return {"capture": self.capture, "streams": list(self.streams)}


class FilterFile(NamedTuple):
    name: str
    version: int
    path: str  # absolute path, or "<inline:NAME>" for the builtin filters
    sha256: str  # of the exact bytes read
    root: Path | None  # what file: selectors are relative to; None: absolute paths (builtins)
    default_exec: str  # trace | skip | inherit
    default_value_action: str  # allow | redact | drop | inherit
    rules: tuple[ScopeRule, ...]
    io: IoSettings | None = None
    description: str | None = None
    labels: tuple[str, ...] = ()
    builtin: bool = False
    source: str = ""  # the TOML text, for positions

    def __repr__(self) -> str:  # without the source text
        return f"FilterFile(name={self.name!r}, path={self.path!r}, rules={len(self.rules)})"

    def provenance(self) -> dict:
        return {"name": self.name, "version": self.version, "path": self.path, "sha256": self.sha256}

    def position(self, key: str) -> tuple[int, int] | None:
        """(line, column) in the source of a key path such as `scope.rules[3]`. The
        locator is built on first use: loading a chain does not pay for it."""
        return _locator(self.source).find(key)

    def line(self, key: str) -> int | None:
        position = self.position(key)
        return position[0] if position else None


@functools.lru_cache(maxsize=64)
def _locator(source: str):
    from .schema import KeyLocator

    return KeyLocator(source)
