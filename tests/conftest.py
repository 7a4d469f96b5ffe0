"""Fixtures shared by the tests (helpers live in rewind_testing.py, so that test modules
never import a conftest by name)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS.parent / "src"))
sys.path.insert(0, str(TESTS))

from rewind_testing import HAS_MONITORING, Recording, assert_valid, run_rewind  # noqa: E402


@pytest.fixture
def record(tmp_path):
    """record(script_or_args, *program_args, options=[...], env={...}) -> Recording (validated)."""
    counter = [0]

    def _record(script, *program_args, options=(), env=None, cwd=None, input=None, validate=True,
                expect_trace=True) -> Recording:
        counter[0] += 1
        out = tmp_path / ("trace%d" % counter[0])
        target = [str(script)] if not isinstance(script, (list, tuple)) else list(script)
        proc = run_rewind(["-o", str(out), *options, *target, *program_args], cwd=Path(cwd or tmp_path),
                          env=env, input=input)
        if expect_trace:
            assert out.is_dir(), "no trace written; stderr:\n%s" % proc.stderr
            if validate:
                assert_valid(out)
        return Recording(proc, out)

    return _record


@pytest.fixture(params=["monitoring", "settrace"] if HAS_MONITORING else ["settrace"])
def backend(request):
    """Run a test on each interpreter hook this Python has."""
    return {"REWIND_BACKEND": request.param}


@pytest.fixture(params=["python", "c"], ids=["python-core", "c-core"])
def core(request):
    """Run a test with each recorder core (REWIND_CORE); the C one where it is built (and
    always where CI requires it: REWIND_REQUIRE_ACCELERATOR=1)."""
    if request.param == "c":
        from rewind import accelerator
        if not accelerator.available() and os.environ.get("REWIND_REQUIRE_ACCELERATOR") != "1":
            pytest.skip("the C accelerator is not built here")
    return {"REWIND_CORE": request.param}
