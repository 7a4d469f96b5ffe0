"""Chain composition (order, discovery, `::`, environment, inherit) and evaluation."""
from __future__ import annotations

import hashlib
import os
from importlib import resources
from pathlib import Path

import pytest

from rewind import errors, filters


def names(chain):
    return [entry["name"] for entry in chain.provenance()]


# -- composition -------------------------------------------------------------------------------


def test_builtin_default_is_always_first(chain_of):
    assert names(chain_of()) == ["builtin-default"]


def test_full_order(tmp_path, write_filter, chain_of):
    write_filter("", path="proj/.codetracer/trace-filter.toml", name="project")
    env_a = write_filter("", path="env_a.toml", name="env-a")
    env_b = write_filter("", path="env_b.toml", name="env-b")
    arg_a = write_filter("", path="arg_a.toml", name="arg-a")
    arg_b = write_filter("", path="arg_b.toml", name="arg-b")
    arg_c = write_filter("", path="arg_c.toml", name="arg-c")
    script_dir = tmp_path / "proj" / "src" / "app"
    script_dir.mkdir(parents=True)
    chain = chain_of(
        f"{arg_a}::{arg_b}", arg_c,
        script_dir=script_dir, framework="pytest",
        environ={"CODETRACER_TRACE_FILTER": f"{env_a}::{env_b}"},
    )
    assert names(chain) == ["builtin-default", "builtin-pytest", "project", "env-a", "env-b",
                            "arg-a", "arg-b", "arg-c"]


def test_specs_accept_str_path_and_sequence(write_filter):
    a = write_filter("", path="a.toml", name="a")
    b = write_filter("", path="b.toml", name="b")
    assert names(filters.build_chain(str(a), environ={})) == ["builtin-default", "a"]
    assert names(filters.build_chain(a, environ={})) == ["builtin-default", "a"]
    assert names(filters.build_chain((a, f"{b}::"), environ={})) == ["builtin-default", "a", "b"]
    assert names(filters.build_chain(None, environ={})) == ["builtin-default"]


def test_split_specs():
    assert filters.split_specs(["a::b", Path("c"), "", "d::::e"]) == ["a", "b", "c", "d", "e"]
    with pytest.raises(errors.UsageError):
        filters.split_specs([3])


def test_unittest_framework(chain_of):
    assert names(chain_of(framework="unittest")) == ["builtin-default", "builtin-unittest"]


def test_unknown_framework(chain_of):
    with pytest.raises(errors.UsageError) as info:
        chain_of(framework="nose")
    assert info.value.code == "ERR_INVALID_POLICY_VALUE"


def test_discovery_finds_the_nearest(tmp_path, write_filter):
    outer = write_filter("", path="a/.codetracer/trace-filter.toml", name="outer")
    inner = write_filter("", path="a/b/.codetracer/trace-filter.toml", name="inner")
    deep = tmp_path / "a" / "b" / "c" / "d"
    deep.mkdir(parents=True)
    assert filters.discover_project_filter(deep) == inner
    assert filters.discover_project_filter(tmp_path / "a") == outer
    assert filters.discover_project_filter(tmp_path) is None
    assert names(filters.build_chain([], script_dir=deep, environ={})) == ["builtin-default", "inner"]


def test_no_discovery_without_script_dir(tmp_path, write_filter, monkeypatch):
    write_filter("", path=".codetracer/trace-filter.toml", name="project")
    monkeypatch.chdir(tmp_path)
    assert names(filters.build_chain([], environ={})) == ["builtin-default"]


def test_invalid_project_filter_fails_the_chain(tmp_path, write_filter):
    write_filter("[[scope.rules]]\nselector = 'pkg:'\n", path=".codetracer/trace-filter.toml")
    with pytest.raises(errors.UsageError) as info:
        filters.build_chain([], script_dir=tmp_path, environ={})
    assert info.value.code == "ERR_INVALID_FILTER"


def test_missing_files_name_their_origin(tmp_path):
    missing = str(tmp_path / "missing.toml")
    with pytest.raises(errors.UsageError) as info:
        filters.build_chain([], environ={"CODETRACER_TRACE_FILTER": missing})
    assert info.value.code == "ERR_FILTER_NOT_FOUND"
    assert info.value.context["origin"] == "CODETRACER_TRACE_FILTER"
    with pytest.raises(errors.UsageError) as info:
        filters.build_chain([missing], environ={})
    assert info.value.context["origin"] == "trace_filter"


def test_relative_specs_are_relative_to_the_working_directory(tmp_path, write_filter, monkeypatch):
    write_filter("", path="conf/f.toml", name="rel")
    monkeypatch.chdir(tmp_path)
    assert names(filters.build_chain(["conf/f.toml"], environ={})) == ["builtin-default", "rel"]


# -- inherit -----------------------------------------------------------------------------------


def test_inherit_takes_the_default_from_the_chain_before(write_filter, chain_of):
    skip_all = write_filter("", path="a.toml", exec_="skip", value="drop")
    inheriting = write_filter("", path="b.toml", exec_="inherit", value="inherit")
    chain = chain_of(skip_all, inheriting)
    assert (chain.default_exec, chain.default_value_action) == ("skip", "drop")
    assert chain.default_exec_source == 1 and chain.default_value_source == 1
    # On its own after builtin-default, inherit gets builtin-default's defaults.
    chain = chain_of(inheriting)
    assert (chain.default_exec, chain.default_value_action) == ("trace", "allow")


def test_later_defaults_replace_earlier_ones(write_filter, chain_of):
    a = write_filter("", path="a.toml", exec_="skip", value="drop")
    b = write_filter("", path="b.toml", exec_="trace", value="redact")
    chain = chain_of(a, b)
    assert (chain.default_exec, chain.default_value_action) == ("trace", "redact")


@pytest.mark.parametrize("field, exec_, value", [("default_exec", "inherit", "allow"),
                                                 ("default_value_action", "trace", "inherit")])
def test_inherit_with_nothing_before_it(write_filter, field, exec_, value):
    path = write_filter("", exec_=exec_, value=value)
    loaded = filters.load_filter_file(path)
    with pytest.raises(errors.UsageError) as info:
        filters.compose([loaded])
    err = info.value
    assert err.code == "ERR_INVALID_FILTER"
    assert err.context["key"] == f"scope.{field}"
    assert err.context["line"] == ("6" if field == "default_exec" else "7")
    assert err.context["file"] == str(path.resolve())
    assert "no filter comes before" in err.message


def test_builtin_framework_filters_inherit(chain_of):
    chain = chain_of(framework="pytest")
    assert chain.files[1].default_exec == "inherit" and chain.default_exec == "trace"


# -- exec decisions --------------------------------------------------------------------------


def decide(chain, module, qualname="f", filename=None):
    return chain.decide(module=module, qualname=qualname, filename=filename or f"/nowhere/{module}.py")


def test_last_matching_rule_wins(write_filter, chain_of):
    path = write_filter(
        """
        [[scope.rules]]
        selector = "pkg:app.*"
        exec = "skip"

        [[scope.rules]]
        selector = "pkg:app.core.*"
        exec = "trace"

        [[scope.rules]]
        selector = "obj:app.core.db.Connection.*"
        exec = "skip"

        [[scope.rules]]
        selector = "obj:app.core.db.Connection.close"
        reason = "sets nothing: changes nothing"
        """
    )
    chain = chain_of(path)
    assert not decide(chain, "app").trace
    assert not decide(chain, "app.ui").trace
    assert decide(chain, "app.core").trace
    assert decide(chain, "app.core.db", "query").trace
    assert not decide(chain, "app.core.db", "Connection.close").trace
    assert decide(chain, "other").trace  # the default


def test_later_file_overrides_earlier_file(write_filter, chain_of):
    a = write_filter('[[scope.rules]]\nselector = "pkg:app.*"\nexec = "skip"\n', path="a.toml")
    b = write_filter('[[scope.rules]]\nselector = "pkg:app.api"\nexec = "trace"\n', path="b.toml")
    chain = chain_of(a, b)
    assert decide(chain, "app.api").trace and not decide(chain, "app.db").trace
    chain = chain_of(b, a)
    assert not decide(chain, "app.api").trace


def test_rule_exec_inherit_changes_nothing(write_filter, chain_of):
    path = write_filter(
        '[[scope.rules]]\nselector = "pkg:app"\nexec = "skip"\n'
        '[[scope.rules]]\nselector = "pkg:app"\nexec = "inherit"\n'
    )
    assert not decide(chain_of(path), "app").trace


def test_default_skip_with_an_allow_list(write_filter, chain_of):
    path = write_filter('[[scope.rules]]\nselector = "pkg:app.*"\nexec = "trace"\n', exec_="skip")
    chain = chain_of(path)
    assert decide(chain, "app.x").trace
    assert not decide(chain, "requests.api").trace
    # builtin-default has no "trace site-packages" rule that could undo a user's skip
    site = "/venv/lib/python3.11/site-packages/requests/api.py"
    assert not decide(chain, "requests.api", filename=site).trace


def test_file_selectors_are_relative_to_the_project_root(tmp_path, write_filter, chain_of):
    project = write_filter(
        '[[scope.rules]]\nselector = "file:src/app/*.py"\nexec = "skip"\n',
        path="proj/.codetracer/trace-filter.toml",
    )
    loose = write_filter('[[scope.rules]]\nselector = "file:gen/**"\nexec = "skip"\n', path="conf/loose.toml")
    chain = chain_of(loose, script_dir=tmp_path / "proj")
    assert names(chain)[1] == filters.load_filter_file(project).name
    root = tmp_path / "proj"
    assert not decide(chain, "app.m", filename=str(root / "src/app/m.py")).trace
    assert decide(chain, "app.sub.m", filename=str(root / "src/app/sub/m.py")).trace
    # loose.toml's root is its own directory (conf/), not the project
    assert not decide(chain, "g", filename=str(tmp_path / "conf/gen/x/g.py")).trace
    assert decide(chain, "g", filename=str(root / "gen/g.py")).trace
    # files outside a filter's root never match its file: selectors
    assert decide(chain, "m", filename=str(tmp_path / "elsewhere/src/app/m.py")).trace
    assert chain.relative_paths(str(root / "src/app/m.py"))[1:] == ("src/app/m.py", None)


def test_file_selectors_see_through_symlinks(tmp_path, write_filter, chain_of):
    real = tmp_path / "real"
    (real / "src").mkdir(parents=True)
    link = tmp_path / "link"
    link.symlink_to(real)
    path = write_filter('[[scope.rules]]\nselector = "file:src/*.py"\nexec = "skip"\n',
                        path="real/.codetracer/trace-filter.toml")
    chain = chain_of(script_dir=link)
    assert chain.files[1].path == str(path.resolve())
    assert not decide(chain, "m", filename=str(link / "src/m.py")).trace


def test_synthetic_filenames_are_never_traced(write_filter, chain_of):
    path = write_filter('[[scope.rules]]\nselector = "obj:*"\nexec = "trace"\n')
    chain = chain_of(path)
    for filename in ("<string>", "<frozen importlib._bootstrap>", "<stdin>", ""):
        assert not chain.decide(module="__main__", qualname="f", filename=filename).trace


def test_unknown_module(write_filter, chain_of):
    path = write_filter('[[scope.rules]]\nselector = "pkg:*"\nexec = "skip"\n')
    chain = chain_of(path)
    assert chain.decide(module=None, qualname="f", filename="/x/y.py").trace  # pkg: cannot match
    assert not chain.decide(module="m", qualname="f", filename="/x/y.py").trace


# -- builtin-default's scope rules ------------------------------------------------------------


@pytest.mark.parametrize(
    "module, filename, traced",
    [
        ("json.decoder", os.path.join(os.path.dirname(os.__file__), "json", "decoder.py"), False),
        ("os", os.__file__, False),
        ("mod", "/opt/py/lib/python3.12/mod.py", False),
        ("mod", "/opt/py/lib64/python3.13t/mod.py", False),
        ("requests.api", "/opt/py/lib/python3.12/site-packages/requests/api.py", True),
        ("requests.api", "/usr/lib/python3.11/dist-packages/requests/api.py", True),
        ("requests.api", "/usr/lib/python3/dist-packages/requests/api.py", True),
        ("_virtualenv", "/venv/lib/python3.12/site-packages/_virtualenv.py", False),
        ("_distutils_hack", "/venv/lib/python3.12/site-packages/_distutils_hack/__init__.py", False),
        ("_distutils_hack.override", "/venv/x/_distutils_hack/override.py", False),
        ("builtins", "/x/builtins.py", False),
        ("asyncio.events", "/custom/asyncio/events.py", False),
        ("concurrent.futures.thread", "/custom/concurrent/futures/thread.py", False),
        ("importlib.metadata", "/custom/importlib/metadata.py", False),
        ("threading", "/custom/threading.py", False),
        ("multiprocessing.pool", "/custom/multiprocessing/pool.py", False),
        ("selectors", "/custom/selectors.py", False),
        # asyncio.Runner's backport, which pytest-asyncio uses on 3.10
        ("backports.asyncio.runner.runner", "/venv/site-packages/backports/asyncio/runner/runner.py", False),
        ("backports.other", "/venv/site-packages/backports/other.py", True),
        ("importlib_metadata", "/venv/site-packages/importlib_metadata/__init__.py", True),
        ("rewind.session", "/anywhere/rewind/session.py", False),
        ("rewind_helpers", "/p/rewind_helpers.py", True),
        ("app", "/home/u/project/lib/app.py", True),
    ],
)
def test_builtin_default_scopes(chain_of, module, filename, traced):
    assert decide(chain_of(), module, filename=filename).trace is traced


@pytest.mark.parametrize(
    "path, skipped",
    [
        ("C:/Python311/Lib/os.py", True),
        ("C:/Users/me/AppData/Local/Programs/Python/Python312/Lib/json/decoder.py", True),
        ("C:/Python311/Lib/site-packages/app.py", False),
        ("C:/Users/me/proj/Lib/app.py", False),
        ("/home/me/python-stuff/lib/app.py", False),
    ],
)
def test_builtin_default_windows_stdlib_rule(path, skipped):
    # Windows paths cannot go through decide() on POSIX (abspath); test the rule itself.
    rule = next(r for r in filters.load_builtin("builtin-default").rules if "Windows" in (r.reason or ""))
    assert bool(rule.selector.matches(path)) is skipped


def test_rewind_own_files_are_skipped_whatever_their_module_name(chain_of):
    own = Path(filters.__file__).resolve().parent / "chain.py"
    assert not decide(chain_of(), "__main__", filename=str(own)).trace


def test_stdlib_found_through_sysconfig(chain_of, monkeypatch):
    import sysconfig

    from rewind.filters import chain as chain_module

    monkeypatch.setattr(sysconfig, "get_paths", lambda: {"stdlib": "/odd/layout/stdlib", "platstdlib": ""})
    rules = chain_module._host_rules(0)
    stdlib_rules = [r for r in rules if "odd" in r.selector.text]
    assert stdlib_rules and all(r.generated and r.exec == "skip" for r in rules)
    assert stdlib_rules[0].selector.matches("/odd/layout/stdlib/json/decoder.py")
    assert not stdlib_rules[0].selector.matches("/odd/layout/stdlib/site-packages/x.py")
    assert not stdlib_rules[0].selector.matches("/odd/layout/stdlibx/a.py")


def test_builtin_pytest(chain_of):
    chain = chain_of(framework="pytest")
    for module in ("pytest", "_pytest.python", "pluggy._hooks", "py", "py.path", "iniconfig", "packaging.version",
                   "xdist.plugin", "coverage.collector", "pytest_cov.plugin"):
        assert not decide(chain, module, filename=f"/venv/lib/python3.12/site-packages/{module}.py").trace, module
    for module, filename in (("test_app", "/p/test_app.py"), ("tests.test_x", "/p/tests/test_x.py"),
                             ("app_test", "/p/app_test.py"), ("conftest", "/p/conftest.py"),
                             ("app", "/p/app.py"), ("tests.helpers", "/p/tests/helpers.py")):
        assert decide(chain, module, filename=filename).trace, module


def test_builtin_unittest(chain_of):
    chain = chain_of(framework="unittest")
    assert not decide(chain, "unittest.case", filename="/custom/unittest/case.py").trace
    assert decide(chain, "tests.test_x", filename="/p/tests/test_x.py").trace


def test_project_rule_can_skip_test_helpers_in_framework_mode(write_filter, chain_of):
    path = write_filter('[[scope.rules]]\nselector = "pkg:tests.fixtures.*"\nexec = "skip"\n')
    chain = chain_of(path, framework="pytest")
    assert not decide(chain, "tests.fixtures.db", filename="/p/tests/fixtures/db.py").trace


# -- value decisions ---------------------------------------------------------------------------


def test_value_patterns_latest_rule_first_then_top_to_bottom(write_filter, chain_of):
    path = write_filter(
        """
        [[scope.rules]]
        selector = "pkg:app.*"
        [[scope.rules.value_patterns]]
        selector = "local:x*"
        action = "drop"
        [[scope.rules.value_patterns]]
        selector = "local:y"
        action = "redact"

        [[scope.rules]]
        selector = "pkg:app.core"
        [[scope.rules.value_patterns]]
        selector = "local:xa"
        action = "allow"
        [[scope.rules.value_patterns]]
        selector = "local:xa"
        action = "redact"
        """
    )
    chain = chain_of(path)
    core = decide(chain, "app.core")
    assert core.value_action("local", "xa") == "allow"  # latest rule, first pattern
    assert core.value_action("local", "xb") == "drop"  # falls through to the earlier rule
    assert core.value_action("local", "y") == "redact"
    assert core.value_action("local", "z") == "allow"  # value_default
    other = decide(chain, "app.other")
    assert other.value_action("local", "xa") == "drop"


def test_value_kinds_are_distinct(write_filter, chain_of):
    path = write_filter(
        """
        [[scope.rules]]
        selector = "obj:*"
        [[scope.rules.value_patterns]]
        selector = "arg:v"
        action = "drop"
        [[scope.rules.value_patterns]]
        selector = "local:v"
        action = "redact"
        [[scope.rules.value_patterns]]
        selector = "global:V"
        action = "drop"
        [[scope.rules.value_patterns]]
        selector = "attr:_cache"
        action = "drop"
        [[scope.rules.value_patterns]]
        selector = "ret:app.svc.*_raw"
        action = "redact"
        """
    )
    chain = chain_of(path)
    d = decide(chain, "app.svc", "Service.fetch_raw")
    assert d.value_action("arg", "v") == "drop"
    assert d.value_action("local", "v") == "redact"
    assert d.value_action("global", "v") == "allow" and d.value_action("global", "V") == "drop"
    assert d.value_action("attr", "_cache") == "drop" and d.value_action("local", "_cache") == "allow"
    # ret patterns match module.qualname; the name argument does not matter
    assert d.value_action("ret", "app.svc.Service.fetch_raw") == "redact"
    assert d.value_action("ret", "anything") == "redact"
    assert decide(chain, "app.svc", "Service.fetch").value_action("ret", "") == "allow"
    with pytest.raises(errors.UsageError):
        d.value_action("param", "v")


def test_value_default_last_match_wins(write_filter, chain_of):
    path = write_filter(
        '[[scope.rules]]\nselector = "pkg:app.*"\nvalue_default = "drop"\n'
        '[[scope.rules]]\nselector = "pkg:app.public"\nvalue_default = "allow"\n',
        value="redact",
    )
    chain = chain_of(path)
    assert decide(chain, "app.public").value_action("local", "x") == "allow"
    assert decide(chain, "app.private").value_action("local", "x") == "drop"
    assert decide(chain, "lib").value_action("local", "x") == "redact"


class TestBuiltinRedactionSurvives:
    """The fix: a later rule's patterns come first, but earlier rules' patterns still apply."""

    @pytest.fixture
    def project(self, write_filter):
        return write_filter(
            """
            [[scope.rules]]
            selector = "pkg:app.*"
            exec = "trace"
            value_default = "allow"
            [[scope.rules.value_patterns]]
            selector = "local:literal:user"
            action = "allow"
            """,
            path="proj/.codetracer/trace-filter.toml",
        )

    def test_survives_a_project_rule_with_its_own_patterns(self, project, chain_of):
        d = decide(chain_of(project), "app.auth", "login")
        assert d.value_action("arg", "password") == "redact"
        assert d.value_action("local", "api_key") == "redact"
        assert d.value_action("local", "user") == "allow"

    def test_survives_value_default_drop(self, write_filter, chain_of):
        path = write_filter('[[scope.rules]]\nselector = "pkg:app.*"\nvalue_default = "drop"\n')
        d = decide(chain_of(path), "app.auth")
        assert d.value_action("arg", "password") == "redact"
        assert d.value_action("arg", "username") == "drop"

    def test_a_later_rule_can_allow_a_name_explicitly(self, write_filter, chain_of):
        path = write_filter(
            '[[scope.rules]]\nselector = "pkg:app.tokens"\n'
            '[[scope.rules.value_patterns]]\nselector = "local:literal:token_count"\naction = "allow"\n'
        )
        chain = chain_of(path)
        assert decide(chain, "app.tokens").value_action("local", "token_count") == "allow"
        assert decide(chain, "app.other").value_action("local", "token_count") == "redact"

    def test_a_later_rule_can_drop_instead(self, write_filter, chain_of):
        path = write_filter('[[scope.rules]]\nselector = "obj:*"\n'
                            '[[scope.rules.value_patterns]]\nselector = "arg:password"\naction = "drop"\n')
        assert decide(chain_of(path), "app").value_action("arg", "password") == "drop"


# -- decisions are cheap -------------------------------------------------------------------------


def test_decisions_are_shared_and_value_actions_cached(chain_of):
    chain = chain_of()
    a = decide(chain, "app.a", "f", "/p/app/a.py")
    b = decide(chain, "app.b", "g", "/p/app/b.py")
    assert a is b  # same matching rules: one decision object, one value cache
    assert a.value_action("local", "password") == "redact"
    assert ("local", "password") in a._cache
    secret = decide(chain, "app.b", "get_secret", "/p/app/b.py")
    assert secret is not a and secret.value_action("ret", "") == "redact"


def test_a_new_chain_does_not_reuse_decisions(write_filter, chain_of):
    first = chain_of()
    second = chain_of(write_filter('[[scope.rules]]\nselector = "pkg:app"\nexec = "skip"\n'))
    assert decide(first, "app").trace and not decide(second, "app").trace


def _big_filter(path: Path, rules: int) -> Path:
    lines = ['[meta]\nname = "big"\nversion = 1\n[scope]\ndefault_exec = "trace"\ndefault_value_action = "allow"\n']
    shapes = ['pkg:my_app.mod{i}.*', 'file:glob:src/pkg{i}/**/*.py', 'obj:regex:^my_app\\\\.m{i}\\\\.(Foo|Bar)\\\\.',
              'pkg:literal:my_app.lit{i}', 'obj:{{my_app,other}}.m{i}.*.run']
    for i in range(rules):
        lines.append(f'[[scope.rules]]\nselector = "{shapes[i % len(shapes)].format(i=i)}"\n'
                     f'exec = "{"trace" if i % 2 else "skip"}"\nreason = "rule {i}"\n')
        if i % 3 == 0:
            lines.append(f'[[scope.rules.value_patterns]]\nselector = "local:tmp_{i}_*"\naction = "redact"\n')
            lines.append(f'[[scope.rules.value_patterns]]\nselector = "arg:regex:^x{i}"\naction = "drop"\n')
    path.write_text("\n".join(lines))
    return path


def test_a_200_rule_chain_keeps_every_rule_and_decides_by_them(tmp_path):
    # How fast such a chain loads is the benchmark's question (bench/filter_suite.py,
    # "chain200": under 20 ms cold), never a timed unit test's.
    chain = filters.build_chain([_big_filter(tmp_path / "big.toml", 200)], environ={})
    assert sum(1 for _, rule in chain.rules if (rule.reason or "").startswith("rule ")) == 200
    skipped = chain.decide(module="my_app.mod0.views", qualname="f", filename="/elsewhere/views.py")
    traced = chain.decide(module="my_app.lit3", qualname="f", filename="/elsewhere/lit3.py")
    assert not skipped.trace and traced.trace
    assert traced.value_action("local", "tmp_3_count") == "redact"
    assert traced.value_action("arg", "x3y") == "drop"
    assert traced.value_action("local", "tmp_6_count") == "allow"  # rule 6 is another scope's


# -- provenance and io -----------------------------------------------------------------------------


def test_provenance(write_filter, chain_of):
    path = write_filter("", name="mine")
    chain = chain_of(path, framework="pytest")
    default, pytest_entry, mine = chain.provenance()
    assert default["path"] == "<inline:builtin-default>" and pytest_entry["path"] == "<inline:builtin-pytest>"
    data = resources.files("rewind.filters.builtin").joinpath("default.toml").read_bytes()
    assert default["sha256"] == hashlib.sha256(data).hexdigest()
    assert mine == {"name": "mine", "version": 1, "path": str(path.resolve()),
                    "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def test_io_merge_last_section_wins(write_filter, chain_of):
    a = write_filter('[io]\ncapture = true\nstreams = ["stdout", "stderr"]\n', path="a.toml")
    b = write_filter("[io]\ncapture = false\n", path="b.toml")
    c = write_filter("", path="c.toml")
    assert chain_of().io is None
    assert chain_of(a, c).io == {"capture": True, "streams": ["stdout", "stderr"]}
    assert chain_of(a, b, c).io == {"capture": False, "streams": []}
