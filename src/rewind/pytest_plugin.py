"""`pytest --rewind[=DIR]`: one trace per test (docs/test-frameworks.md).

Registered by the tiny `pytest_rewind` entry-point module only when `--rewind` is given.
Each test item gets its own session, started before its fixtures are set up and finished
after they are torn down (`pytest_runtest_protocol`), with the builtin-pytest filter, into
`DIR/<test id, sanitised>`.  A failing test's trace ends in error: `<toplevel>` returns 1
and an Error event holds pytest's failure report.  `--rewind-failed-only` removes the traces
of tests that did not fail.  At the end, `DIR/rewind-index.json` lists every test with its
outcome and trace, and the terminal summary names the trace of each failing test.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil

import pytest

from . import api, diagnostics, errors, filters
from .policy import ENV_CAPTURE_IO, resolve_policy
from .session import Session

INDEX_FILE = "rewind-index.json"
MAX_NAME = 120
_UNSAFE = re.compile(r"[^A-Za-z0-9._\-\[\]=+,]+")
FAILING = ("failed", "error")


def trace_dir_name(nodeid: str) -> str:
    """`tests/test_a.py::TestX::test_y[1-a/b]` -> `tests_test_a.py__TestX__test_y[1-a_b]`:
    path separators and anything a shell or a file system dislikes become `_`; a long id is
    cut and ends with a hash of the whole id."""
    name = _UNSAFE.sub("_", nodeid.replace("::", "__")).lstrip(".-") or "test"
    if len(name) > MAX_NAME:
        name = name[:MAX_NAME - 11] + "-" + _digest(nodeid)
    return name


def _digest(nodeid: str) -> str:
    return hashlib.sha1(nodeid.encode("utf-8", "surrogatepass")).hexdigest()[:10]


class _TestRecording:
    def __init__(self, nodeid: str, trace_dir: str):
        self.nodeid = nodeid
        self.trace_dir = trace_dir
        self.session: Session | None = None
        self.outcome = "passed"
        self.failed = False
        self.exception: BaseException | None = None
        self.report_text: str | None = None
        self.error: errors.RecorderError | None = None

    def note(self, report, call) -> None:
        wasxfail = hasattr(report, "wasxfail")
        if report.failed:
            if not self.failed:
                self.exception = call.excinfo.value if call.excinfo is not None else None
                self.report_text = report.longreprtext or None
            self.failed = True
            if report.when == "call":
                self.outcome = "failed"
            elif self.outcome != "failed":
                self.outcome = "error"
        elif report.when == "call" or (report.when == "setup" and report.skipped):
            if report.skipped:
                self.outcome = "xfailed" if wasxfail else "skipped"
            elif wasxfail:
                self.outcome = "xpassed"

    def metadata_hook(self, meta: dict) -> None:
        meta["test"] = {"nodeid": self.nodeid, "outcome": self.outcome}


class RewindPlugin:
    def __init__(self, config: pytest.Config):
        self.config = config
        base = str(getattr(config, "invocation_params", None) and config.invocation_params.dir or os.getcwd())
        self.root = os.path.abspath(os.path.join(base, config.getoption("rewind_dir")))
        self.failed_only = bool(config.getoption("rewind_failed_only"))
        if api.is_tracing():
            raise pytest.UsageError(
                "rewind: --rewind records each test on its own, but this process is already recorded "
                "(rewind --pytest, CODETRACER_TRACE or rewind.start()): use one or the other")
        overrides = {}
        if not os.environ.get(ENV_CAPTURE_IO, "").strip() and config.getoption("capture", "fd") != "no":
            # pytest captures the tests' output itself (and swaps sys.stdout around each
            # phase): recording it too is only meaningful with -s.
            overrides["io_capture"] = "off"
        try:
            self.policy = resolve_policy(overrides, source="api")
            diagnostics.setup_logging(self.policy)
            self.format = os.environ.get("CODETRACER_FORMAT") or "json"
            # A bad filter stops the run before any test, not once per test.
            filters.build_chain([], script_dir=str(config.rootpath), framework="pytest", environ=os.environ)
        except errors.RecorderError as err:
            raise pytest.UsageError("rewind: %s" % err) from err
        self.results: list[dict] = []
        self.errors: list[tuple[str, errors.RecorderError]] = []
        self.names: dict[str, str] = {}
        self.current: _TestRecording | None = None

    # -- per test ----------------------------------------------------------------------------

    def _name_for(self, nodeid: str) -> str:
        name = trace_dir_name(nodeid)
        owner = self.names.setdefault(name, nodeid)
        if owner != nodeid:  # two ids that sanitise alike
            name = "%s-%s" % (name[:MAX_NAME - 11], _digest(nodeid))
            self.names[name] = nodeid
        return name

    @pytest.hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_runtest_protocol(self, item, nextitem):
        test = self._begin(item)
        result = yield
        self._end(test, result)

    def _begin(self, item) -> _TestRecording:
        test = _TestRecording(item.nodeid, os.path.join(self.root, self._name_for(item.nodeid)))
        self.current = test
        path = os.path.abspath(str(getattr(item, "path", None) or item.fspath))
        session = Session(test.trace_dir, policy=self.policy, format=self.format, trace_filter=[],
                          activation_path=None, program=item.nodeid, args=[], script_dir=os.path.dirname(path),
                          framework="pytest", toplevel_path=path)
        session.metadata_hooks.append(test.metadata_hook)
        try:
            api.begin(session)
        except errors.RecorderError as err:
            test.error = err
            self.errors.append((item.nodeid, err))
            diagnostics.report_error(err, self.policy)
            return test
        test.session = session
        return test

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        result = yield
        test = self.current
        if test is not None and test.nodeid == item.nodeid:
            try:
                test.note(result.get_result(), call)
            except Exception:  # noqa: BLE001, S110 - another plugin's report failed: pytest says so
                pass

    def _end(self, test: _TestRecording, result) -> None:
        self.current = None
        session = test.session
        kept = None
        if session is not None:
            api.release(session)
            code, exc, text = 0, None, None
            if test.failed:
                code, exc, text = 1, test.exception, test.report_text
            interrupted = getattr(result, "excinfo", None)
            if interrupted is not None and isinstance(interrupted[1], KeyboardInterrupt):
                code, exc, text = 130, interrupted[1], None
                test.outcome = "interrupted"
            try:
                kept = session.stop(code, exc, text)
            except errors.RecorderError as err:
                test.error = err
                self.errors.append((test.nodeid, err))
                diagnostics.report_error(err, self.policy)
            if session.failed is not None and test.error is None:
                test.error = session.failed
                self.errors.append((test.nodeid, session.failed))
            if kept and self.failed_only and test.outcome not in FAILING:
                shutil.rmtree(kept, ignore_errors=True)
                kept = None
            _release(session)
        self.results.append({"nodeid": test.nodeid, "outcome": test.outcome, "trace_dir": kept})

    # -- the end of the run ------------------------------------------------------------------

    def pytest_sessionfinish(self, session):
        if hasattr(self.config, "workerinput") or not self.results:
            return  # pytest-xdist workers: each test's trace is written, the index is not
        try:
            os.makedirs(self.root, exist_ok=True)
            with open(os.path.join(self.root, INDEX_FILE), "w", encoding="utf-8") as f:
                json.dump({"failed_only": self.failed_only, "tests": self.results}, f, indent=2)
                f.write("\n")
        except OSError as exc:
            diagnostics.report_error(errors.classify(exc, where="finish", path=self.root), self.policy)

    def pytest_terminal_summary(self, terminalreporter):
        tr = terminalreporter
        kept = [r for r in self.results if r["trace_dir"]]
        tr.write_sep("-", "rewind: %d trace%s in %s" % (len(kept), "" if len(kept) == 1 else "s", self.root))
        for r in self.results:
            if r["outcome"] in FAILING:
                where = os.path.relpath(r["trace_dir"]) if r["trace_dir"] else "no trace"
                tr.write_line("%s %s -> %s" % (r["outcome"].upper(), r["nodeid"], where))
        for nodeid, err in self.errors:
            tr.write_line("rewind error for %s: %s" % (nodeid, err))


def _release(session: Session) -> None:
    """A finished session still referenced (by its fork hook) keeps nothing big alive."""
    for attr in ("recorder", "sink", "backend", "io"):
        if getattr(session, attr, None) is not None:
            try:
                setattr(session, attr, None)
            except AttributeError:
                pass
