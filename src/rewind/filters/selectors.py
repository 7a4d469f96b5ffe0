"""Selector grammar: `<kind>:[<match>:]<pattern>`, parsed and compiled once.

The text is split at its first two colons only, so `obj:regex:a:b` has the pattern
`a:b`, while a glob containing ':' must name its match type (`file:glob:c:/x`).
"""
from __future__ import annotations

import re
from collections.abc import Callable

from .. import errors
from .globmatch import GlobSyntaxError, compile_glob, translate_glob

__all__ = [
    "MATCH_TYPES",
    "SCOPE_KINDS",
    "VALUE_KINDS",
    "Selector",
    "parse_selector",
]

SCOPE_KINDS = ("pkg", "file", "obj")
VALUE_KINDS = ("local", "global", "arg", "ret", "attr")
MATCH_TYPES = ("glob", "regex", "literal")

ERR_INVALID_FILTER = "ERR_INVALID_FILTER"


class Selector:
    """A parsed selector. `matches(subject)` is truthy when the subject is selected.

    Subjects: `pkg` the module name, `file` the path relative to the filter's root
    (POSIX separators), `obj` and `ret` `module.qualname`, other value kinds the name.
    `matches` is the compiled test itself (a bound regex method or a str comparison),
    so a call costs no extra indirection.
    """

    __slots__ = ("kind", "match_type", "matches", "pattern", "text")

    def __init__(self, text: str, kind: str, match_type: str, pattern: str, test: Callable[[str], object]):
        self.text = text
        self.kind = kind
        self.match_type = match_type
        self.pattern = pattern
        self.matches = test

    def __repr__(self) -> str:
        return f"Selector({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Selector) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


def _invalid(message: str, text: object) -> errors.UsageError:
    return errors.usage(ERR_INVALID_FILTER, message, selector=text)


def parse_selector(text: object, allowed_kinds: tuple[str, ...] = SCOPE_KINDS + VALUE_KINDS) -> Selector:
    """Parse and compile a selector; raise UsageError ERR_INVALID_FILTER when malformed.

    `allowed_kinds` is the context: SCOPE_KINDS for `scope.rules[].selector`,
    VALUE_KINDS for `value_patterns[].selector`.
    """
    if not isinstance(text, str):
        raise _invalid(f"a selector must be a string, got {type(text).__name__}", text)
    if not text:
        raise _invalid("empty selector; expected <kind>:[<match>:]<pattern>", text)
    parts = text.split(":", 2)
    if len(parts) == 1:
        raise _invalid(
            f"selector {text!r} has no kind; expected <kind>:[<match>:]<pattern> "
            f"with kind one of {', '.join(allowed_kinds)}",
            text,
        )
    kind = parts[0]
    if not kind:
        raise _invalid(f"selector {text!r} has an empty kind; expected one of {', '.join(allowed_kinds)}", text)
    if kind not in allowed_kinds:
        if kind in SCOPE_KINDS + VALUE_KINDS:
            context = "a scope rule" if kind in VALUE_KINDS else "a value pattern"
            raise _invalid(
                f"selector kind {kind!r} cannot be used in {context}; allowed here: "
                f"{', '.join(allowed_kinds)}",
                text,
            )
        raise _invalid(f"unknown selector kind {kind!r}; allowed here: {', '.join(allowed_kinds)}", text)
    if len(parts) == 2:
        match_type, pattern = "glob", parts[1]
    else:
        match_type, pattern = parts[1], parts[2]
        if not match_type:
            raise _invalid(
                f"selector {text!r} has an empty match type; expected one of {', '.join(MATCH_TYPES)}", text
            )
        if match_type not in MATCH_TYPES:
            raise _invalid(
                f"unknown match type {match_type!r} in selector {text!r}; expected one of "
                f"{', '.join(MATCH_TYPES)} (a pattern containing ':' needs an explicit match type, "
                f"e.g. {kind}:glob:{match_type}:{pattern})",
                text,
            )
    if not pattern:
        raise _invalid(f"selector {text!r} has an empty pattern", text)
    return Selector(text, kind, match_type, pattern, _compile(kind, match_type, pattern, text))


_WILDCARDS = frozenset("*?[{\\")


def _plain(text: str) -> bool:
    return not _WILDCARDS.intersection(text)


def _compile(kind: str, match_type: str, pattern: str, text: str) -> Callable[[str], object]:
    if match_type == "regex":
        try:
            return re.compile(pattern).search
        except (re.error, RecursionError, OverflowError, ValueError) as exc:
            raise _invalid(f"invalid regex in selector {text!r}: {exc}", text) from None
    if kind == "file":
        # Relative paths never start with './', so 'file:./src/*.py' means 'src/*.py'.
        while pattern.startswith("./"):
            pattern = pattern[2:]
        if not pattern:
            raise _invalid(f"selector {text!r} has an empty path pattern", text)
    if match_type == "literal" or _plain(pattern):
        return pattern.__eq__
    if kind == "file":
        return _compile_glob(pattern, "/", text)
    # Dotted names have no separator: the common shapes need no regex at all.
    if pattern.endswith(".*") and _plain(pattern[:-2]):
        package, prefix = pattern[:-2], pattern[:-1]
        # `pkg:my_app.*` means the package my_app and everything in it, so the package
        # itself (its __init__) is selected too.
        if kind == "pkg":
            return lambda subject: subject == package or subject.startswith(prefix)
        return lambda subject: subject.startswith(prefix)
    if pattern.endswith("*") and _plain(pattern[:-1]):
        return lambda subject, prefix=pattern[:-1]: subject.startswith(prefix)
    if pattern.startswith("*") and _plain(pattern[1:]):
        return lambda subject, suffix=pattern[1:]: subject.endswith(suffix)
    if kind == "pkg" and pattern.endswith((".*", ".**")):
        prefix = pattern[: pattern.rindex(".")]
        if prefix and not prefix.endswith("\\"):
            try:
                whole = translate_glob(pattern)
                package = translate_glob(prefix)
            except GlobSyntaxError as exc:
                raise _invalid(f"invalid glob in selector {text!r}: {exc}", text) from None
            return re.compile(f"{package}|{whole}", re.DOTALL).fullmatch
    return _compile_glob(pattern, None, text)


def _compile_glob(pattern: str, separator: str | None, text: str) -> Callable[[str], object]:
    try:
        return compile_glob(pattern, separator).fullmatch
    except GlobSyntaxError as exc:
        raise _invalid(f"invalid glob in selector {text!r}: {exc}", text) from None
    except RecursionError:
        raise _invalid(f"glob nests too deeply in selector {text!r}", text) from None
