"""Glob semantics, checked by examples and against two independent references:
fnmatch for dotted names (no separator) and a small recursive matcher for paths."""
from __future__ import annotations

import fnmatch
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewind.filters.globmatch import GlobSyntaxError, compile_glob, translate_glob


def path_match(pattern: str, subject: str) -> bool:
    return compile_glob(pattern, "/").fullmatch(subject) is not None


def name_match(pattern: str, subject: str) -> bool:
    return compile_glob(pattern, None).fullmatch(subject) is not None


@pytest.mark.parametrize(
    "pattern, subject, expected",
    [
        ("*.py", "a.py", True),
        ("*.py", "src/a.py", False),  # '*' does not cross '/'
        ("src/?.py", "src/a.py", True),
        ("src/?.py", "src/ab.py", False),
        ("src?a.py", "src/a.py", False),  # '?' does not match '/'
        ("**/*.py", "a.py", True),  # '**/' matches zero directories
        ("**/*.py", "a/b/c.py", True),
        ("src/**/test_*.py", "src/test_a.py", True),
        ("src/**/test_*.py", "src/x/y/test_a.py", True),
        ("src/**/test_*.py", "other/src/test_a.py", False),
        ("src/**", "src/a/b.py", True),
        ("src/**", "srcx/a.py", False),
        ("**", "any/thing/at/all.py", True),
        ("a**b", "a/x/b", True),  # '**' not a whole component still spans '/'
        ("a**/b", "ab", False),  # ... but then has no zero-directory form
        ("[ab].py", "a.py", True),
        ("[ab].py", "c.py", False),
        ("[!ab].py", "c.py", True),
        ("[!ab].py", "a.py", False),
        ("[^ab].py", "c.py", True),
        ("x[/]y", "x/y", False),  # a class never matches the separator
        ("x[!a]y", "x/y", False),
        ("[a-c]", "b", True),
        ("[a-c]", "d", False),
        ("[]]", "]", True),
        ("[]a]", "a", True),
        ("[a-]", "-", True),
        ("{src,lib}/*.py", "lib/a.py", True),
        ("{src,lib}/*.py", "doc/a.py", False),
        ("{a,b{c,d}}", "bd", True),
        ("{a,}x", "x", True),
        ("{*.py,*.pyi}", "m.pyi", True),
        ("a\\*b", "a*b", True),
        ("a\\*b", "axb", False),
        ("a}b,c", "a}b,c", True),  # unopened '}' and ',' are ordinary
        ("+(x)$^.", "+(x)$^.", True),  # regex characters are literal
    ],
)
def test_path_examples(pattern, subject, expected):
    assert path_match(pattern, subject) is expected


@pytest.mark.parametrize(
    "pattern, subject, expected",
    [
        ("my_app.*", "my_app.core.db", True),  # no separator: '*' crosses dots
        ("my_app.*", "my_app", False),  # (the pkg: selector adds the package itself)
        ("*.test_*", "pkg.sub.test_x", True),
        ("a?c", "a.c", True),
        ("*", "", True),
    ],
)
def test_name_examples(pattern, subject, expected):
    assert name_match(pattern, subject) is expected


@pytest.mark.parametrize("pattern", ["[ab", "{a,b", "a{b", "[z-a]", "a\\", "[a\\"])
def test_malformed(pattern):
    with pytest.raises(GlobSyntaxError):
        translate_glob(pattern, "/")


def test_compiled_once():
    assert compile_glob("src/**/*.py", "/") is compile_glob("src/**/*.py", "/")


# ---------------------------------------------------------------------------------------
# Reference 1: fnmatch, for dotted names (no separator): '*', '?', '[...]', literals.

_NAME_CHARS = "ab._"


@st.composite
def fnmatch_patterns(draw):
    parts = []
    for _ in range(draw(st.integers(0, 6))):
        choice = draw(st.integers(0, 4))
        if choice == 0:
            parts.append("*")
        elif choice == 1:
            parts.append("?")
        elif choice == 2:
            chars = draw(st.text(alphabet=_NAME_CHARS, min_size=1, max_size=3))
            negate = draw(st.booleans())
            parts.append("[" + ("!" if negate else "") + chars + "]")
        else:
            parts.append(draw(st.text(alphabet=_NAME_CHARS, min_size=1, max_size=3)))
    return "".join(parts)


@settings(max_examples=500, deadline=None)
@given(fnmatch_patterns(), st.text(alphabet=_NAME_CHARS + "/", max_size=8))
def test_names_agree_with_fnmatch(pattern, subject):
    assert name_match(pattern, subject) == fnmatch.fnmatchcase(subject, pattern), (pattern, subject)


# ---------------------------------------------------------------------------------------
# Reference 2: a backtracking matcher for paths, written from the documented semantics
# (tokens and continuations, no regular expressions).


def _class_end(pattern: str, start: int) -> int:
    i = start + 1
    if pattern[i] in "!^":
        i += 1
    i += 1  # a ']' here would be literal; generated classes never start with one
    while pattern[i] != "]":
        i += 1
    return i


def _in_class(body: str, ch: str) -> bool:
    negate = body[:1] in ("!", "^")
    chars = body[1:] if negate else body
    found = any(
        (chars[i + 1 : i + 2] == "-" and i + 2 < len(chars) and chars[i] <= ch <= chars[i + 2]) or chars[i] == ch
        for i in range(len(chars))
    )
    return found != negate


def _tokenize(pattern: str, i: int = 0, in_braces: bool = False):
    tokens = []
    while i < len(pattern):
        ch = pattern[i]
        if in_braces and ch in ",}":
            break
        if ch == "*":
            j = i
            while j < len(pattern) and pattern[j] == "*":
                j += 1
            if j - i == 1:
                tokens.append(("star",))
            elif (i == 0 or pattern[i - 1] == "/") and pattern[j : j + 1] == "/":
                tokens.append(("dirs",))  # '**/': zero or more whole directories
                j += 1
            else:
                tokens.append(("anything",))
            i = j
        elif ch == "?":
            tokens.append(("one",))
            i += 1
        elif ch == "[":
            end = _class_end(pattern, i)
            tokens.append(("class", pattern[i + 1 : end]))
            i = end + 1
        elif ch == "{":
            options = []
            i += 1
            while True:
                option, i = _tokenize(pattern, i, True)
                options.append(option)
                closer = pattern[i]
                i += 1
                if closer == "}":
                    break
            tokens.append(("alt", options))
        else:
            tokens.append(("lit", ch))
            i += 1
    return tokens, i


def _match(tokens, subject: str, then) -> bool:
    if not tokens:
        return then(subject)
    token, rest = tokens[0], tokens[1:]

    def follow(remaining: str) -> bool:
        return _match(rest, remaining, then)

    kind = token[0]
    if kind == "lit":
        return subject[:1] == token[1] and follow(subject[1:])
    if kind == "one":
        return subject[:1] not in ("", "/") and follow(subject[1:])
    if kind == "class":
        return subject[:1] not in ("", "/") and _in_class(token[1], subject[0]) and follow(subject[1:])
    if kind == "star":
        return any(follow(subject[i:]) for i in range(len(subject) + 1) if "/" not in subject[:i])
    if kind == "anything":
        return any(follow(subject[i:]) for i in range(len(subject) + 1))
    if kind == "dirs":
        starts = [0] + [i + 1 for i, ch in enumerate(subject) if ch == "/"]
        return any(follow(subject[i:]) for i in starts)
    assert kind == "alt"
    return any(_match(option, subject, follow) for option in token[1])


def reference_match(pattern: str, subject: str) -> bool:
    tokens, _ = _tokenize(pattern)
    return _match(tokens, subject, lambda remaining: remaining == "")


_PATH_CHARS = "ab."


def _path_pattern(draw, depth: int) -> str:
    out = ""
    for _ in range(draw(st.integers(0, 6 - 2 * depth))):
        choice = draw(st.integers(0, 7))
        if choice == 0:
            out += "*"
        elif choice == 1:
            out += "**"
        elif choice == 2:
            out += "?"
        elif choice == 3:
            chars = draw(st.text(alphabet=_PATH_CHARS, min_size=1, max_size=2))
            if draw(st.booleans()):
                chars += "-c"
            out += "[" + draw(st.sampled_from(["", "!", "^"])) + chars + "]"
        elif choice == 4 and depth < 2:
            options = [_path_pattern(draw, depth + 1) for _ in range(draw(st.integers(1, 3)))]
            out += "{" + ",".join(options) + "}"
        elif choice == 5:
            out += "/"
        else:
            out += draw(st.text(alphabet=_PATH_CHARS, min_size=1, max_size=2))
    return out


@st.composite
def path_patterns(draw):
    return _path_pattern(draw, 0)


@settings(max_examples=800, deadline=None)
@given(path_patterns(), st.text(alphabet=_PATH_CHARS + "/c", max_size=9))
def test_paths_agree_with_reference(pattern, subject):
    assert path_match(pattern, subject) == reference_match(pattern, subject), (pattern, subject)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab*?[]{},!^-\\/.", max_size=14))
def test_translate_never_crashes(pattern):
    for separator in ("/", None):
        try:
            source = translate_glob(pattern, separator)
        except GlobSyntaxError:
            continue
        re.compile(source)  # whatever translates is a valid regex
