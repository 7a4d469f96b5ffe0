"""`explain` (which rule decides and what it overrode) and the `rewind filter` subcommands."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rewind import errors, filters
from rewind.tools import filter_cmd

BASELINE = """
[[scope.rules]]
selector = "pkg:my_app.*"
exec = "trace"
value_default = "allow"
reason = "our code"

[[scope.rules]]
selector = "pkg:my_app.vendor.*"
exec = "skip"
reason = "vendored"

[[scope.rules]]
selector = "file:src/my_app/auth.py"
value_default = "redact"
reason = "auth handles secrets"

[[scope.rules.value_patterns]]
selector = "arg:user"
action = "allow"
reason = "user names are fine"
"""


@pytest.fixture
def project(tmp_path, write_filter):
    """A project on disk: src/my_app/{__init__,auth}.py and a maintainer baseline."""
    package = tmp_path / "src" / "my_app"
    (package / "vendor").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "vendor" / "__init__.py").write_text("")
    (package / "auth.py").write_text("def login(user, password):\n    return user\n")
    write_filter(BASELINE, path=".codetracer/trace-filter.toml", name="baseline", exec_="inherit", value="inherit")
    return tmp_path


def build(project, *specs):
    return filters.build_chain(list(specs), script_dir=project / "src", environ={})


# -- targets ---------------------------------------------------------------------------------------


def test_resolve_dotted_target_finds_the_module_on_disk(project):
    target = filters.resolve_target("my_app.auth.login", [str(project / "src")])
    assert (target.module, target.qualname) == ("my_app.auth", "login")
    assert target.filename == str(project / "src/my_app/auth.py") and not target.notes
    module = filters.resolve_target("my_app.auth", [str(project / "src")])
    assert (module.module, module.qualname) == ("my_app.auth", "<module>")
    package = filters.resolve_target("my_app", [str(project / "src")])
    assert package.filename == str(project / "src/my_app/__init__.py")


def test_resolve_explicit_and_file_targets(project):
    search = [str(project / "src")]
    explicit = filters.resolve_target("my_app.auth:Session.login", search)
    assert (explicit.module, explicit.qualname) == ("my_app.auth", "Session.login")
    by_file = filters.resolve_target(str(project / "src/my_app/auth.py"), search)
    assert (by_file.module, by_file.qualname) == ("my_app.auth", "<module>")
    assert "__main__" in by_file.notes[0]
    with_qualname = filters.resolve_target(f"{project}/src/my_app/auth.py:login", search)
    assert (with_qualname.module, with_qualname.qualname) == ("my_app.auth", "login")


def test_resolve_unknown_target(project):
    target = filters.resolve_target("nowhere.mod.func", [str(project / "src")])
    assert (target.module, target.qualname, target.filename) == ("nowhere.mod", "func", None)
    assert "not found on disk" in target.notes[0]
    with pytest.raises(errors.UsageError):
        filters.resolve_target("  ")


# -- explanations -----------------------------------------------------------------------------------


def test_exec_decision_names_the_rule_and_what_it_overrode(project, line_of):
    chain = build(project)
    result = filters.explain(chain, "my_app.auth.login", search_path=[str(project / "src")])
    exec_ = result["exec"]
    assert exec_["decision"] == "trace"
    by = exec_["decided_by"]
    assert (by["filter"], by["rule"], by["selector"], by["reason"]) == ("baseline", 0, "pkg:my_app.*", "our code")
    path = (project / ".codetracer/trace-filter.toml").resolve()
    assert by["path"] == str(path) and by["line"] == line_of(path, "[[scope.rules]]")
    assert [(s["filter"], s["key"]) for s in exec_["overridden"]] == [("builtin-default", "scope.default_exec")]
    assert result["chain"][1]["file_as_seen"] == "src/my_app/auth.py"


def test_skip_overrides_list_every_earlier_rule_latest_first(project):
    chain = build(project)
    result = filters.explain(chain, "my_app.vendor.lib:f", search_path=[str(project / "src")])
    assert result["exec"]["decision"] == "skip"
    assert result["exec"]["decided_by"]["rule"] == 1
    assert [s["rule"] for s in result["exec"]["overridden"]] == [0, None]


def test_value_decision_from_builtin_redaction(project):
    chain = build(project)
    result = filters.explain(chain, "my_app.auth.login", "arg:password", search_path=[str(project / "src")])
    value = result["value"]
    assert value["action"] == "redact"
    assert value["decided_by"]["filter"] == "builtin-default"
    assert value["decided_by"]["key"].startswith("scope.rules[") and "value_patterns[" in value["decided_by"]["key"]
    # the file's value_default (redact) would have applied otherwise
    assert value["overridden"][-1]["key"] == "scope.rules[2].value_default"


def test_value_decision_from_project_pattern(project, line_of):
    chain = build(project)
    result = filters.explain(chain, "my_app.auth.login", "arg:user", search_path=[str(project / "src")])
    by = result["value"]["decided_by"]
    assert (by["filter"], by["rule"], by["pattern"], by["value"]) == ("baseline", 2, 0, "allow")
    assert by["line"] == line_of(project / ".codetracer/trace-filter.toml", "[[scope.rules.value_patterns]]")


def test_value_decision_from_value_default(project):
    chain = build(project)
    result = filters.explain(chain, "my_app.auth.login", "local:result", search_path=[str(project / "src")])
    value = result["value"]
    assert value["action"] == "redact" and value["decided_by"]["key"] == "scope.rules[2].value_default"
    assert value["overridden"] == []


def test_contributor_override(project, write_filter):
    override = write_filter(
        '[[scope.rules]]\nselector = "file:src/my_app/auth.py"\n'
        '[[scope.rules.value_patterns]]\nselector = "arg:literal:password"\naction = "allow"\n'
        'reason = "local debugging only"\n',
        path="override.toml", name="contributor", exec_="inherit", value="inherit",
    )
    chain = build(project, override)
    result = filters.explain(chain, "my_app.auth.login", "arg:password", search_path=[str(project / "src")])
    value = result["value"]
    assert value["action"] == "allow" and value["decided_by"]["filter"] == "contributor"
    assert [s["filter"] for s in value["overridden"]] == ["builtin-default", "baseline"]


def test_return_value_explained_by_qualified_name(project):
    chain = build(project)
    result = filters.explain(chain, "my_app.auth:get_token", "ret", search_path=[str(project / "src")])
    assert result["value"]["subject"] == "my_app.auth.get_token" and result["value"]["action"] == "redact"


def test_stdlib_target(project):
    result = filters.explain(build(project), "json.decoder.JSONDecoder.decode")
    assert result["exec"]["decision"] == "skip"
    assert result["exec"]["decided_by"]["filter"] == "builtin-default"


def test_synthetic_target():
    chain = filters.build_chain([], environ={})
    from rewind.filters.explainer import Target

    target = Target("x", "__main__", "<module>", "<string>")
    result = filters.explain(chain, target)
    assert result["exec"]["decision"] == "skip" and "synthetic" in result["exec"]["decided_by"]["reason"]


@pytest.mark.parametrize("value", ["password", "param:x", "arg:", "local"])
def test_bad_value_spec(project, value):
    with pytest.raises(errors.UsageError):
        filters.explain(build(project), "my_app.auth.login", value)


def test_text_rendering(project, line_of):
    chain = build(project)
    result = filters.explain(chain, "my_app.auth.login", "arg:password", search_path=[str(project / "src")])
    text = filters.format_explanation(result)
    assert "exec: trace" in text
    line = line_of(project / ".codetracer/trace-filter.toml", "[[scope.rules]]")
    assert f"decided by: baseline rule 0 (line {line}): pkg:my_app.* -> trace  # our code" in text
    assert 'overrides:  builtin-default scope.default_exec = "trace"' in text
    assert "value arg:password: redact" in text


# -- the subcommands ------------------------------------------------------------------------------


def run_cli(*argv) -> int:
    parser = argparse.ArgumentParser(prog="rewind")
    subparsers = parser.add_subparsers(dest="tool", required=True)
    filter_cmd.register(subparsers)
    args = parser.parse_args(list(argv))
    try:
        return args.func(args)
    except errors.RecorderError as err:  # what cli.py does with errors a tool raises
        print(f"rewind: error: {err}", file=sys.stderr)
        return err.exit_code


def test_check_valid(write_filter, capsys):
    path = write_filter("", name="ok-filter")
    assert run_cli("filter", "check", str(path)) == 0
    assert "ok-filter" in capsys.readouterr().out


def test_check_invalid_prints_the_error_and_exits_2(write_filter, capsys):
    good = write_filter("", path="good.toml")
    bad = write_filter("[[scope.rules]]\nselector = 'pkg:'\n", path="bad.toml")
    assert run_cli("filter", "check", str(good), str(bad)) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("[ERR_INVALID_FILTER] ")
    assert "key=scope.rules[0].selector" in captured.err and "line=9" in captured.err
    assert str(good.resolve()) in captured.out


def test_check_missing_file(tmp_path, capsys):
    assert run_cli("filter", "check", str(tmp_path / "none.toml")) == 2
    assert capsys.readouterr().err.startswith("[ERR_FILTER_NOT_FOUND]")


def test_check_allows_inherit_as_recording_would(write_filter):
    assert run_cli("filter", "check", str(write_filter("", exec_="inherit", value="inherit"))) == 0


def test_explain_text_and_json(project, capsys, monkeypatch):
    monkeypatch.chdir(project / "src")
    monkeypatch.delenv("CODETRACER_TRACE_FILTER", raising=False)
    assert run_cli("filter", "explain", "my_app.auth.login", "arg:user") == 0
    out = capsys.readouterr().out
    assert "value arg:user: allow" in out and "baseline rule 2 pattern 0" in out
    assert run_cli("filter", "explain", "--json", "my_app.auth.login", "arg:password") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["value"]["action"] == "redact"


def test_explain_with_trace_filter_and_framework(project, write_filter, capsys, monkeypatch):
    monkeypatch.chdir(project)
    monkeypatch.delenv("CODETRACER_TRACE_FILTER", raising=False)
    extra = write_filter('[[scope.rules]]\nselector = "pkg:my_app.auth"\nexec = "skip"\n', path="x.toml",
                         name="extra")
    assert run_cli("filter", "explain", "--trace-filter", str(extra), "--framework", "pytest", "--json",
                   "src/my_app/auth.py") == 0
    data = json.loads(capsys.readouterr().out)
    assert [c["name"] for c in data["chain"]] == ["builtin-default", "builtin-pytest", "baseline", "extra"]
    assert data["exec"]["decision"] == "skip" and data["exec"]["decided_by"]["filter"] == "extra"


def test_explain_reports_invalid_filters(project, write_filter, capsys):
    bad = write_filter("[[scope.rules]]\nselector = 'nope:x'\n", path="bad.toml")
    assert run_cli("filter", "explain", "--trace-filter", str(bad), "my_app") == 2
    assert "ERR_INVALID_FILTER" in capsys.readouterr().err


def test_filter_without_subcommand(capsys):
    assert run_cli("filter") == 2


def test_through_the_real_cli(write_filter):
    src = Path(filters.__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODETRACER_")}
    env["PYTHONPATH"] = str(src)
    bad = write_filter('[io]\ncapture = true\n', path="bad.toml")
    done = subprocess.run([sys.executable, "-m", "rewind", "filter", "check", str(bad)],
                          check=False, capture_output=True, text=True, env=env)
    assert done.returncode == 2, done.stderr
    assert "[ERR_INVALID_FILTER]" in done.stderr and "key=io.capture" in done.stderr
