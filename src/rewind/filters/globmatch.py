"""Glob patterns for filter selectors, translated to regular expressions once.

Syntax (the same for every selector kind):

    *        any run of characters, except that in path mode it stops at '/'
    **       any run of characters including '/'; a whole '**/' component
             (at the start or after '/') also matches zero directories
    ?        one character ('/' excluded in path mode)
    [abc]    one character from the set; ranges 'a-z'; '[!...]' or '[^...]' negates;
             a ']' right after the opening bracket is literal ('/' never matches in path mode)
    {a,b}    alternatives, which may nest and contain wildcards
    \\x       the character x literally

Path mode (separator='/') is used for `file:` selectors. Dotted names (`pkg:`, `obj:`,
value names) have no separator, so there `*` and `**` both match across dots.
The translated pattern is meant for `fullmatch` with re.DOTALL (compile_glob does both).
"""
from __future__ import annotations

import functools
import re

from .. import errors

__all__ = ["GlobSyntaxError", "compile_glob", "translate_glob"]


class GlobSyntaxError(ValueError):
    """A glob pattern that cannot be translated; the message says what and where."""


def compile_glob(pattern: str, separator: str | None = None) -> re.Pattern[str]:
    """Compile a glob to a regex (use its `fullmatch`); cached: identical globs compile once."""
    return _compile_cached(pattern, separator)


@functools.lru_cache(maxsize=4096)
def _compile_cached(pattern: str, separator: str | None) -> re.Pattern[str]:
    return re.compile(translate_glob(pattern, separator), re.DOTALL)


def translate_glob(pattern: str, separator: str | None = None) -> str:
    """Translate a glob to regex source for `fullmatch` with re.DOTALL; raise
    GlobSyntaxError if malformed. (No inline flag group: those make re.compile slower.)"""
    if separator is not None and len(separator) != 1:
        raise errors.usage(errors.ERR_INVALID_ARGUMENT, "a glob separator must be a single character or None",
                           separator=repr(separator))
    return _Translator(pattern, separator).sequence(inside_braces=False)


class _Translator:
    """Recursive descent over the pattern: a sequence, where '{' opens alternatives."""

    def __init__(self, pattern: str, separator: str | None):
        self.pattern = pattern
        self.sep = separator
        self.pos = 0
        if separator is None:
            self.any_run = ".*"
            self.any_char = "."
        else:
            not_sep = "[^" + re.escape(separator) + "]"
            self.any_run = not_sep + "*"
            self.any_char = not_sep

    def fail(self, message: str, at: int) -> GlobSyntaxError:
        return GlobSyntaxError(f"{message} at position {at} of glob {self.pattern!r}")

    def sequence(self, inside_braces: bool) -> str:
        pattern, out = self.pattern, []
        while self.pos < len(pattern):
            ch = pattern[self.pos]
            if inside_braces and ch in ",}":
                break
            if ch == "*":
                out.append(self.star())
            elif ch == "?":
                out.append(self.any_char)
                self.pos += 1
            elif ch == "[":
                out.append(self.char_class())
            elif ch == "{":
                out.append(self.alternatives())
            elif ch == "\\":
                if self.pos + 1 >= len(pattern):
                    raise self.fail("lone '\\' at the end (escape a character or write [\\\\])", self.pos)
                out.append(re.escape(pattern[self.pos + 1]))
                self.pos += 2
            else:
                # '}' and ',' outside braces are ordinary characters.
                out.append(re.escape(ch))
                self.pos += 1
        return "".join(out)

    def star(self) -> str:
        pattern, start = self.pattern, self.pos
        while self.pos < len(pattern) and pattern[self.pos] == "*":
            self.pos += 1
        if self.pos - start == 1:
            return self.any_run
        if self.sep is None:
            return ".*"
        at_component_start = start == 0 or pattern[start - 1] == self.sep
        if at_component_start and pattern.startswith(self.sep, self.pos):
            # '**/' is zero or more whole directories.
            self.pos += 1
            return "(?:.*" + re.escape(self.sep) + ")?"
        return ".*"

    def char_class(self) -> str:
        pattern, opening = self.pattern, self.pos
        i = opening + 1
        negate = i < len(pattern) and pattern[i] in "!^"
        if negate:
            i += 1
        items: list[str] = []
        first = True
        while True:
            if i >= len(pattern):
                raise self.fail("unclosed '['", opening)
            ch = pattern[i]
            if ch == "]" and not first:
                i += 1
                break
            if ch == "\\":
                if i + 1 >= len(pattern):
                    raise self.fail("unclosed '['", opening)
                ch = pattern[i + 1]
                i += 2
            else:
                i += 1
            first = False
            # A range 'a-z' (a '-' before the closing ']' is literal).
            if i + 1 < len(pattern) and pattern[i] == "-" and pattern[i + 1] != "]":
                end = pattern[i + 1]
                if end == "\\":
                    if i + 2 >= len(pattern):
                        raise self.fail("unclosed '['", opening)
                    end = pattern[i + 2]
                    i += 1
                i += 2
                if ord(end) < ord(ch):
                    raise self.fail(f"reversed range '{ch}-{end}' in character class", opening)
                items.append(_class_char(ch) + "-" + _class_char(end))
            else:
                items.append(_class_char(ch))
        self.pos = i
        body = "".join(items)
        if self.sep is None:
            return f"[^{body}]" if negate else f"[{body}]"
        sep = re.escape(self.sep)
        return f"[^{body}{sep}]" if negate else f"(?!{sep})[{body}]"

    def alternatives(self) -> str:
        opening = self.pos
        self.pos += 1
        branches = []
        while True:
            branches.append(self.sequence(inside_braces=True))
            if self.pos >= len(self.pattern):
                raise self.fail("unclosed '{'", opening)
            closer = self.pattern[self.pos]
            self.pos += 1
            if closer == "}":
                return "(?:" + "|".join(branches) + ")"


def _class_char(ch: str) -> str:
    # Inside a regex class only these need escaping.
    return "\\" + ch if ch in "\\]^-[" else ch
