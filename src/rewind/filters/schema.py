"""Load a filter file: TOML -> validated, compiled FilterFile, or a precise UsageError.

Every problem is `ERR_INVALID_FILTER` with context `file`, `line`, `column` (where known)
and `key` (a path such as `scope.rules[3].value_patterns[0].selector`, 0-based), and a
message saying what is wrong and what would be valid. Syntax errors take their position
from the TOML parser; schema errors from KeyLocator, which maps key paths back to the
source lines that define them. A missing file is `ERR_FILTER_NOT_FOUND`.
"""
from __future__ import annotations

import datetime
import os
import re
import sys
from typing import TYPE_CHECKING, NoReturn

from .. import errors
from .model import (
    EXEC_DIRECTIVES,
    IO_STREAMS,
    VALUE_ACTIONS,
    VALUE_ALIASES,
    VALUE_DIRECTIVES,
    FilterFile,
    IoSettings,
    ScopeRule,
    ValuePattern,
)
from .selectors import SCOPE_KINDS, VALUE_KINDS, Selector, parse_selector

if TYPE_CHECKING:  # pathlib costs 5 ms at start; only user filter files need it (imported there)
    from pathlib import Path

__all__ = [
    "ERR_FILTER_NOT_FOUND",
    "ERR_INVALID_FILTER",
    "FILTER_DIR",
    "FILTER_FILENAME",
    "KeyLocator",
    "load_filter_file",
    "parse_filter",
    "project_root_for",
]

ERR_INVALID_FILTER = "ERR_INVALID_FILTER"
ERR_FILTER_NOT_FOUND = "ERR_FILTER_NOT_FOUND"
FILTER_DIR = ".codetracer"
FILTER_FILENAME = "trace-filter.toml"

_ALLOWED_KEYS = {
    "": ("meta", "io", "scope"),
    "meta": ("name", "version", "description", "labels"),
    "io": ("capture", "streams"),
    "scope": ("default_exec", "default_value_action", "rules"),
    "rule": ("selector", "exec", "value_default", "reason", "value_patterns"),
    "pattern": ("selector", "action", "reason"),
}
SUPPORTED_VERSIONS = (1,)


def project_root_for(path: Path) -> Path:
    """The directory `file:` selectors are relative to: the parent of the `.codetracer`
    directory holding the file, else the file's own directory."""
    parent = path.parent
    return parent.parent if parent.name == FILTER_DIR else parent


def load_filter_file(path: str | os.PathLike, *, origin: str | None = None) -> FilterFile:
    """Read, validate and compile one filter file (a user file: `file:` patterns are
    relative to its project root). `origin` (e.g. "CODETRACER_TRACE_FILTER") is only
    used to say where a missing path came from."""
    from pathlib import Path

    given = Path(os.path.expanduser(os.fspath(path)))
    absolute = Path(os.path.abspath(given))
    if not absolute.is_file():
        reason = "is a directory, not a filter file" if absolute.is_dir() else "does not exist"
        context: dict[str, object] = {"file": absolute}
        if origin:
            context["origin"] = origin
        raise errors.usage(ERR_FILTER_NOT_FOUND, f"trace filter {os.fspath(path)!r} {reason}", **context)
    try:
        data = absolute.read_bytes()
    except OSError as exc:
        raise errors.usage(
            ERR_FILTER_NOT_FOUND, f"cannot read trace filter {os.fspath(path)!r}: {exc.strerror or exc}",
            file=absolute,
        ) from None
    resolved = absolute.resolve()
    return parse_filter(data, label=str(resolved), root=project_root_for(resolved))


def parse_filter(data: bytes | str, *, label: str, root: Path | None, builtin: bool = False) -> FilterFile:
    """Validate and compile filter text. `label` names the file in errors and provenance;
    `root` is what `file:` patterns are relative to (None: absolute paths, for builtins)."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    sha256 = sha256_of(raw)
    text = _decode(raw, label)
    return compile_document(read_toml(text, label), text=text, sha256=sha256, label=label, root=root,
                            builtin=builtin)


def sha256_of(raw: bytes) -> str:
    """The hex SHA-256 of a filter file's bytes, its provenance in the trace metadata."""
    import hashlib  # here, not at start: the builtin filters' digests are precomputed (builtin/parsed.py)

    return hashlib.sha256(raw).hexdigest()


def read_toml(text: str, label: str) -> dict:
    """The TOML document of a filter file, or ERR_INVALID_FILTER at the position of the syntax error."""
    tomllib = _tomllib()
    if tomllib is None:  # pragma: no cover - Python 3.10 without tomli
        raise errors.environment(errors.ERR_MISSING_EXTRA, "reading filter files needs the 'tomli' package "
                                 "on Python 3.10", install="pip install tomli", file=label)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _syntax_error(exc, text, label) from None


def compile_document(document: dict, *, text: str, sha256: str, label: str, root: Path | None,
                     builtin: bool = False) -> FilterFile:
    """Validate and compile a filter file's parsed TOML document (`text` is its source)."""
    return _Validator(text, label, root, builtin).filter_file(document, sha256)


def _tomllib():
    # Imported on first use, not at start (tomllib costs 2.5 ms of it): a recording that reads
    # only the builtin filters never parses TOML (builtin/parsed.py).
    if sys.version_info >= (3, 11):
        import tomllib
        return tomllib
    try:  # pragma: no cover - exercised on 3.10 only
        import tomli
        return tomli
    except ImportError:  # a source checkout without the declared dependency: fail when used
        return None


def _decode(raw: bytes, label: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise errors.usage(
            ERR_INVALID_FILTER, f"filter is not valid UTF-8 text (byte {raw[exc.start]:#04x})",
            file=label, line=line, column=column,
        ) from None


_TOML_POSITION = re.compile(r"\s*\(at (?:line (\d+), column (\d+)|end of document)\)\s*$")


def _syntax_error(exc: Exception, text: str, label: str) -> errors.UsageError:
    message = str(exc)
    found = _TOML_POSITION.search(message)
    line = getattr(exc, "lineno", None)
    column = getattr(exc, "colno", None)
    if found:
        message = message[: found.start()]
        if line is None and found.group(1):
            line, column = int(found.group(1)), int(found.group(2))
        elif line is None:
            # "at end of document": point just past the last character.
            lines = text.split("\n")
            line, column = len(lines), len(lines[-1]) + 1
    context: dict[str, object] = {"file": label}
    if line is not None:
        context["line"] = line
        context["column"] = column
    return errors.usage(ERR_INVALID_FILTER, f"invalid TOML: {message}", **context)


# ---------------------------------------------------------------------------------------
# Key paths -> source positions

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+\Z")


def key_part(name: str) -> str:
    """How one key appears in a key path: bare if TOML allows, else quoted."""
    if _BARE_KEY.match(name):
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _join(base: str, part: str) -> str:
    return f"{base}.{part}" if base else part


class KeyLocator:
    """Maps key paths (`scope.rules[3].selector`) to the (line, column) defining them.

    A line scanner, not a parser: it runs only on text tomllib already accepted, follows
    table and array-of-tables headers (counting `[[scope.rules]]` to know the index),
    key/value lines (dotted keys too) and inline arrays of inline tables, and skips the
    inside of multi-line strings and arrays. Unknown paths fall back to their parent.
    """

    def __init__(self, text: str):
        self.positions: dict[str, tuple[int, int]] = {}
        self._array_counts: dict[str, int] = {}
        self._scan(text)

    def find(self, key_path: str) -> tuple[int, int] | None:
        path = key_path
        while path:
            if path in self.positions:
                return self.positions[path]
            path = _parent_path(path)
        return None

    def _resolve(self, parts: list[str]) -> str:
        path = ""
        for part in parts:
            path = _join(path, key_part(part))
            if path in self._array_counts:  # into the latest element of an array of tables
                path = f"{path}[{self._array_counts[path] - 1}]"
        return path

    def _scan(self, text: str) -> None:
        table = ""
        scanner = _ValueScanner(self.positions)
        for lineno, line in enumerate(text.split("\n"), 1):
            if scanner.busy:
                scanner.feed(line, lineno, 0)
                continue
            stripped = line.lstrip()
            column = len(line) - len(stripped) + 1
            if not stripped or stripped.startswith("#"):
                continue
            if stripped.startswith("[["):
                parts = _split_key(stripped[2:], "]]")
                array = _join(self._resolve(parts[:-1]), key_part(parts[-1]))
                index = self._array_counts.get(array, 0)
                self._array_counts[array] = index + 1
                table = f"{array}[{index}]"
                self.positions.setdefault(array, (lineno, column))
                self.positions.setdefault(table, (lineno, column))
            elif stripped.startswith("["):
                table = self._resolve(_split_key(stripped[1:], "]"))
                self.positions.setdefault(table, (lineno, column))
            else:
                parts, rest = _split_assignment(stripped)
                if parts is None:
                    continue
                path = table
                for part in parts:
                    path = _join(path, key_part(part))
                self.positions.setdefault(path, (lineno, column))
                scanner.start(path, line, lineno, len(line) - len(rest))


def _parent_path(path: str) -> str:
    if path.endswith("]"):
        return path[: path.rindex("[")]
    # Strip the last dotted part, minding quoted parts.
    in_quote = False
    for i in range(len(path) - 1, -1, -1):
        ch = path[i]
        if ch == '"' and (i == 0 or path[i - 1] != "\\"):
            in_quote = not in_quote
        elif ch == "." and not in_quote:
            return path[:i]
    return ""


_SIMPLE_KEY = re.compile(r"\s*([A-Za-z0-9_-]+(?:\s*\.\s*[A-Za-z0-9_-]+)*)\s*(?:\]\]|\]|=)")


def _split_key(text: str, terminator: str) -> list[str]:
    """Split a (possibly dotted, possibly quoted) key up to `terminator` or '='."""
    simple = _SIMPLE_KEY.match(text)
    if simple:  # the common case: bare keys only
        return [part.strip() for part in simple.group(1).split(".")]
    parts: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in "\"'":
            end = i + 1
            while end < len(text) and text[end] != ch:
                end += 2 if (ch == '"' and text[end] == "\\") else 1
            value = text[i + 1 : end]
            current.append(value.encode("utf-8").decode("unicode_escape") if ch == '"' and "\\" in value else value)
            i = end + 1
            continue
        if text.startswith(terminator, i):
            break
        if ch == ".":
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current).strip())
    return parts


def _split_assignment(stripped: str) -> tuple[list[str] | None, str]:
    """`a.b = value` -> (["a", "b"], "value")."""
    simple = _SIMPLE_KEY.match(stripped)
    if simple and stripped[simple.end() - 1] == "=":
        return [part.strip() for part in simple.group(1).split(".")], stripped[simple.end():]
    in_quote = None
    for i, ch in enumerate(stripped):
        if in_quote:
            if ch == in_quote:
                in_quote = None
        elif ch in "\"'":
            in_quote = ch
        elif ch == "=":
            return _split_key(stripped[:i], "="), stripped[i + 1 :]
    return None, ""


class _ValueScanner:
    """Follows a value across lines: multi-line strings and arrays. Records where each
    inline table of an inline array starts (`key[2]`)."""

    def __init__(self, positions: dict[str, tuple[int, int]]):
        self.positions = positions
        self.multiline: str | None = None  # the closing delimiter while inside """ or '''
        self.depth = 0
        self.key = ""
        self.elements = 0
        self.array_value = False

    @property
    def busy(self) -> bool:
        return self.multiline is not None or self.depth > 0

    def start(self, key: str, line: str, lineno: int, offset: int) -> None:
        value = line[offset:]
        if not any(opener in value for opener in ("[", "{", '"""', "'''")):
            return  # a scalar or one-line string: nothing can continue on the next line
        self.key, self.elements = key, 0
        self.array_value = value.lstrip().startswith("[")
        self.feed(line, lineno, offset)

    def feed(self, line: str, lineno: int, i: int) -> None:
        n = len(line)
        while i < n:
            if self.multiline:
                end = line.find(self.multiline, i)
                if end < 0:
                    return
                i = end + 3
                self.multiline = None
                continue
            ch = line[i]
            if ch == "#":
                return
            if line.startswith('"""', i) or line.startswith("'''", i):
                self.multiline = line[i : i + 3]
                i += 3
            elif ch == '"':
                i += 1
                while i < n and line[i] != '"':
                    i += 2 if line[i] == "\\" else 1
                i += 1
            elif ch == "'":
                end = line.find("'", i + 1)
                i = n if end < 0 else end + 1
            elif ch in "[{":
                self.depth += 1
                if ch == "{" and self.depth == 2 and self.array_value:
                    self.positions.setdefault(f"{self.key}[{self.elements}]", (lineno, i + 1))
                    self.elements += 1
                i += 1
            elif ch in "]}":
                self.depth = max(0, self.depth - 1)
                i += 1
            else:
                i += 1


# ---------------------------------------------------------------------------------------
# Validation


def _toml_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "table"
    if isinstance(value, datetime.datetime):
        return "datetime"
    if isinstance(value, datetime.date):
        return "date"
    if isinstance(value, datetime.time):
        return "time"
    return type(value).__name__


def _choices(options: tuple[str, ...]) -> str:
    return ", ".join(f'"{o}"' for o in options)


class _Validator:
    def __init__(self, text: str, label: str, root: Path | None, builtin: bool):
        self.text = text
        self.label = label
        self.root = root
        self.builtin = builtin

    def fail(self, key: str, message: str) -> NoReturn:
        context: dict[str, object] = {"file": self.label}
        # Only an error needs source positions, so valid files never pay for the scan.
        position = KeyLocator(self.text).find(key)
        if position:
            context["line"], context["column"] = position
        context["key"] = key
        raise errors.usage(ERR_INVALID_FILTER, message, **context)

    # -- generic checks ------------------------------------------------------------------

    def table(self, value: object, key: str, what: str) -> dict:
        if not isinstance(value, dict):
            self.fail(key, f"{key} must be a table ({what}), got {_toml_type(value)}")
        return value

    def only_keys(self, table: dict, key: str, kind: str) -> None:
        allowed = _ALLOWED_KEYS[kind]
        for name in table:
            if name not in allowed:
                where = f"in [{key}]" if key else "at the top level"
                self.fail(
                    _join(key, key_part(name)),
                    f"unknown key {name!r} {where}; allowed keys: {', '.join(allowed)}",
                )

    def string(self, value: object, key: str, *, non_empty: bool = False) -> str:
        if not isinstance(value, str):
            self.fail(key, f"{key} must be a string, got {_toml_type(value)}")
        if non_empty and not value.strip():
            self.fail(key, f"{key} must be a non-empty string")
        return value

    def choice(self, value: object, key: str, options: tuple[str, ...], aliases: dict | None = None) -> str:
        if not isinstance(value, str):
            self.fail(key, f"{key} must be a string, one of {_choices(options)}; got {_toml_type(value)}")
        if aliases and value in aliases:
            return aliases[value]
        if value not in options:
            alias_note = ""
            if aliases:
                alias_note = " (" + ", ".join(f'"{a}" means "{t}"' for a, t in aliases.items()) + ")"
            self.fail(key, f"{key} = {value!r} is not valid; expected one of {_choices(options)}{alias_note}")
        return value

    def array_of_tables(self, value: object, key: str, what: str) -> list[dict]:
        if not isinstance(value, list):
            self.fail(key, f"{key} must be an array of tables ({what}), got {_toml_type(value)}")
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                self.fail(f"{key}[{i}]", f"{key}[{i}] must be a table ({what}), got {_toml_type(item)}")
        return value

    def required(self, table: dict, name: str, key: str, what: str) -> object:
        if name not in table:
            self.fail(_join(key, name), f"missing required key {_join(key, name)} ({what})")
        return table[name]

    # -- sections -------------------------------------------------------------------------

    def filter_file(self, document: dict, sha256: str) -> FilterFile:
        self.only_keys(document, "", "")
        if "meta" not in document:
            self.fail("meta", "missing required table [meta] (with name and version)")
        if "scope" not in document:
            self.fail("scope", "missing required table [scope] (with default_exec and default_value_action)")
        meta = self.table(document["meta"], "meta", "name, version, description, labels")
        self.only_keys(meta, "meta", "meta")
        name = self.string(self.required(meta, "name", "meta", "a non-empty string"), "meta.name", non_empty=True)
        version = self.version(self.required(meta, "version", "meta", "the integer 1"))
        description = None
        if "description" in meta:
            description = self.string(meta["description"], "meta.description")
        labels: tuple[str, ...] = ()
        if "labels" in meta:
            labels = self.labels(meta["labels"])
        io = self.io(document["io"]) if "io" in document else None
        scope = self.table(document["scope"], "scope", "default_exec, default_value_action, rules")
        self.only_keys(scope, "scope", "scope")
        default_exec = self.choice(
            self.required(scope, "default_exec", "scope", f"one of {_choices(EXEC_DIRECTIVES)}"),
            "scope.default_exec", EXEC_DIRECTIVES,
        )
        default_value_action = self.choice(
            self.required(scope, "default_value_action", "scope", f"one of {_choices(VALUE_DIRECTIVES)}"),
            "scope.default_value_action", VALUE_DIRECTIVES, VALUE_ALIASES,
        )
        rules: tuple[ScopeRule, ...] = ()
        if "rules" in scope:
            rule_tables = self.array_of_tables(scope["rules"], "scope.rules", "[[scope.rules]] entries")
            rules = tuple(self.rule(table, i) for i, table in enumerate(rule_tables))
        return FilterFile(
            name=name,
            version=version,
            path=self.label,
            sha256=sha256,
            root=self.root,
            default_exec=default_exec,
            default_value_action=default_value_action,
            rules=rules,
            io=io,
            description=description,
            labels=labels,
            builtin=self.builtin,
            source=self.text,
        )

    def version(self, value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail("meta.version", f"meta.version must be an integer (1), got {_toml_type(value)}")
        if value not in SUPPORTED_VERSIONS:
            supported = ", ".join(str(v) for v in SUPPORTED_VERSIONS)
            self.fail("meta.version", f"unsupported filter version {value}; supported: {supported}")
        return value

    def labels(self, value: object) -> tuple[str, ...]:
        if not isinstance(value, list):
            self.fail("meta.labels", f"meta.labels must be an array of strings, got {_toml_type(value)}")
        for i, label in enumerate(value):
            self.string(label, f"meta.labels[{i}]")
        return tuple(value)

    def io(self, value: object) -> IoSettings | None:
        io = self.table(value, "io", "capture, streams")
        self.only_keys(io, "io", "io")
        capture = io.get("capture")
        if capture is not None and not isinstance(capture, bool):
            self.fail("io.capture", f"io.capture must be a boolean (true or false), got {_toml_type(capture)}")
        streams: list[str] = []
        if "streams" in io:
            if capture is not True:
                self.fail("io.streams", "io.streams only applies with capture = true; add capture = true or remove it")
            if not isinstance(io["streams"], list):
                self.fail("io.streams", f"io.streams must be an array of strings, got {_toml_type(io['streams'])}")
            for i, stream in enumerate(io["streams"]):
                stream = self.choice(stream, f"io.streams[{i}]", IO_STREAMS)
                if stream not in streams:
                    streams.append(stream)
        if capture is True and not streams:
            self.fail(
                "io.capture",
                f"io.capture = true requires io.streams listing at least one of {_choices(IO_STREAMS)}",
            )
        if capture is None:
            return None  # an [io] table that changes nothing
        return IoSettings(capture=capture, streams=tuple(streams))

    def selector(self, value: object, key: str, allowed_kinds: tuple[str, ...]) -> Selector:
        if not isinstance(value, str):
            self.fail(key, f"{key} must be a string like \"<kind>:[<match>:]<pattern>\", got {_toml_type(value)}")
        try:
            selector = parse_selector(value, allowed_kinds)
        except errors.UsageError as exc:
            self.fail(key, exc.message)
        if selector.kind == "file" and not self.builtin:
            problem = file_pattern_escape(selector)
            if problem:
                self.fail(key, f"file selector {value!r} {problem}; file patterns are relative to the "
                               f"filter's project root ({self.root})")
        return selector

    def rule(self, table: dict, index: int) -> ScopeRule:
        key = f"scope.rules[{index}]"
        self.only_keys(table, key, "rule")
        selector = self.selector(
            self.required(table, "selector", key, "a scope selector such as \"pkg:my_app.*\""),
            f"{key}.selector", SCOPE_KINDS,
        )
        exec_ = None
        if "exec" in table:
            exec_ = self.choice(table["exec"], f"{key}.exec", EXEC_DIRECTIVES)
        value_default = None
        if "value_default" in table:
            value_default = self.choice(table["value_default"], f"{key}.value_default", VALUE_DIRECTIVES, VALUE_ALIASES)
        reason = self.string(table["reason"], f"{key}.reason") if "reason" in table else None
        patterns: tuple[ValuePattern, ...] = ()
        if "value_patterns" in table:
            pattern_key = f"{key}.value_patterns"
            tables = self.array_of_tables(table["value_patterns"], pattern_key,
                                          "[[scope.rules.value_patterns]] entries")
            patterns = tuple(self.value_pattern(t, f"{pattern_key}[{i}]", i) for i, t in enumerate(tables))
        return ScopeRule(
            selector=selector,
            exec=None if exec_ == "inherit" else exec_,
            value_default=None if value_default == "inherit" else value_default,
            reason=reason,
            value_patterns=patterns,
            index=index,
        )

    def value_pattern(self, table: dict, key: str, index: int) -> ValuePattern:
        self.only_keys(table, key, "pattern")
        selector = self.selector(
            self.required(table, "selector", key, "a value selector such as \"local:password\""),
            f"{key}.selector", VALUE_KINDS,
        )
        action = self.choice(
            self.required(table, "action", key, f"one of {_choices(VALUE_ACTIONS)}"),
            f"{key}.action", VALUE_ACTIONS, VALUE_ALIASES,
        )
        reason = self.string(table["reason"], f"{key}.reason") if "reason" in table else None
        return ValuePattern(selector, action, reason, index)


_DRIVE = re.compile(r"[A-Za-z]:")


def file_pattern_escape(selector: Selector) -> str | None:
    """Why a `file:` pattern would reach outside the project root, or None if it cannot."""
    pattern = selector.pattern
    if selector.match_type == "regex":
        if re.match(r"\^(/|\\\.\\\./)", pattern):
            return "is anchored outside the project root"
        return None
    if pattern.startswith(("/", "\\")) or _DRIVE.match(pattern):
        return "is an absolute path"
    segments = re.split(r"[/{},]", pattern) if selector.match_type == "glob" else pattern.split("/")
    if any(segment == ".." for segment in segments):
        return "uses '..' to leave the project root"
    return None
