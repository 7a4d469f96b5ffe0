"""`pytest --rewind[=DIR]`: each test of a real suite recorded into its own trace
(docs/test-frameworks.md)."""
from __future__ import annotations

import json

import pytest

from process_testing import assert_all_valid, hook_env, metadata, paths_of, run, write_tree
from rewind_testing import HAS_MONITORING, ROOT, assert_valid, subprocess_env
from tracemodel import TraceView

try:
    import pytest_asyncio  # noqa: F401
    HAS_ASYNCIO_PLUGIN = True
except ImportError:
    HAS_ASYNCIO_PLUGIN = False

SUITE = {
    "pytest.ini": """
        [pytest]
        asyncio_default_fixture_loop_scope = function
        filterwarnings = ignore::pytest.PytestConfigWarning
    """,
    "tests/conftest.py": """
        import pytest

        @pytest.fixture
        def resource():
            data = {"items": [1, 2, 3]}
            yield data
            data["closed"] = True

        @pytest.fixture
        def broken():
            raise RuntimeError("fixture broke")
    """,
    "tests/test_math.py": """
        import pytest

        def add(a, b):
            return a + b

        def test_pass(resource):
            assert add(1, 2) == 3

        def test_fail(resource):
            total = add(2, 2)
            assert total == 5

        @pytest.mark.parametrize("x, y", [(1, 2), ("a/b", "c d")])
        def test_param(x, y):
            assert add(x, y)

        @pytest.mark.xfail(reason="known")
        def test_xfail():
            assert add(1, 1) == 3

        @pytest.mark.skip(reason="not today")
        def test_skipped():
            pass

        def test_setup_error(broken):
            pass

        class TestGroup:
            def test_method(self):
                assert add(3, 3) == 6
    """,
}

ASYNC_TEST = """
    import asyncio
    import pytest

    async def fetch(n):
        await asyncio.sleep(0)
        return n * 10

    @pytest.mark.asyncio
    async def test_async():
        assert await fetch(4) == 40
"""

EXPECTED = {
    "tests/test_math.py::test_pass": ("passed", "tests_test_math.py__test_pass"),
    "tests/test_math.py::test_fail": ("failed", "tests_test_math.py__test_fail"),
    "tests/test_math.py::test_param[1-2]": ("passed", "tests_test_math.py__test_param[1-2]"),
    "tests/test_math.py::test_param[a/b-c d]": ("passed", "tests_test_math.py__test_param[a_b-c_d]"),
    "tests/test_math.py::test_xfail": ("xfailed", "tests_test_math.py__test_xfail"),
    "tests/test_math.py::test_skipped": ("skipped", "tests_test_math.py__test_skipped"),
    "tests/test_math.py::test_setup_error": ("error", "tests_test_math.py__test_setup_error"),
    "tests/test_math.py::TestGroup::test_method": ("passed", "tests_test_math.py__TestGroup__test_method"),
}


@pytest.fixture
def suite(tmp_path):
    files = dict(SUITE)
    if HAS_ASYNCIO_PLUGIN:
        files["tests/test_async.py"] = ASYNC_TEST
    return write_tree(tmp_path, files)


@pytest.fixture(params=["monitoring", "settrace"] if HAS_MONITORING else ["settrace"])
def backend(request):
    return {"REWIND_BACKEND": request.param}


def pytest_run(suite, *args, env=None):
    # -p pytest_rewind: the plugin as its entry point loads it, whether or not rewind is installed.
    return run(["-m", "pytest", "-p", "no:cacheprovider", "-p", "pytest_rewind", *args], cwd=suite,
               env=subprocess_env(env))


def index(root):
    with open(root / "rewind-index.json", encoding="utf-8") as f:
        return {t["nodeid"]: t for t in json.load(f)["tests"]}


def test_each_test_gets_its_own_trace(suite, backend):
    plain = pytest_run(suite, "-q", "tests")
    rec = pytest_run(suite, "-q", "--rewind=traces", "tests", env=backend)
    assert rec.returncode == plain.returncode == 1
    root = suite / "traces"
    tests = index(root)
    expected = dict(EXPECTED)
    if HAS_ASYNCIO_PLUGIN:
        expected["tests/test_async.py::test_async"] = ("passed", "tests_test_async.py__test_async")
    assert {k: v["outcome"] for k, v in tests.items()} == {k: o for k, (o, _) in expected.items()}
    for nodeid, (outcome, name) in expected.items():
        assert tests[nodeid]["trace_dir"] == str(root / name)
        meta = metadata(root / name)
        assert meta["test"] == {"nodeid": nodeid, "outcome": outcome}
        assert meta["program"] == nodeid
        assert [f["name"] for f in meta["trace_filter"]["filters"]][:2] == ["builtin-default", "builtin-pytest"]
    assert len(assert_all_valid(root)) == len(expected)

    # Only the suite's own code: nothing of pytest, pluggy or rewind.
    for name in ("tests_test_math.py__test_fail", "tests_test_math.py__test_pass"):
        paths = paths_of(root / name)
        assert paths[0] == str(suite / "tests" / "test_math.py")
        assert set(paths) <= {str(suite / "tests" / "test_math.py"), str(suite / "tests" / "conftest.py")}

    # The summary names the trace of each failing test; pytest's own report is unchanged.
    assert "FAILED tests/test_math.py::test_fail -> traces/tests_test_math.py__test_fail" in rec.stdout
    assert "ERROR tests/test_math.py::test_setup_error -> traces/tests_test_math.py__test_setup_error" in rec.stdout
    assert plain.stdout.splitlines()[-1].split(" in ")[0] == rec.stdout.splitlines()[-1].split(" in ")[0]


def test_fixture_setup_and_teardown_are_in_the_test_trace(suite):
    rec = pytest_run(suite, "-q", "--rewind=traces", "tests/test_math.py::test_fail")
    assert rec.returncode == 1
    view = TraceView(str(suite / "traces" / "tests_test_math.py__test_fail"))
    # The generator fixture: set up (runs to its yield), the test, then torn down (resumed).
    assert [c.function for c in view.calls if c.depth == 1] == ["resource", "test_fail", "resource"]
    assert view.calls_of("add")[0].returned == 4
    setup, teardown = view.calls_of("resource")
    assert setup.returned == [("items", [1, 2, 3])] and teardown.returned is None and teardown.closed
    if HAS_MONITORING:  # (the settrace backend misses the first line after a resumption)
        assert view.steps_in("resource")[-1].line == 7
    # The trace ends in error: status 1, pytest's failure report as the Error event.
    assert view.toplevel.returned == 1
    assert view.metadata["process_exit_status"] == {"code": 1, "label": "uncaught AssertionError"}
    (error,) = view.errors
    assert "assert 4 == 5" in error["content"]


def test_passing_test_trace(suite):
    rec = pytest_run(suite, "-q", "--rewind=traces", "tests/test_math.py::test_pass")
    assert rec.returncode == 0, rec.stdout
    view = TraceView(str(suite / "traces" / "tests_test_math.py__test_pass"))
    assert view.toplevel.returned == 0 and not view.errors
    assert view.calls_of("test_pass")[0].args == {"resource": [("items", [1, 2, 3])]}
    assert "rewind: 1 trace in" in rec.stdout


@pytest.mark.skipif(not HAS_ASYNCIO_PLUGIN, reason="pytest-asyncio is not installed")
def test_async_test(suite):
    rec = pytest_run(suite, "-q", "--rewind=traces", "tests/test_async.py")
    assert rec.returncode == 0, rec.stdout
    view = TraceView(str(suite / "traces" / "tests_test_async.py__test_async"))
    assert view.calls_of("fetch")[-1].returned == 40
    assert view.calls_of("test_async")
    assert all("asyncio" not in p for p in paths_of(suite / "traces" / "tests_test_async.py__test_async"))


def test_failed_only(suite):
    rec = pytest_run(suite, "-q", "--rewind=traces", "--rewind-failed-only", "tests")
    assert rec.returncode == 1
    root = suite / "traces"
    kept = {d.name for d in assert_all_valid(root)}
    assert kept == {"tests_test_math.py__test_fail", "tests_test_math.py__test_setup_error"}
    tests = index(root)
    assert tests["tests/test_math.py::test_pass"]["trace_dir"] is None
    assert "rewind: 2 traces in" in rec.stdout


def test_exitfirst(suite):
    rec = pytest_run(suite, "-q", "-x", "--rewind=traces", "tests/test_math.py")
    assert rec.returncode == 1
    assert set(index(suite / "traces")) == {"tests/test_math.py::test_pass", "tests/test_math.py::test_fail"}
    assert len(assert_all_valid(suite / "traces")) == 2


def test_bare_flag_uses_the_default_directory_and_keeps_the_test_path(suite):
    rec = pytest_run(suite, "-q", "--rewind", "tests/test_math.py::test_pass")
    assert rec.returncode == 0, rec.stdout + rec.stderr
    assert_valid(suite / "rewind-traces" / "tests_test_math.py__test_pass")
    assert set(index(suite / "rewind-traces")) == {"tests/test_math.py::test_pass"}


def test_inert_without_the_flag(suite):
    write_tree(suite, {"tests/test_probe.py": """
        import sys

        def test_probe():
            assert "rewind" not in sys.modules
    """})
    rec = pytest_run(suite, "-q", "tests/test_probe.py")
    assert rec.returncode == 0, rec.stdout
    assert "rewind" not in rec.stdout
    assert not (suite / "rewind-traces").exists()


def test_refused_when_the_process_is_already_recorded(suite):
    rec = run(["-m", "rewind", "-o", "whole", "--pytest", "-p", "no:cacheprovider", "-p", "pytest_rewind",
               "--rewind=traces", "tests/test_math.py::test_pass"], cwd=suite, env=subprocess_env())
    assert rec.returncode == 4  # pytest's usage error, propagated
    assert "already recorded" in rec.stderr
    assert not (suite / "traces").exists()


def test_auto_start_and_the_plugin_do_not_mix(suite):
    env = hook_env(suite, {"CODETRACER_TRACE": "auto"})
    rec = run(["-m", "pytest", "-p", "no:cacheprovider", "-p", "pytest_rewind", "--rewind=traces",
               "tests/test_math.py::test_pass"], cwd=suite, env=env)
    assert rec.returncode == 4 and "already recorded" in rec.stderr


def test_trace_dir_names():
    from rewind.pytest_plugin import MAX_NAME, trace_dir_name
    assert trace_dir_name("tests/test_a.py::TestX::test_y[1-a/b]") == "tests_test_a.py__TestX__test_y[1-a_b]"
    assert trace_dir_name("test_a.py::test[é ü]") == "test_a.py__test[_]"
    assert trace_dir_name("../x.py::t") == "_x.py__t"
    long = trace_dir_name("t.py::test[%s]" % ("x" * 500))
    assert len(long) == MAX_NAME and long != trace_dir_name("t.py::test[%s]" % ("x" * 501))


def test_plugin_is_registered_by_the_package():
    text = (ROOT / "pyproject.toml").read_text()
    assert '[project.entry-points.pytest11]\npytest_rewind = "pytest_rewind"' in text
