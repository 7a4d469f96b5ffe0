"""Selector grammar: <kind>:[<match>:]<pattern>, kinds per context, match types."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewind import errors
from rewind.filters import MATCH_TYPES, SCOPE_KINDS, VALUE_KINDS, parse_selector


@pytest.mark.parametrize(
    "text, kind, match_type, pattern",
    [
        ("pkg:my_app.*", "pkg", "glob", "my_app.*"),
        ("pkg:glob:my_app.*", "pkg", "glob", "my_app.*"),
        ("file:src/**/*.py", "file", "glob", "src/**/*.py"),
        ("obj:regex:^app\\.(a|b)$", "obj", "regex", "^app\\.(a|b)$"),
        ("local:literal:user", "local", "literal", "user"),
        # Split at the first two colons only: the rest belongs to the pattern.
        ("obj:regex:a:b:c", "obj", "regex", "a:b:c"),
        ("file:glob:c:/x", "file", "glob", "c:/x"),
        ("arg:literal::", "arg", "literal", ":"),
        ("ret:*.get_token", "ret", "glob", "*.get_token"),
        ("attr:_secret*", "attr", "glob", "_secret*"),
        ("global:CONFIG", "global", "glob", "CONFIG"),
    ],
)
def test_parse(text, kind, match_type, pattern):
    selector = parse_selector(text)
    assert (selector.kind, selector.match_type, selector.pattern, selector.text) == (kind, match_type, pattern, text)


def _error(text, kinds=SCOPE_KINDS + VALUE_KINDS) -> errors.UsageError:
    with pytest.raises(errors.UsageError) as info:
        parse_selector(text, kinds)
    assert info.value.code == "ERR_INVALID_FILTER"
    return info.value


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("", "empty selector"),
        ("pkg", "has no kind"),
        (":x", "empty kind"),
        ("pkg:", "empty pattern"),
        ("pkg::x", "empty match type"),
        ("pkg:glob:", "empty pattern"),
        ("file:./", "empty path pattern"),
        ("module:x", "unknown selector kind 'module'"),
        ("PKG:x", "unknown selector kind 'PKG'"),
        ("pkg:fuzzy:x", "unknown match type 'fuzzy'"),
        # A pattern with ':' needs an explicit match type: the error says how.
        ("file:c:/x.py", "file:glob:c:/x.py"),
        ("pkg:regex:(", "invalid regex"),
        ("pkg:regex:a{2,1}", "invalid regex"),
        ("pkg:[ab", "unclosed '['"),
        ("pkg:{a,b", "unclosed '{'"),
        ("pkg:[z-a]", "reversed range"),
        ("pkg:a\\", "lone '\\'"),
    ],
)
def test_malformed(text, fragment):
    assert fragment in _error(text).message


def test_kind_in_wrong_context():
    err = _error("local:x", SCOPE_KINDS)
    assert "cannot be used in a scope rule" in err.message and "pkg, file, obj" in err.message
    err = _error("pkg:x", VALUE_KINDS)
    assert "cannot be used in a value pattern" in err.message and "local, global, arg, ret, attr" in err.message


def test_non_string():
    assert "must be a string" in _error(3).message


def test_every_error_lists_what_is_allowed():
    assert all(m in _error("pkg:nope:x").message for m in MATCH_TYPES)
    assert all(k in _error("nope:x", SCOPE_KINDS).message for k in SCOPE_KINDS)


class TestMatching:
    def test_literal_is_exact(self):
        s = parse_selector("local:literal:user")
        assert s.matches("user") and not s.matches("username") and not s.matches("a_user")

    def test_literal_keeps_glob_characters(self):
        s = parse_selector("local:literal:a*b")
        assert s.matches("a*b") and not s.matches("axb")

    def test_regex_is_search(self):
        s = parse_selector("local:regex:tok")
        assert s.matches("my_token") and s.matches("tok") and not s.matches("tk")
        anchored = parse_selector("local:regex:^tok$")
        assert anchored.matches("tok") and not anchored.matches("my_tok")

    def test_glob_is_whole_match(self):
        s = parse_selector("local:tmp_*")
        assert s.matches("tmp_1") and s.matches("tmp_") and not s.matches("x_tmp_1")

    def test_pkg_star_crosses_dots(self):
        s = parse_selector("pkg:my_app.*")
        assert s.matches("my_app.core") and s.matches("my_app.core.db")

    def test_pkg_dot_star_includes_the_package_itself(self):
        for text in ("pkg:my_app.*", "pkg:my_app.**", "pkg:{my_app,other}.*", "pkg:my_?pp.*"):
            s = parse_selector(text)
            assert s.matches("my_app"), text
            assert s.matches("my_app.x.y"), text
            assert not s.matches("my_app_extra"), text
            assert not s.matches("my_apps.x"), text

    def test_obj_dot_star_does_not_include_the_prefix(self):
        s = parse_selector("obj:my_app.auth.*")
        assert s.matches("my_app.auth.login") and s.matches("my_app.auth.<module>")
        assert not s.matches("my_app.auth")

    def test_file_star_stops_at_slash(self):
        s = parse_selector("file:src/*.py")
        assert s.matches("src/a.py") and not s.matches("src/pkg/a.py")
        deep = parse_selector("file:src/**/*.py")
        assert deep.matches("src/a.py") and deep.matches("src/pkg/sub/a.py")

    def test_file_leading_dot_slash_is_ignored(self):
        s = parse_selector("file:./src/*.py")
        assert s.matches("src/a.py") and s.text == "file:./src/*.py"
        assert parse_selector("file:literal:./src/a.py").matches("src/a.py")

    def test_plain_fast_paths_agree_with_the_glob_engine(self):
        # Prefix/suffix/plain globs skip the regex; their answers must not change.
        from rewind.filters.globmatch import compile_glob

        subjects = ["a", "ab", "ab.c", "x.ab", "abab", "", "a.b.c", "b"]
        for pattern in ("ab*", "*ab", "ab", "ab.*", "*", "a.b.*"):
            for kind in ("obj", "local"):
                selector = parse_selector(f"{kind}:{pattern}")
                regex = compile_glob(pattern)
                for subject in subjects:
                    assert bool(selector.matches(subject)) == bool(regex.fullmatch(subject)), (pattern, subject)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from("pkgfileobjlocaargrtglobexliteral:*?[]{},\\.^$()|/-!a"), max_size=30))
def test_fuzz_parser_only_raises_usage_errors(text):
    for kinds in (SCOPE_KINDS, VALUE_KINDS):
        try:
            selector = parse_selector(text, kinds)
        except errors.UsageError as err:
            assert err.code == "ERR_INVALID_FILTER"
            continue
        # Whatever parses must be usable.
        for subject in ("", "a", "my_app.core", "src/a.py", text):
            selector.matches(subject)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_fuzz_parser_any_text(text):
    try:
        selector = parse_selector(text)
    except errors.UsageError:
        return
    selector.matches(text)
