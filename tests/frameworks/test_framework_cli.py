"""`rewind --pytest ARGS...` / `rewind --unittest ARGS...`: a test suite run under recording
with the builtin framework filter; its output and exit status unchanged
(docs/test-frameworks.md)."""
from __future__ import annotations

import re

import pytest

from process_testing import metadata, paths_of, run, write_tree
from rewind_testing import assert_valid, subprocess_env
from tracemodel import TraceView

PYTEST_SUITE = {
    "pytest.ini": """
        [pytest]
        asyncio_default_fixture_loop_scope = function
        filterwarnings = ignore::pytest.PytestConfigWarning
    """,
    "tests/conftest.py": """
        import pytest

        @pytest.fixture
        def base():
            return 10
    """,
    "tests/test_calc.py": """
        def scale(x, k):
            return x * k

        def test_ok(base):
            assert scale(base, 2) == 20

        def test_bad(base):
            assert scale(base, 3) == 31
    """,
}

UNITTEST_SUITE = {
    "test_units.py": """
        import unittest

        def halve(n):
            return n // 2

        class HalveTest(unittest.TestCase):
            def test_even(self):
                self.assertEqual(halve(8), 4)

            def test_odd(self):
                self.assertEqual(halve(7), 4)
    """,
}

_TIMING = re.compile(r" in [0-9.]+s")


def same_output(a: str, b: str) -> bool:
    return _TIMING.sub(" in Ns", a) == _TIMING.sub(" in Ns", b)


def rewind(args, cwd, env=None):
    return run(["-m", "rewind", *args], cwd=cwd, env=subprocess_env(env))


def test_pytest_suite(tmp_path):
    suite = write_tree(tmp_path, PYTEST_SUITE)
    plain = run(["-m", "pytest", "-p", "no:cacheprovider", "-q", "tests"], cwd=suite, env=subprocess_env())
    rec = rewind(["-o", "out", "--pytest", "-p", "no:cacheprovider", "-q", "tests"], suite)
    # The suite's own status (1: a test failed) and output, not rewind's.
    assert rec.returncode == plain.returncode == 1
    assert same_output(rec.stdout, plain.stdout)
    assert "1 failed, 1 passed" in rec.stdout
    assert rec.stderr == plain.stderr
    assert_valid(suite / "out")
    view = TraceView(str(suite / "out"))
    assert [c.returned for c in view.calls_of("scale")] == [20, 30]
    assert view.calls_of("test_ok") and view.calls_of("test_bad") and view.calls_of("base")
    meta = view.metadata
    assert [f["name"] for f in meta["trace_filter"]["filters"]] == ["builtin-default", "builtin-pytest"]
    assert meta["program"] == "pytest" and meta["args"] == ["-p", "no:cacheprovider", "-q", "tests"]
    assert meta["process_exit_status"]["code"] == 1
    assert all("/_pytest/" not in p and "/pluggy/" not in p for p in paths_of(suite / "out"))


def test_pytest_suite_passing_and_options_after_the_flag(tmp_path):
    suite = write_tree(tmp_path, PYTEST_SUITE)
    # Everything after --pytest is pytest's, even options rewind also has (-o).
    rec = rewind(["--trace-dir", "out", "--pytest", "-p", "no:cacheprovider", "-q",
                  "-o", "console_output_style=classic", "tests/test_calc.py::test_ok"], suite)
    assert rec.returncode == 0, rec.stderr
    assert "1 passed" in rec.stdout
    assert_valid(suite / "out")
    assert metadata(suite / "out")["process_exit_status"] == {"code": 0, "label": "ok"}


def test_exit_status_can_follow_the_contract_default(tmp_path):
    suite = write_tree(tmp_path, PYTEST_SUITE)
    rec = rewind(["-o", "out", "--no-propagate-script-exit", "--pytest", "-p", "no:cacheprovider", "-q", "tests"],
                 suite)
    assert rec.returncode == 0
    assert "the program exited with status 1" in rec.stderr
    rec = rewind(["-o", "out", "--pytest", "-p", "no:cacheprovider", "-q", "tests"], suite,
                 env={"CODETRACER_PROPAGATE_SCRIPT_EXIT": "0"})
    assert rec.returncode == 0
    assert_valid(suite / "out")


def test_no_framework_filters_and_the_project_filter(tmp_path):
    suite = write_tree(tmp_path, PYTEST_SUITE)
    write_tree(suite, {".codetracer/trace-filter.toml": """
        [meta]
        name = "only-tests"
        version = 1

        [scope]
        default_exec = "skip"
        default_value_action = "allow"

        [[scope.rules]]
        selector = "pkg:{test_*,conftest}"
        exec = "trace"
    """})
    rec = rewind(["-o", "out", "--no-framework-filters", "--pytest", "-p", "no:cacheprovider", "-q", "tests"], suite)
    assert rec.returncode == 1
    assert_valid(suite / "out")
    meta = metadata(suite / "out")
    # The project filter is found from where the suite runs.
    assert [f["name"] for f in meta["trace_filter"]["filters"]] == ["builtin-default", "only-tests"]
    assert TraceView(str(suite / "out")).calls_of("scale")


def test_unittest_suite(tmp_path):
    suite = write_tree(tmp_path, UNITTEST_SUITE)
    plain = run(["-m", "unittest", "-v", "test_units"], cwd=suite, env=subprocess_env())
    rec = rewind(["-o", "out", "--unittest", "-v", "test_units"], suite)
    assert rec.returncode == plain.returncode == 1
    assert rec.stdout == plain.stdout == ""
    assert same_output(rec.stderr, plain.stderr)
    assert "FAILED (failures=1)" in rec.stderr
    assert_valid(suite / "out")
    view = TraceView(str(suite / "out"))
    assert sorted(c.returned for c in view.calls_of("halve")) == [3, 4]
    assert view.calls_of("HalveTest.test_odd")  # a qualified name on 3.10 too (qualnames.py)
    meta = view.metadata
    assert [f["name"] for f in meta["trace_filter"]["filters"]] == ["builtin-default", "builtin-unittest"]
    assert meta["process_exit_status"] == {"code": 1, "label": "exit"}
    toplevel, *paths = paths_of(suite / "out")  # the toplevel is unittest/__main__.py, the target
    assert toplevel.endswith("__main__.py") and all("/unittest/" not in p for p in paths)


def test_unittest_discovery_passing(tmp_path):
    source = UNITTEST_SUITE["test_units.py"].replace("halve(7), 4", "halve(7), 3")
    suite = write_tree(tmp_path, {"test_units.py": source})
    rec = rewind(["-o", "out", "--unittest"], suite)
    assert rec.returncode == 0, rec.stderr
    assert "Ran 2 tests" in rec.stderr and "OK" in rec.stderr
    assert_valid(suite / "out")


@pytest.mark.parametrize("argv, expected", [
    (["--pytest"], (["--pytest"], None, "pytest", [])),
    (["-o", "x", "--pytest", "-x", "-k", "foo", "--trace-dir", "y"],
     (["-o", "x", "--pytest"], None, "pytest", ["-x", "-k", "foo", "--trace-dir", "y"])),
    (["--format", "json", "--unittest", "discover", "-s", "tests"],
     (["--format", "json", "--unittest"], None, "unittest", ["discover", "-s", "tests"])),
    (["script.py", "--pytest"], ([], "script.py", None, ["--pytest"])),
])
def test_split_record_argv(argv, expected):
    from rewind.cli import build_record_parser, split_record_argv
    assert split_record_argv(argv) == expected
    options, _, module, _ = expected
    if module:
        args = build_record_parser().parse_args(options + ["-m", module])
        assert (args.framework, args.module) == (module, module)
