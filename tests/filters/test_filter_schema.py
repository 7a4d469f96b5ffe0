"""Schema validation: every malformed filter is ERR_INVALID_FILTER naming the file, the
line (and column), the key path, what is wrong and what is allowed."""
from __future__ import annotations

import hashlib

import pytest

from rewind import errors, filters

RULE = """
[[scope.rules]]
selector = "{selector}"
"""


# -- TOML syntax: the parser's position ----------------------------------------------------


def test_syntax_error_has_parser_line_and_column(invalid):
    err = invalid('[meta]\nname = "x"\nversion = = 1\n', header=False)
    assert err.context["line"] == "3" and err.context["column"] == "11"
    assert err.message.startswith("invalid TOML: ")
    assert "(at line" not in err.message  # the position moved into the context
    assert "key" not in err.context


def test_syntax_error_at_end_of_document(invalid):
    err = invalid('[meta]\nname = "x"\nlabels = [', header=False)
    assert err.context["line"] == "3" and err.context["column"] == "11"


def test_duplicate_table_is_a_syntax_error(invalid):
    err = invalid('[meta]\nname = "a"\n[meta]\n', header=False)
    assert err.context["line"] == "3" and "invalid TOML" in err.message


def test_not_utf8(write_filter):
    path = write_filter()
    path.write_bytes(b'[meta]\nname = "caf\xe9"\n')
    with pytest.raises(errors.UsageError) as info:
        filters.load_filter_file(path)
    assert info.value.code == "ERR_INVALID_FILTER"
    assert info.value.context["line"] == "2" and info.value.context["column"] == "12"
    assert "UTF-8" in info.value.message


def test_str_has_code_message_and_location(invalid):
    err = invalid('[meta]\nname = "x"\nversion = 1\nbogus = 1\n[scope]\ndefault_exec="trace"\n'
                  'default_value_action="allow"\n', header=False)
    text = str(err)
    assert text.startswith("[ERR_INVALID_FILTER] unknown key 'bogus' in [meta]")
    assert "line=4" in text and "column=1" in text and "key=meta.bogus" in text and "file=" in text


# -- unknown keys ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, key, line_needle, allowed",
    [
        ("extra = 1\n", "scope.extra", "extra = 1", "default_exec, default_value_action, rules"),
        ("[io]\ncapture = false\nstream = []\n", "io.stream", "stream = []", "capture, streams"),
        (RULE.format(selector="pkg:a") + 'exec_ = "skip"\n', "scope.rules[0].exec_", "exec_", "value_default"),
        (
            RULE.format(selector="pkg:a") + '[[scope.rules.value_patterns]]\nselector = "local:x"\n'
            'action = "drop"\nwhy = "no"\n',
            "scope.rules[0].value_patterns[0].why", "why =", "selector, action, reason",
        ),
    ],
)
def test_unknown_keys(invalid, write_filter, line_of, body, key, line_needle, allowed):
    err = invalid(body)
    path = write_filter(body)
    assert err.context["key"] == key
    assert err.context["line"] == str(line_of(path, line_needle))
    assert "unknown key" in err.message and allowed in err.message


def test_unknown_key_in_scope_and_meta(invalid):
    err = invalid('[meta]\nname="x"\nversion=1\n[scope]\ndefault_exec="trace"\n'
                  'default_value_action="allow"\ndefault = "x"\n', header=False)
    assert err.context["key"] == "scope.default" and err.context["line"] == "7"
    assert "default_exec, default_value_action, rules" in err.message


def test_unknown_top_level_keys(invalid):
    err = invalid('extra = 1\n[meta]\nname = "x"\nversion = 1\n', header=False)
    assert err.context["key"] == "extra" and err.context["line"] == "1"
    assert "at the top level" in err.message and "meta, io, scope" in err.message
    err = invalid('"odd key" = 1\n[meta]\nname = "x"\n', header=False)
    assert err.context["key"] == '"odd key"' and err.context["line"] == "1"


# -- missing keys ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, key, line, fragment",
    [
        ('[scope]\ndefault_exec="trace"\ndefault_value_action="allow"\n', "meta", None, "[meta]"),
        ('[meta]\nname="x"\nversion=1\n', "scope", None, "[scope]"),
        ('[meta]\nversion=1\n[scope]\ndefault_exec="trace"\ndefault_value_action="allow"\n',
         "meta.name", "1", "missing required key meta.name"),
        ('[meta]\nname="x"\n[scope]\ndefault_exec="trace"\ndefault_value_action="allow"\n',
         "meta.version", "1", "missing required key meta.version"),
        ('[meta]\nname="x"\nversion=1\n[scope]\ndefault_value_action="allow"\n',
         "scope.default_exec", "4", '"trace", "skip", "inherit"'),
        ('[meta]\nname="x"\nversion=1\n[scope]\ndefault_exec="trace"\n',
         "scope.default_value_action", "4", '"allow", "redact", "drop", "inherit"'),
    ],
)
def test_missing(invalid, text, key, line, fragment):
    err = invalid(text, header=False)
    assert err.context["key"] == key
    assert err.context.get("line") == line
    assert fragment in err.message


def test_missing_rule_selector(invalid, write_filter, line_of):
    body = '[[scope.rules]]\nexec = "skip"\n'
    err = invalid(body)
    assert err.context["key"] == "scope.rules[0].selector"
    assert err.context["line"] == str(line_of(write_filter(body), "[[scope.rules]]"))
    assert "missing required key" in err.message


@pytest.mark.parametrize("missing, present", [("selector", 'action = "drop"'), ("action", 'selector = "local:x"')])
def test_missing_pattern_keys(invalid, missing, present):
    err = invalid(RULE.format(selector="pkg:a") + f"[[scope.rules.value_patterns]]\n{present}\n")
    assert err.context["key"] == f"scope.rules[0].value_patterns[0].{missing}"


# -- wrong types and values -----------------------------------------------------------------


@pytest.mark.parametrize(
    "text, key, fragment",
    [
        ('[meta]\nname = 3\nversion = 1\n', "meta.name", "must be a string, got integer"),
        ('[meta]\nname = "  "\nversion = 1\n', "meta.name", "non-empty"),
        ('[meta]\nname = "x"\nversion = "1"\n', "meta.version", "must be an integer (1), got string"),
        ('[meta]\nname = "x"\nversion = true\n', "meta.version", "got boolean"),
        ('[meta]\nname = "x"\nversion = 2\n', "meta.version", "unsupported filter version 2; supported: 1"),
        ('[meta]\nname = "x"\nversion = 1\ndescription = 1\n', "meta.description", "must be a string"),
        ('[meta]\nname = "x"\nversion = 1\nlabels = "a"\n', "meta.labels", "array of strings"),
        ('[meta]\nname = "x"\nversion = 1\nlabels = ["a", 2]\n', "meta.labels[1]", "must be a string"),
        ('meta = 1\n', "meta", "must be a table"),
    ],
)
def test_meta_values(invalid, text, key, fragment):
    scope = '[scope]\ndefault_exec = "trace"\ndefault_value_action = "allow"\n'
    err = invalid(text + scope, header=False)
    assert err.context["key"] == key and fragment in err.message, err
    assert "line" in err.context


@pytest.mark.parametrize(
    "field, value, fragment",
    [
        ("default_exec", '"trac"', 'expected one of "trace", "skip", "inherit"'),
        ("default_exec", "1", "must be a string"),
        ("default_value_action", '"keep"', '"deny" means "redact"'),
    ],
)
def test_scope_defaults(invalid, field, value, fragment):
    text = filters_text_with(field, value)
    err = invalid(text, header=False)
    assert err.context["key"] == f"scope.{field}" and err.context["line"] == "6"
    assert fragment in err.message


def filters_text_with(field: str, value: str) -> str:
    values = {"default_exec": '"trace"', "default_value_action": '"allow"', field: value}
    return ('[meta]\nname = "x"\nversion = 1\n\n[scope]\n'
            + "".join(f"{k} = {v}\n" for k, v in sorted(values.items(), key=lambda kv: kv[0] != field)))


@pytest.mark.parametrize(
    "body, key, fragment",
    [
        ('[scope.rules]\nselector = "pkg:a"\n', "scope.rules", "must be an array of tables"),
        ("rules_ = 1\n", "scope.rules_", "unknown key"),
        (RULE.format(selector="pkg:a") + "exec = true\n", "scope.rules[0].exec", "must be a string"),
        (RULE.format(selector="pkg:a") + 'exec = "allow"\n', "scope.rules[0].exec", '"trace", "skip", "inherit"'),
        (RULE.format(selector="pkg:a") + 'value_default = "hide"\n', "scope.rules[0].value_default",
         '"allow", "redact", "drop", "inherit"'),
        (RULE.format(selector="pkg:a") + "reason = 1\n", "scope.rules[0].reason", "must be a string"),
        (RULE.format(selector="pkg:a") + "value_patterns = 1\n", "scope.rules[0].value_patterns",
         "must be an array of tables"),
        (RULE.format(selector="pkg:a") + "value_patterns = [1]\n", "scope.rules[0].value_patterns[0]",
         "must be a table"),
        ("[[scope.rules]]\nselector = 5\n", "scope.rules[0].selector", "must be a string like"),
        (RULE.format(selector="pkg:a") + '[[scope.rules.value_patterns]]\nselector = "local:x"\naction = "inherit"\n',
         "scope.rules[0].value_patterns[0].action", 'expected one of "allow", "redact", "drop"'),
    ],
)
def test_rule_values(invalid, body, key, fragment):
    text = '[meta]\nname = "x"\nversion = 1\n[scope]\ndefault_exec = "trace"\ndefault_value_action = "allow"\n'
    err = invalid(text + body, header=False)
    assert err.context["key"] == key and fragment in err.message, err


def test_rules_given_as_non_table_items(invalid):
    err = invalid('[meta]\nname = "x"\nversion = 1\n[scope]\ndefault_exec = "trace"\n'
                  'default_value_action = "allow"\nrules = ["pkg:a"]\n', header=False)
    assert err.context["key"] == "scope.rules[0]" and "must be a table" in err.message
    assert err.context["line"] == "7"


def test_scope_must_be_a_table(invalid):
    err = invalid('scope = "x"\n[meta]\nname = "x"\nversion = 1\n', header=False)
    assert err.context["key"] == "scope" and "must be a table" in err.message and err.context["line"] == "1"


def test_deny_means_redact(write_filter):
    path = write_filter(RULE.format(selector="pkg:a") + 'value_default = "deny"\n'
                        '[[scope.rules.value_patterns]]\nselector = "local:x"\naction = "deny"\n', value="deny")
    loaded = filters.load_filter_file(path)
    assert loaded.default_value_action == "redact"
    assert loaded.rules[0].value_default == "redact"
    assert loaded.rules[0].value_patterns[0].action == "redact"


# -- selectors inside the file --------------------------------------------------------------


def _many_rules(last_selector: str) -> str:
    body = ""
    for i in range(3):
        body += RULE.format(selector=f"pkg:m{i}") + 'exec = "skip"\n'
    body += RULE.format(selector="pkg:m3")
    body += '\n[[scope.rules.value_patterns]]\n' + f"selector = '{last_selector}'\n" + 'action = "drop"\n'
    return body


@pytest.mark.parametrize(
    "selector, fragment",
    [
        ("local:", "empty pattern"),
        (":x", "empty kind"),
        ("local::x", "empty match type"),
        ("variable:x", "unknown selector kind 'variable'"),
        ("local:fuzzy:x", "unknown match type 'fuzzy'"),
        ("pkg:x", "cannot be used in a value pattern"),
        ("local:regex:(", "invalid regex"),
        ("local:[x", "invalid glob"),
    ],
)
def test_bad_value_selector_points_at_its_line(invalid, write_filter, line_of, selector, fragment):
    body = _many_rules(selector)
    err = invalid(body)
    assert err.context["key"] == "scope.rules[3].value_patterns[0].selector"
    path = write_filter(body)
    assert err.context["line"] == str(line_of(path, selector))
    assert err.context["column"] == "1"
    assert fragment in err.message


def test_value_kind_in_scope_rule(invalid, write_filter, line_of):
    body = RULE.format(selector="pkg:a") + RULE.format(selector="local:x")
    err = invalid(body)
    assert err.context["key"] == "scope.rules[1].selector"
    assert err.context["line"] == str(line_of(write_filter(body), "local:x"))
    assert "cannot be used in a scope rule" in err.message and "pkg, file, obj" in err.message


def test_position_with_dotted_keys_and_inline_tables(invalid):
    text = (
        'meta = { name = "x", version = 1 }\n'
        'scope.default_exec = "trace"\nscope.default_value_action = "allow"\n'
        "scope.rules = [\n"
        '  { selector = "pkg:a" },\n'
        '  { selector = "pkg:b", value_patterns = [ { selector = "local:x", action = "nope" } ] },\n'
        "]\n"
    )
    err = invalid(text, header=False)
    assert err.context["key"] == "scope.rules[1].value_patterns[0].action"
    assert err.context["line"] == "6"  # the inline table of rule 1


def test_multiline_strings_do_not_confuse_positions(invalid):
    text = (
        '[meta]\nname = "x"\nversion = 1\ndescription = """\n[[scope.rules]]\nnot a header\n"""\n'
        '[scope]\ndefault_exec = "trace"\ndefault_value_action = "allow"\n'
        '[[scope.rules]]\nselector = "pkg:a"\n[[scope.rules]]\nselector = "pkg:"\n'
    )
    err = invalid(text, header=False)
    assert err.context["key"] == "scope.rules[1].selector" and err.context["line"] == "14"


# -- file: patterns and the project root ----------------------------------------------------


@pytest.mark.parametrize(
    "selector, fragment",
    [
        ("file:../outside.py", "'..'"),
        ("file:src/../../x.py", "'..'"),
        ("file:glob:{..,src}/x.py", "'..'"),
        ("file:/etc/passwd", "absolute path"),
        ("file:literal:/etc/x.py", "absolute path"),
        ("file:glob:C:/x.py", "absolute path"),
        ("file:regex:^/etc/", "outside the project root"),
        ("file:regex:^\\.\\./x", "outside the project root"),
    ],
)
def test_file_patterns_escaping_the_root(invalid, selector, fragment):
    err = invalid(RULE.format(selector=selector.replace("\\", "\\\\")))
    assert err.context["key"] == "scope.rules[0].selector"
    assert fragment in err.message and "project root" in err.message


@pytest.mark.parametrize("selector", ["file:src/**/*.py", "file:regex:/tests/", "file:glob:a..b/x.py"])
def test_file_patterns_inside_the_root(write_filter, selector):
    filters.load_filter_file(write_filter(RULE.format(selector=selector)))


# -- [io] -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "io, key, fragment",
    [
        ("capture = true\n", "io.capture", "requires io.streams"),
        ("capture = true\nstreams = []\n", "io.capture", "requires io.streams"),
        ('streams = ["stdout"]\n', "io.streams", "only applies with capture = true"),
        ('capture = false\nstreams = ["stdout"]\n', "io.streams", "only applies with capture = true"),
        ('capture = true\nstreams = ["stdout", "files"]\n', "io.streams[1]", '"stdout", "stderr", "stdin"'),
        ('capture = "yes"\n', "io.capture", "boolean"),
        ('capture = true\nstreams = "stdout"\n', "io.streams", "array of strings"),
    ],
)
def test_io(invalid, io, key, fragment):
    err = invalid("[io]\n" + io)
    assert err.context["key"] == key and fragment in err.message, err


def test_io_valid(write_filter):
    loaded = filters.load_filter_file(write_filter('[io]\ncapture = true\nstreams = ["stdout", "stdin", "stdout"]\n'))
    assert loaded.io.as_dict() == {"capture": True, "streams": ["stdout", "stdin"]}
    assert filters.load_filter_file(write_filter("[io]\ncapture = false\n")).io.as_dict() == {
        "capture": False, "streams": []}
    assert filters.load_filter_file(write_filter("[io]\n")).io is None


# -- missing files ----------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(errors.UsageError) as info:
        filters.load_filter_file(tmp_path / "nope.toml")
    assert info.value.code == "ERR_FILTER_NOT_FOUND"
    assert info.value.context["file"] == str(tmp_path / "nope.toml")
    assert "does not exist" in info.value.message


def test_directory_is_not_a_filter(tmp_path):
    with pytest.raises(errors.UsageError) as info:
        filters.load_filter_file(tmp_path)
    assert info.value.code == "ERR_FILTER_NOT_FOUND" and "directory" in info.value.message


# -- what a valid file becomes ----------------------------------------------------------------


def test_loaded_form(write_filter):
    path = write_filter(
        '[meta]\nname = "demo"\nversion = 1\ndescription = "d"\nlabels = ["a"]\n'
        '[scope]\ndefault_exec = "skip"\ndefault_value_action = "redact"\n'
        '[[scope.rules]]\nselector = "pkg:a.*"\nexec = "inherit"\nvalue_default = "inherit"\nreason = "r"\n'
        '[[scope.rules.value_patterns]]\nselector = "arg:literal:x"\naction = "allow"\nreason = "why"\n',
        header=False,
    )
    loaded = filters.load_filter_file(path)
    assert (loaded.name, loaded.version, loaded.description, loaded.labels) == ("demo", 1, "d", ("a",))
    assert loaded.path == str(path.resolve())
    assert loaded.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert loaded.root == path.resolve().parent
    rule = loaded.rules[0]
    assert rule.exec is None and rule.value_default is None  # rule-level inherit: leave as is
    assert rule.reason == "r" and rule.value_patterns[0].reason == "why"
    assert loaded.line("scope.rules[0]") == 9
    assert loaded.line("scope.rules[0].value_patterns[0]") == 14


def test_project_root_is_parent_of_codetracer_dir(write_filter):
    path = write_filter("", path="proj/.codetracer/trace-filter.toml")
    assert filters.load_filter_file(path).root == path.resolve().parent.parent
