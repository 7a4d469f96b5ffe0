"""The filter chain: which files apply, in which order, and what they decide.

Order (contract section 3): builtin-default; builtin-pytest / builtin-unittest in
framework mode; the project filter (nearest `.codetracer/trace-filter.toml` from the
script's directory upwards); `CODETRACER_TRACE_FILTER` entries; explicit specs. Each
spec may chain files with `::`.

Decisions (per code object, computed once by the recorder):
  exec / value_default: the chain's defaults, then every matching rule in chain order
  overwrites what it sets (last match wins);
  a value: the value patterns of the matching rules, latest matching rule first and top
  to bottom within a rule; the first pattern of the value's kind that matches decides,
  else value_default. So an earlier rule's redaction (builtin-default's secrets) holds
  unless a later rule names the value explicitly.
"""
from __future__ import annotations

import functools
import os
import re
import sysconfig
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Union

from .. import errors
from .builtin.parsed import BUILTINS
from .model import FilterFile, ScopeRule, ValuePattern
from .schema import ERR_INVALID_FILTER, FILTER_DIR, FILTER_FILENAME, compile_document, load_filter_file
from .selectors import VALUE_KINDS, Selector, parse_selector

if TYPE_CHECKING:  # pathlib costs 5 ms at start, and recording needs no Path
    from pathlib import Path

__all__ = [
    "BUILTIN_FILTERS",
    "ENV_TRACE_FILTER",
    "FilterChain",
    "ScopeDecision",
    "build_chain",
    "compose",
    "discover_project_filter",
    "load_builtin",
    "split_specs",
]

ENV_TRACE_FILTER = "CODETRACER_TRACE_FILTER"
SPEC_SEPARATOR = "::"
BUILTIN_FILTERS = {
    "builtin-default": "default.toml",
    "builtin-pytest": "pytest.toml",
    "builtin-unittest": "unittest.toml",
}
FRAMEWORK_FILTERS = {"pytest": "builtin-pytest", "unittest": "builtin-unittest"}

Spec = Union[str, "os.PathLike[str]"]


# ---------------------------------------------------------------------------------------
# Builtin filters


@functools.cache
def load_builtin(name: str) -> FilterFile:
    """A packaged builtin filter by name (`builtin-default`, ...), parsed once per process."""
    try:
        resource = BUILTIN_FILTERS[name]
    except KeyError:
        raise errors.usage(errors.ERR_INVALID_ARGUMENT, f"unknown builtin filter {name!r}",
                           name=name, known=", ".join(BUILTIN_FILTERS)) from None
    # Parsed ahead of time from the .toml files (builtin/regenerate.py): no TOML parser and
    # no hashing at start.
    sha256, text, document = BUILTINS[resource]
    builtin = compile_document(document, text=text, sha256=sha256, label=f"<inline:{name}>", root=None,
                               builtin=True)
    if name == "builtin-default":
        builtin = _with_host_rules(builtin)
    return builtin


def _posix(path: str) -> str:
    return path.replace(os.sep, "/") if os.sep != "/" else path


def _host_rules(first_index: int) -> list[ScopeRule]:
    """Rules only this interpreter can know: its sysconfig stdlib directories (which
    need not look like lib/pythonX.Y/, e.g. on Windows or in unusual layouts; a venv
    reports its base interpreter's) and the directory rewind itself is installed in."""
    stdlib_dirs: list[str] = []
    paths = sysconfig.get_paths()
    for key in ("stdlib", "platstdlib"):
        directory = paths.get(key)
        if directory:
            for variant in (os.path.abspath(directory), os.path.realpath(directory)):
                if variant not in stdlib_dirs:
                    stdlib_dirs.append(variant)
    own_dirs = [os.path.dirname(os.path.dirname(os.path.realpath(__file__)))]

    rules = []
    for directory in stdlib_dirs:
        selector = "file:regex:^" + re.escape(_posix(directory).rstrip("/")) + "/(?!(?:site|dist)-packages/)"
        rules.append((selector, "standard library (this interpreter's sysconfig stdlib directory)"))
    for directory in own_dirs:
        rules.append(("file:regex:^" + re.escape(_posix(directory).rstrip("/")) + "/", "rewind itself"))
    return [
        ScopeRule(
            selector=parse_selector(text),
            exec="skip",
            value_default=None,
            reason=reason,
            value_patterns=(),
            index=first_index + i,
            generated=True,
        )
        for i, (text, reason) in enumerate(rules)
    ]


def _with_host_rules(builtin: FilterFile) -> FilterFile:
    return builtin._replace(rules=builtin.rules + tuple(_host_rules(len(builtin.rules))))


# ---------------------------------------------------------------------------------------
# Composition


def split_specs(specs: Spec | Iterable[Spec] | None) -> list[str]:
    """Flatten filter specs (a str/path or a sequence of them, each maybe `a::b`) into
    file names, left to right. Empty entries (`a::`, an empty variable) are ignored."""
    if specs is None:
        return []
    if isinstance(specs, (str, os.PathLike)):
        specs = [specs]
    entries: list[str] = []
    for spec in specs:
        if not isinstance(spec, (str, os.PathLike)):
            raise errors.usage(
                ERR_INVALID_FILTER,
                f"a trace filter spec must be a path or string, got {type(spec).__name__}",
                spec=repr(spec),
            )
        entries.extend(part for part in os.fspath(spec).split(SPEC_SEPARATOR) if part.strip())
    return entries


def discover_project_filter(start: str | os.PathLike) -> Path | None:
    """The nearest `.codetracer/trace-filter.toml` in `start` or one of its parents."""
    directory = os.path.abspath(start)
    while True:
        candidate = os.path.join(directory, FILTER_DIR, FILTER_FILENAME)
        if os.path.isfile(candidate):
            from pathlib import Path
            return Path(candidate)
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent


def build_chain(
    specs: Spec | Iterable[Spec] | None = (),
    *,
    script_dir: str | os.PathLike | None = None,
    framework: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> FilterChain:
    """Load, validate and compose the chain a recording uses. Raises UsageError
    (ERR_INVALID_FILTER, ERR_FILTER_NOT_FOUND) before anything runs."""
    environ = os.environ if environ is None else environ
    files = [load_builtin("builtin-default")]
    if framework:
        if framework not in FRAMEWORK_FILTERS:
            raise errors.usage(
                "ERR_INVALID_POLICY_VALUE",
                f"unknown test framework {framework!r}; expected one of {', '.join(FRAMEWORK_FILTERS)}",
                framework=framework,
            )
        files.append(load_builtin(FRAMEWORK_FILTERS[framework]))
    if script_dir is not None:
        project_filter = discover_project_filter(script_dir)
        if project_filter is not None:
            files.append(load_filter_file(project_filter, origin="project"))
    for entry in split_specs(environ.get(ENV_TRACE_FILTER) or None):
        files.append(load_filter_file(entry, origin=ENV_TRACE_FILTER))
    for entry in split_specs(specs):
        files.append(load_filter_file(entry, origin="trace_filter"))
    return FilterChain(files)


def compose(files: Sequence[FilterFile]) -> FilterChain:
    """A chain of exactly these files (no builtins added): for tools and tests."""
    return FilterChain(files)


# ---------------------------------------------------------------------------------------
# Decisions


class ScopeDecision:
    """What to record for one code object.

    `trace`: record it at all. `value_action(kind, name)`: "allow" | "redact" | "drop"
    for a value of kind local/global/arg/ret/attr; cached per (kind, name) here, and
    decisions are shared between code objects that matched the same rules, so the
    recorder gets the caching for free.
    """

    __slots__ = ("_cache", "_patterns", "_ret_action", "trace", "value_default")

    def __init__(
        self,
        trace: bool,
        value_default: str,
        patterns: Mapping[str, tuple[tuple[Selector, str], ...]],
        ret_action: str,
    ):
        self.trace = trace
        self.value_default = value_default
        self._patterns = patterns
        self._ret_action = ret_action
        self._cache: dict[tuple[str, str], str] = {}

    def value_action(self, kind: str, name: str) -> str:
        """The action for the value `name` of `kind`. For `ret`, return patterns match
        the code object's `module.qualname` (fixed per decision), so `name` is ignored."""
        key = (kind, name)
        try:
            return self._cache[key]
        except KeyError:
            pass
        if kind == "ret":
            action = self._ret_action
        else:
            try:
                patterns = self._patterns[kind]
            except KeyError:
                raise errors.usage(errors.ERR_INVALID_ARGUMENT, f"unknown value kind {kind!r}",
                                   kind=kind, allowed=", ".join(VALUE_KINDS)) from None
            action = self.value_default
            for selector, pattern_action in patterns:
                if selector.matches(name):
                    action = pattern_action
                    break
        self._cache[key] = action
        return action

    def __repr__(self) -> str:
        return f"ScopeDecision(trace={self.trace}, value_default={self.value_default!r})"


def is_synthetic_filename(filename: str | None) -> bool:
    """`<string>`, `<frozen os>`, `<stdin>`...: code with no file behind it."""
    return not filename or (filename.startswith("<") and filename.endswith(">"))


class FilterChain:
    """A composed, validated chain of filter files. Build with `build_chain`."""

    def __init__(self, files: Sequence[FilterFile]):
        self.files: tuple[FilterFile, ...] = tuple(files)
        self.default_exec, self.default_exec_source = self._resolve_default("default_exec")
        self.default_value_action, self.default_value_source = self._resolve_default("default_value_action")
        # Flattened rules in chain order: (file index, rule).
        self.rules: tuple[tuple[int, ScopeRule], ...] = tuple(
            (file_index, rule) for file_index, file in enumerate(self.files) for rule in file.rules
        )
        io_files = [file.io for file in self.files if file.io is not None]
        self.io: dict | None = io_files[-1].as_dict() if io_files else None
        self._relative_paths: dict[str, tuple[str | None, ...]] = {}
        self._shared: dict[tuple, ScopeDecision] = {}
        self._roots = [self._root_prefix(file) for file in self.files]

    def _resolve_default(self, attribute: str) -> tuple[str, int]:
        value, source = None, -1
        for index, file in enumerate(self.files):
            own = getattr(file, attribute)
            if own != "inherit":
                value, source = own, index
            elif value is None:
                key = f"scope.{attribute}"
                context: dict[str, object] = {"file": file.path}
                position = file.position(key)
                if position:
                    context["line"], context["column"] = position
                context["key"] = key
                raise errors.usage(
                    ERR_INVALID_FILTER,
                    f'{key} = "inherit" but no filter comes before this one in the chain; '
                    "set it explicitly (%s)"
                    % ("trace or skip" if attribute == "default_exec" else "allow, redact or drop"),
                    **context,
                )
        if value is None:
            raise errors.usage(errors.ERR_INVALID_ARGUMENT, "a filter chain needs at least one filter")
        return value, source

    @staticmethod
    def _root_prefix(file: FilterFile) -> tuple[str, str] | None:
        if file.root is None:
            return None
        root = os.path.normcase(os.path.abspath(file.root))
        real = os.path.normcase(os.path.realpath(file.root))
        return tuple(r if r.endswith(os.sep) else r + os.sep for r in (root, real))

    # -- what each rule kind is matched against ---------------------------------------

    def relative_paths(self, filename: str | None) -> tuple[str | None, ...]:
        """Per file of the chain: `filename` as its `file:` selectors see it (relative to
        its root, POSIX; absolute for builtins), or None when outside its root."""
        if is_synthetic_filename(filename):
            return (None,) * len(self.files)
        cached = self._relative_paths.get(filename)
        if cached is not None:
            return cached
        absolute = os.path.abspath(filename)
        candidates = (os.path.normcase(absolute), os.path.normcase(os.path.realpath(absolute)))
        result = []
        for prefixes in self._roots:
            if prefixes is None:
                result.append(_posix(absolute))
                continue
            relative = None
            for candidate in candidates:
                for prefix in prefixes:
                    if candidate.startswith(prefix):
                        relative = _posix(candidate[len(prefix):])
                        break
                if relative is not None:
                    break
            result.append(relative)
        paths = tuple(result)
        self._relative_paths[filename] = paths
        return paths

    def matching_rules(self, module: str | None, qualname: str, filename: str | None):
        """Yield (file index, rule) for every rule that selects this code object."""
        if not isinstance(module, str) or not module:
            module = None  # frames without a usable __name__: pkg selectors cannot match
        paths = self.relative_paths(filename)
        obj = f"{module}.{qualname}" if module else qualname
        for file_index, rule in self.rules:
            kind = rule.selector.kind
            if kind == "pkg":
                subject = module
            elif kind == "obj":
                subject = obj
            else:
                subject = paths[file_index]
            if subject is not None and rule.selector.matches(subject):
                yield file_index, rule

    # -- the recorder's entry point -------------------------------------------------------

    def decide(self, *, module: str | None, qualname: str, filename: str | None) -> ScopeDecision:
        """The decision for one code object: `module` is its frame's `__name__`,
        `qualname` its `co_qualname`, `filename` its `co_filename`."""
        exec_ = self.default_exec
        value_default = self.default_value_action
        with_patterns: list[ScopeRule] = []
        for _, rule in self.matching_rules(module, qualname, filename):
            if rule.exec is not None:
                exec_ = rule.exec
            if rule.value_default is not None:
                value_default = rule.value_default
            if rule.value_patterns:
                with_patterns.append(rule)
        trace = exec_ == "trace" and not is_synthetic_filename(filename)
        with_patterns.reverse()  # latest matching rule first
        obj = f"{module}.{qualname}" if isinstance(module, str) and module else qualname
        ret_action = value_default
        for rule in with_patterns:
            pattern = _first_match(rule.value_patterns, "ret", obj)
            if pattern is not None:
                ret_action = pattern.action
                break
        key = (trace, value_default, ret_action, tuple(id(rule) for rule in with_patterns))
        decision = self._shared.get(key)
        if decision is None:
            patterns = {
                kind: tuple(
                    (pattern.selector, pattern.action)
                    for rule in with_patterns
                    for pattern in rule.value_patterns
                    if pattern.selector.kind == kind
                )
                for kind in VALUE_KINDS
                if kind != "ret"
            }
            decision = ScopeDecision(trace, value_default, patterns, ret_action)
            self._shared[key] = decision
        return decision

    def provenance(self) -> list[dict]:
        """[{name, version, path, sha256}] in chain order, for trace_metadata.json."""
        return [file.provenance() for file in self.files]

    def __repr__(self) -> str:
        return f"FilterChain({', '.join(file.name for file in self.files)})"


def _first_match(patterns: Iterable[ValuePattern], kind: str, subject: str) -> ValuePattern | None:
    for pattern in patterns:
        if pattern.selector.kind == kind and pattern.selector.matches(subject):
            return pattern
    return None

