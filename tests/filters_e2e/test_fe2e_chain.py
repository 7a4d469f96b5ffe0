"""Chains: `::` and repeated --trace-filter, `inherit`, CODETRACER_TRACE_FILTER before the
command line, discovery of .codetracer/trace-filter.toml from the script's directory up;
provenance in trace_metadata.json; bad filters refused before the target runs; the [io]
section choosing the captured streams."""
from __future__ import annotations

import hashlib
import os
from importlib import resources
from pathlib import Path

import pytest
from fe2e_support import REDACTED, call, filter_meta, last_values, names_seen, write_filter, write_tree

SCRIPT = """
    def f(x):
        y = x + 1
        z = y * 2
        return z


    f(1)
    """

Y_REDACT = """
    [[scope.rules]]
    selector = "obj:__main__.f"

    [[scope.rules.value_patterns]]
    selector = "local:y"
    action = "redact"
    """
Y_ALLOW_Z_DROP = """
    [[scope.rules]]
    selector = "obj:__main__.f"

    [[scope.rules.value_patterns]]
    selector = "local:literal:y"
    action = "allow"

    [[scope.rules.value_patterns]]
    selector = "local:z"
    action = "drop"
    """


@pytest.fixture
def proj(tmp_path) -> Path:
    root = write_tree(tmp_path / "proj", {"main.py": SCRIPT})
    write_filter(root / "redact-y.toml", "redact-y", Y_REDACT, exec_="trace", value="allow")
    write_filter(root / "allow-y.toml", "allow-y", Y_ALLOW_Z_DROP)
    # skip by default, trace __main__, redact values by default
    write_filter(root / "strict.toml", "strict", """
        [[scope.rules]]
        selector = "pkg:__main__"
        exec = "trace"
        """, exec_="skip", value="redact")
    write_filter(root / "inherits.toml", "inherits", """
        [[scope.rules]]
        selector = "obj:__main__.f"

        [[scope.rules.value_patterns]]
        selector = "local:y"
        action = "allow"
        """)
    return root


def names(view) -> list[str]:
    return [f["name"] for f in filter_meta(view)["filters"]]


def record_with(record, proj, *options, env=None):
    rec = record(proj / "main.py", options=list(options), env=env, cwd=proj)
    assert rec.proc.returncode == 0, rec.stderr
    return rec.view


@pytest.mark.parametrize("options", [
    ["--trace-filter", "redact-y.toml::allow-y.toml"],
    ["--trace-filter", "redact-y.toml", "--trace-filter", "allow-y.toml"],
], ids=["double-colon", "repeated-flag"])
def test_later_file_wins(record, proj, options):
    v = record_with(record, proj, *options)
    assert names(v) == ["builtin-default", "redact-y", "allow-y"]
    last = last_values(v, "f")
    assert last["y"] == 2 and "z" not in names_seen(v, "f")


def test_order_reversed(record, proj):
    v = record_with(record, proj, "--trace-filter", "allow-y.toml::redact-y.toml")
    assert names(v) == ["builtin-default", "allow-y", "redact-y"]
    # redact-y's rule is the latest match and names y; allow-y's z pattern still applies.
    assert last_values(v, "f")["y"] == REDACTED
    assert "z" not in names_seen(v, "f")


def test_inherit_takes_the_defaults_of_the_file_before(record, proj):
    v = record_with(record, proj, "--trace-filter", "strict.toml::inherits.toml")
    f = call(v, "f")
    # strict: default redact (inherited by `inherits`), which only allows y
    assert f.args == {"x": REDACTED}
    last = last_values(v, "f")
    assert last["y"] == 2 and last["z"] == REDACTED and last["x"] == REDACTED
    assert f.returned == REDACTED


def test_inherit_from_builtin_default_alone(record, proj):
    v = record_with(record, proj, "--trace-filter", "inherits.toml")
    assert call(v, "f").args == {"x": 1} and last_values(v, "f")["z"] == 4


def test_env_entries_come_before_command_line_entries(record, proj):
    v = record_with(record, proj, "--trace-filter", str(proj / "allow-y.toml"),
                    env={"CODETRACER_TRACE_FILTER": str(proj / "strict.toml") + "::" + str(proj / "redact-y.toml")})
    assert names(v) == ["builtin-default", "strict", "redact-y", "allow-y"]
    last = last_values(v, "f")
    # redact-y resets the value default to allow; allow-y (command line, last) allows y
    assert last["y"] == 2 and last["x"] == 1 and "z" not in last

    v = record_with(record, proj, "--trace-filter", "redact-y.toml",
                    env={"CODETRACER_TRACE_FILTER": "allow-y.toml"})
    assert names(v) == ["builtin-default", "allow-y", "redact-y"]
    assert last_values(v, "f")["y"] == REDACTED


def test_env_alone(record, proj):
    v = record_with(record, proj, env={"CODETRACER_TRACE_FILTER": "strict.toml"})
    assert names(v) == ["builtin-default", "strict"]
    assert call(v, "f").args == {"x": REDACTED}


# -- discovery --------------------------------------------------------------------------------


DISCOVERY = {
    "repo/src/app/main.py": """
        from helpers import assist


        def run(x):
            y = assist(x)
            return y


        run(2)
        """,
    "repo/src/app/helpers.py": """
        def assist(v):
            w = v + 1
            return w
        """,
    "repo/.codetracer/trace-filter.toml": """
        [meta]
        name = "repo-filter"
        version = 1

        [scope]
        default_exec = "trace"
        default_value_action = "inherit"

        [[scope.rules]]
        selector = "file:src/app/helpers.py"
        exec = "skip"

        [[scope.rules]]
        selector = "obj:__main__.run"

        [[scope.rules.value_patterns]]
        selector = "local:y"
        action = "redact"
        """,
    # The current directory's filter is not the script's: never used.
    "cwd/.codetracer/trace-filter.toml": """
        [meta]
        name = "cwd-filter"
        version = 1

        [scope]
        default_exec = "skip"
        default_value_action = "drop"
        """,
}


def test_project_filter_discovered_from_the_script_directory_upwards(record, tmp_path, backend):
    root = write_tree(tmp_path, DISCOVERY)
    project_filter = root / "repo" / ".codetracer" / "trace-filter.toml"
    rec = record(root / "repo" / "src" / "app" / "main.py", cwd=root / "cwd", env=backend)
    v = rec.view
    assert filter_meta(v)["filters"][1] == {
        "name": "repo-filter", "version": 1, "path": str(project_filter.resolve()),
        "sha256": hashlib.sha256(project_filter.read_bytes()).hexdigest()}
    assert len(filter_meta(v)["filters"]) == 2
    # file: rules are relative to the repo (the parent of .codetracer/)
    assert [c.function for c in v.calls] == ["<toplevel>", "<__main__>", "run"]
    assert last_values(v, "run")["y"] == REDACTED and call(v, "run").returned == 3


def test_nearest_project_filter_wins_and_command_line_comes_after_it(record, tmp_path):
    root = write_tree(tmp_path, DISCOVERY)
    nearer = write_filter(root / "repo" / "src" / ".codetracer" / "trace-filter.toml", "nearer", """
        [[scope.rules]]
        selector = "obj:__main__.run"

        [[scope.rules.value_patterns]]
        selector = "arg:x"
        action = "redact"
        """)
    cli = write_filter(root / "cli.toml", "cli", """
        [[scope.rules]]
        selector = "obj:__main__.run"

        [[scope.rules.value_patterns]]
        selector = "arg:x"
        action = "allow"
        """)
    rec = record(root / "repo" / "src" / "app" / "main.py", cwd=root / "cwd")
    v = rec.view
    assert [(f["name"], f["path"]) for f in filter_meta(v)["filters"]] == [
        ("builtin-default", "<inline:builtin-default>"), ("nearer", str(nearer.resolve()))]
    assert call(v, "run").args == {"x": REDACTED}
    assert "assist" in {c.function for c in v.calls}  # the repo filter is not in the chain

    rec = record(root / "repo" / "src" / "app" / "main.py", options=["--trace-filter", str(cli)], cwd=root / "cwd")
    assert names(rec.view) == ["builtin-default", "nearer", "cli"]
    assert call(rec.view, "run").args == {"x": 2}


def test_module_target_discovers_from_the_module_directory(record, tmp_path):
    root = write_tree(tmp_path, DISCOVERY)
    write_tree(root / "repo" / "src", {"app/__init__.py": "", "app/__main__.py": """
        from app.helpers import assist

        assist(5)
        """})
    rec = record(["-m", "app"], cwd=root / "repo" / "src")
    v = rec.view
    assert names(v) == ["builtin-default", "repo-filter"]
    assert "assist" not in {c.function for c in v.calls}


# -- provenance -------------------------------------------------------------------------------


def test_provenance_names_versions_paths_and_hashes_of_exact_bytes(record, proj):
    # CRLF line endings, a BOM-less UTF-8 comment and a trailing blank: hashed as written.
    odd = proj / "sub" / "odd.toml"
    odd.parent.mkdir()
    odd.write_bytes(('# caf\u00e9 filter\r\n[meta]\r\nname = "odd"\r\nversion = 1\r\n'
                     '[scope]\r\ndefault_exec = "inherit"\r\ndefault_value_action = "inherit"\r\n\r\n')
                    .encode("utf-8"))
    link = proj / "link.toml"
    os.symlink(proj / "redact-y.toml", link)
    v = record_with(record, proj, "--trace-filter", "sub/../sub/odd.toml::link.toml")
    builtin_bytes = resources.files("rewind.filters.builtin").joinpath("default.toml").read_bytes()
    assert filter_meta(v)["filters"] == [
        {"name": "builtin-default", "version": 1, "path": "<inline:builtin-default>",
         "sha256": hashlib.sha256(builtin_bytes).hexdigest()},
        {"name": "odd", "version": 1, "path": str(odd.resolve()),
         "sha256": hashlib.sha256(odd.read_bytes()).hexdigest()},
        {"name": "redact-y", "version": 1, "path": str((proj / "redact-y.toml").resolve()),
         "sha256": hashlib.sha256((proj / "redact-y.toml").read_bytes()).hexdigest()},
    ]
    assert all(os.path.isabs(f["path"]) for f in filter_meta(v)["filters"][1:])


# -- refused before the target runs -----------------------------------------------------------

SIDE_EFFECT = """
    open("side-effect.txt", "w").write("the target ran")
    """

BAD_FILTERS = [
    # (id, filter text, key, line, message fragment)
    ("unknown-key", '[meta]\nname = "b"\nversion = 1\n[scope]\ndefault_exec = "trace"\n'
     'default_value_action = "allow"\n[[scope.rules]]\nselector = "pkg:app"\nexce = "skip"\n',
     "scope.rules[0].exce", 9, "unknown key 'exce'"),
    ("value-kind-in-scope-rule", '[meta]\nname = "b"\nversion = 1\n[scope]\ndefault_exec = "trace"\n'
     'default_value_action = "allow"\n[[scope.rules]]\nselector = "local:x"\n',
     "scope.rules[0].selector", 8, "local"),
    ("scope-kind-in-value-pattern", '[meta]\nname = "b"\nversion = 1\n[scope]\ndefault_exec = "trace"\n'
     'default_value_action = "allow"\n[[scope.rules]]\nselector = "pkg:app"\n'
     '[[scope.rules.value_patterns]]\nselector = "pkg:x"\naction = "drop"\n',
     "scope.rules[0].value_patterns[0].selector", 10, "pkg"),
    ("bad-regex", '[meta]\nname = "b"\nversion = 1\n[scope]\ndefault_exec = "trace"\n'
     'default_value_action = "allow"\n[[scope.rules]]\nselector = "obj:regex:(oops"\nexec = "skip"\n',
     "scope.rules[0].selector", 8, "regex"),
    ("file-escapes-root", '[meta]\nname = "b"\nversion = 1\n[scope]\ndefault_exec = "trace"\n'
     'default_value_action = "allow"\n[[scope.rules]]\nselector = "file:../x.py"\nexec = "skip"\n',
     "scope.rules[0].selector", 8, "root"),
    ("bad-action", '[meta]\nname = "b"\nversion = 1\n[scope]\ndefault_exec = "trace"\n'
     'default_value_action = "allow"\n[[scope.rules]]\nselector = "pkg:app"\n'
     '[[scope.rules.value_patterns]]\nselector = "local:x"\naction = "hide"\n',
     "scope.rules[0].value_patterns[0].action", 11, "allow"),
    ("missing-name", '[meta]\nversion = 1\n[scope]\ndefault_exec = "trace"\ndefault_value_action = "allow"\n',
     "meta.name", 1, "name"),
    ("unsupported-version", '[meta]\nname = "b"\nversion = 2\n[scope]\ndefault_exec = "trace"\n'
     'default_value_action = "allow"\n', "meta.version", 3, "version"),
    ("capture-without-streams", '[meta]\nname = "b"\nversion = 1\n[io]\ncapture = true\n[scope]\n'
     'default_exec = "trace"\ndefault_value_action = "allow"\n', "io.capture", 5, "streams"),
    ("toml-syntax", '[meta]\nname = "b"\nversion = 1\n[scope]\ndefault_exec = trace\n', None, 5, ""),
]


def assert_refused(rec, path: Path, tmp_dir: Path, *, key, line, fragment, code="ERR_INVALID_FILTER"):
    assert rec.proc.returncode == 2, (rec.proc.returncode, rec.stderr)
    assert not (tmp_dir / "side-effect.txt").exists(), "the target ran"
    assert not rec.trace_dir.exists()
    assert not [p for p in rec.trace_dir.parent.iterdir() if "rewind-staging" in p.name]
    err = rec.stderr
    assert f"[{code}]" in err, err
    assert f"file={path.resolve()}" in err, err
    if line is not None:
        assert f"line={line}" in err, err
    if key is not None:
        assert f"key={key}" in err, err
    assert fragment in err, err
    assert "Traceback" not in err


@pytest.mark.parametrize("case", BAD_FILTERS, ids=[c[0] for c in BAD_FILTERS])
def test_bad_filter_refused_before_the_target_runs(record, tmp_path, case):
    _, text, key, line, fragment = case
    root = write_tree(tmp_path / "bad", {"main.py": SIDE_EFFECT})
    bad = root / "bad.toml"
    bad.write_text(text, encoding="utf-8")
    rec = record(root / "main.py", options=["--trace-filter", str(bad)], cwd=root, expect_trace=False)
    assert_refused(rec, bad, root, key=key, line=line, fragment=fragment)


def test_missing_filter_refused(record, tmp_path):
    root = write_tree(tmp_path / "bad", {"main.py": SIDE_EFFECT})
    rec = record(root / "main.py", options=["--trace-filter", "nope.toml"], cwd=root, expect_trace=False)
    assert_refused(rec, root / "nope.toml", root, key=None, line=None, fragment="does not exist",
                   code="ERR_FILTER_NOT_FOUND")


@pytest.mark.parametrize("where", ["second-in-chain", "env", "project"])
def test_bad_filter_refused_wherever_it_comes_from(record, tmp_path, where):
    root = write_tree(tmp_path / "bad", {"main.py": SIDE_EFFECT})
    good = write_filter(root / "good.toml", "good")
    bad = write_filter(root / ".codetracer" / "trace-filter.toml" if where == "project" else root / "bad.toml",
                       "bad", """
        [[scope.rules]]
        selector = "pkg:app"

        [[scope.rules.value_patterns]]
        selector = "locl:x"
        action = "drop"
        """)
    options, env = [], None
    if where == "second-in-chain":
        options = ["--trace-filter", f"{good}::{bad}"]
    elif where == "env":
        env = {"CODETRACER_TRACE_FILTER": str(bad)}
        options = ["--trace-filter", str(good)]
    rec = record(root / "main.py", options=options, env=env, cwd=tmp_path, expect_trace=False)
    assert_refused(rec, bad, tmp_path, key="scope.rules[0].value_patterns[0].selector", line=13,
                   fragment="unknown selector kind 'locl'")
    assert not (root / "side-effect.txt").exists()


# -- [io] -------------------------------------------------------------------------------------


def io_filter(path: Path, name: str, section: str) -> Path:
    path.write_text(f'[meta]\nname = "{name}"\nversion = 1\n\n[io]\n{section}\n\n[scope]\n'
                    'default_exec = "inherit"\ndefault_value_action = "inherit"\n', encoding="utf-8")
    return path


@pytest.mark.parametrize("spec, expected", [
    (None, ["out\n", "err\n"]),
    ("stderr-only.toml", ["err\n"]),
    ("no-io.toml", []),
    ("stderr-only.toml::no-io.toml", []),  # the last [io] section in the chain decides
    ("no-io.toml::stderr-only.toml", ["err\n"]),
    ("no-io.toml::no-section.toml", []),  # a file without [io] changes nothing
])
def test_io_section_selects_captured_streams(record, tmp_path, spec, expected):
    root = write_tree(tmp_path / "io", {"main.py": """
        import sys

        print("out")
        sys.stderr.write("err\\n")
        """})
    io_filter(root / "stderr-only.toml", "stderr-only", 'capture = true\nstreams = ["stderr"]')
    io_filter(root / "no-io.toml", "no-io", "capture = false")
    write_filter(root / "no-section.toml", "no-section")
    rec = record(root / "main.py", options=["--trace-filter", spec] if spec else [], cwd=root)
    assert rec.stdout == "out\n" and rec.stderr == "err\n"  # the program's own output is untouched
    assert [e["content"] for e in rec.view.io] == expected
