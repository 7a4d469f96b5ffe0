"""The performance promises, checked by counting (never by timing): a skipped scope costs
nothing after its first event (sys.monitoring stops calling rewind for that code; settrace
gives it no local trace function), and decisions belong to one session (a second session
in the same process with another filter records differently). These run rewind.start/stop
inside a subprocess, so the counting patches never touch the test process."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from fe2e_support import REDACTED, call, filter_meta, last_values, write_filter, write_tree

from rewind import accelerator
from rewind_testing import HAS_MONITORING, assert_valid, run_python
from tracemodel import TraceView

HOT = """
    TRACES = []


    def inner(i):
        return i + 1


    def probe():
        import sys
        TRACES.append(sys._getframe().f_trace)


    def gen(n):
        for i in range(n):
            yield i


    def spin(n):
        t = 0
        for _ in range(n):
            t = inner(t)
        t += sum(gen(3))
        probe()
        return t
    """

# Counts, per callback and per code object of hot.py, how often the interpreter calls into
# rewind's backend. Wrapping a callback would add a frame (the callbacks take the user's
# frame with sys._getframe(1)), so the count is taken where the callbacks start: reading
# `self.recorder`, turned into a counting property (callbacks that bind the recorder in a
# closure are not counted). On 3.12+ the driver also reports, from the interpreter itself,
# which events rewind still has switched on for each code object of hot.py while recording.
COUNTING_DRIVER = """
    import json
    import os
    import sys

    import hot
    import rewind
    from rewind.hooks import settrace

    HOT = os.path.abspath(hot.__file__)
    counts = {}


    def count_reads(cls):
        def get(self):
            caller = sys._getframe(1)
            code = caller.f_locals.get("code")
            if code is None and "frame" in caller.f_locals:
                code = caller.f_locals["frame"].f_code
            if code is not None and code.co_filename == HOT:
                per_code = counts.setdefault(caller.f_code.co_name, {})
                per_code[code.co_name] = per_code.get(code.co_name, 0) + 1
            return self.__dict__["_counted_recorder"]

        def set(self, value):
            self.__dict__["_counted_recorder"] = value

        cls.recorder = property(get, set)


    if hasattr(sys, "monitoring"):
        from rewind.hooks import monitoring
        count_reads(monitoring.MonitoringBackend)
    count_reads(settrace.SettraceBackend)

    rewind.start(sys.argv[1], trace_filter=sys.argv[2:] or None)
    total = hot.spin(200)
    state = {}
    tools = [i for i in range(6) if hasattr(sys, "monitoring") and sys.monitoring.get_tool(i) == "rewind"]
    if tools:  # the sys.monitoring backend
        import dis
        mon = sys.monitoring
        tool = tools[0]
        for fn in (hot.spin, hot.inner, hot.gen, hot.probe):
            code = fn.__code__
            state[code.co_name] = {
                "local_events": mon.get_local_events(tool, code),
                "instrumented": sorted({i.opname for i in dis.get_instructions(code, adaptive=True)
                                        if i.opname.startswith("INSTRUMENTED_")}),
            }
    rewind.stop()
    print(json.dumps({"counts": counts, "state": state, "f_trace_none": [t is None for t in hot.TRACES],
                      "total": total}))
    """

SESSIONS_DRIVER = """
    import json
    import sys

    from pathlib import Path

    import hot
    import rewind

    for i, spec in enumerate(json.loads(sys.argv[1])):
        if isinstance(spec, str) and spec.startswith("path:"):
            spec = Path(spec[len("path:"):])
        rewind.start("out%d" % i, trace_filter=spec)
        hot.spin(3)
        rewind.stop()
    """

SKIP_HOT = """
    [[scope.rules]]
    selector = "pkg:hot"
    exec = "skip"
    """
REDACT_T = """
    [[scope.rules]]
    selector = "obj:hot.spin"

    [[scope.rules.value_patterns]]
    selector = "local:t"
    action = "redact"
    """


@pytest.fixture
def hot(tmp_path) -> Path:
    root = write_tree(tmp_path / "hot", {"hot.py": HOT, "count.py": COUNTING_DRIVER, "sessions.py": SESSIONS_DRIVER})
    write_filter(root / "skip-hot.toml", "skip-hot", SKIP_HOT)
    write_filter(root / "redact-t.toml", "redact-t", REDACT_T)
    return root


def run_counting(hot: Path, backend: dict, *filters: str) -> tuple[dict, TraceView]:
    proc = run_python([str(hot / "count.py"), "out", *filters], cwd=hot, env=backend)
    assert proc.returncode == 0, proc.stderr
    assert_valid(hot / "out")
    return json.loads(proc.stdout), TraceView(str(hot / "out"))


@pytest.mark.skipif(not HAS_MONITORING, reason="sys.monitoring needs 3.12+")
def test_monitoring_skipped_code_reports_only_its_first_event(hot):
    traced, v = run_counting(hot, {"REWIND_BACKEND": "monitoring"})
    assert len(v.calls_of("inner")) == 200
    for name in ("spin", "inner", "gen", "probe"):
        assert traced["state"][name]["local_events"] != 0, name
        assert "INSTRUMENTED_RESUME" in traced["state"][name]["instrumented"], name

    result, v = run_counting(hot, {"REWIND_BACKEND": "monitoring"}, "skip-hot.toml")
    assert result["total"] == 203
    assert not any(c.path.endswith("hot.py") for c in v.calls)
    assert filter_meta(v)["stats"]["scopes_skipped"] >= 4
    # The interpreter has nothing of rewind's left in the skipped code: PY_START was
    # disabled there (DISABLE) and no local event (LINE, PY_RETURN, ...) was ever set.
    for name in ("spin", "inner", "gen", "probe"):
        assert result["state"][name] == {"local_events": 0, "instrumented": []}, name
    # And rewind's PY_START callback ran once per skipped code object, although inner ran
    # 200 times and the generator was created, resumed and finished.
    if traced["counts"].get("_on_start", {}).get("inner") == 200:  # the counting hook still sees it
        assert result["counts"] == {"_on_start": {"spin": 1, "inner": 1, "gen": 1, "probe": 1}}


def test_settrace_returns_no_local_trace_function_for_skipped_code(hot):
    result, v = run_counting(hot, {"REWIND_BACKEND": "settrace"}, "skip-hot.toml")
    assert result["total"] == 203
    counts = result["counts"]
    # No local trace function for the skipped frame: no line/return/exception events reach
    # rewind; only the global function, once per new frame (unavoidable with settrace).  The
    # C core answers those calls itself once the code object is decided: the Python
    # `_global` then sees only the first.
    assert result["f_trace_none"] == [True]
    assert "_local" not in counts
    c_core = os.environ.get("REWIND_CORE") != "python" and accelerator.available()
    assert counts["_global"]["inner"] == (1 if c_core else 200)
    assert not any(c.path.endswith("hot.py") for c in v.calls)

    traced, v = run_counting(hot, {"REWIND_BACKEND": "settrace"})
    assert traced["f_trace_none"] == [False]
    # A line and a return per call reached the local trace function (with the C core it
    # handles them without reading backend.recorder, so the trace itself is the count).
    inner = v.calls_of("inner")
    assert [c.returned for c in inner] == [c.args["i"] + 1 for c in inner] and len(inner) == 200
    assert len(v.steps_in("inner")) == 200


def run_sessions(hot: Path, backend: dict, specs: list) -> list[TraceView]:
    proc = run_python([str(hot / "sessions.py"), json.dumps(specs)], cwd=hot, env=backend)
    assert proc.returncode == 0, proc.stderr
    views = []
    for i in range(len(specs)):
        assert_valid(hot / ("out%d" % i))
        views.append(TraceView(str(hot / ("out%d" % i))))
    return views


def hot_functions(v: TraceView) -> set[str]:
    return {c.function for c in v.calls if c.path.endswith("hot.py")}


def test_skip_then_trace_in_a_second_session(hot, backend):
    skipped, traced = run_sessions(hot, backend, ["skip-hot.toml", None])
    assert hot_functions(skipped) == set()
    assert [f["name"] for f in filter_meta(skipped)["filters"]] == ["builtin-default", "skip-hot"]
    assert hot_functions(traced) == {"spin", "inner", "gen", "probe"}
    assert [f["name"] for f in filter_meta(traced)["filters"]] == ["builtin-default"]
    assert len(traced.calls_of("inner")) == 3
    assert call(traced, "spin").returned == 6


def test_trace_then_skip_in_a_second_session(hot, backend):
    traced, skipped = run_sessions(hot, backend, [None, "skip-hot.toml"])
    assert hot_functions(traced) == {"spin", "inner", "gen", "probe"}
    assert hot_functions(skipped) == set()
    assert not any(s.path.endswith("hot.py") for s in skipped.steps)


def test_value_decisions_are_not_reused_across_sessions(hot, backend):
    redacted, allowed, redacted_again = run_sessions(hot, backend, ["redact-t.toml", None, "redact-t.toml"])
    assert last_values(redacted, "spin")["t"] == REDACTED
    assert last_values(allowed, "spin")["t"] == 6
    assert last_values(redacted_again, "spin")["t"] == REDACTED
    first, again = (filter_meta(v)["stats"]["value_redactions"] for v in (redacted, redacted_again))
    assert first == again and first["local"] > 0
    assert filter_meta(allowed)["stats"]["value_redactions"] == {}


def test_api_trace_filter_forms_and_project_discovery(hot, backend):
    # str, pathlib.Path, a sequence, `::` inside an entry
    specs = ["redact-t.toml", "path:skip-hot.toml", ["redact-t.toml", "skip-hot.toml"],
             ["skip-hot.toml::redact-t.toml"]]
    by_str, by_path, by_list, chained = run_sessions(hot, backend, specs)
    assert [f["name"] for f in filter_meta(by_str)["filters"]] == ["builtin-default", "redact-t"]
    assert last_values(by_str, "spin")["t"] == REDACTED
    assert [f["name"] for f in filter_meta(by_path)["filters"]] == ["builtin-default", "skip-hot"]
    assert hot_functions(by_path) == set()
    assert [f["name"] for f in filter_meta(by_list)["filters"]] == ["builtin-default", "redact-t", "skip-hot"]
    assert hot_functions(by_list) == set()
    assert [f["name"] for f in filter_meta(chained)["filters"]] == ["builtin-default", "skip-hot", "redact-t"]
    assert hot_functions(chained) == set()

    # The project filter is discovered from the directory of the code that calls start().
    write_filter(hot / ".codetracer" / "trace-filter.toml", "hot-project", REDACT_T)
    (project,) = run_sessions(hot, backend, [None])
    assert [f["name"] for f in filter_meta(project)["filters"]] == ["builtin-default", "hot-project"]
    assert last_values(project, "spin")["t"] == REDACTED
