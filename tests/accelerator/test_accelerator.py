"""The C accelerator (rewind.accelerator._speedups) writes the same trace as the pure-Python
core, is the default when built, and REWIND_CORE is checked before the target runs.

Tests that need the extension skip when it is not built, unless REWIND_REQUIRE_ACCELERATOR=1
(CI sets it: its machines have a compiler, so a silently broken build must fail there).
"""
from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest

from rewind_testing import CORPUS, ROOT, assert_valid, per_thread_flow, run_python, run_rewind

HERE = Path(__file__).resolve().parent
PROGRAMS_DIR = HERE / "programs"
REQUIRED = os.environ.get("REWIND_REQUIRE_ACCELERATOR") == "1"


def _built() -> bool:
    from rewind import accelerator
    return accelerator.available()


BUILT = _built()
needs_c = pytest.mark.skipif(not BUILT and not REQUIRED,
                             reason="the C accelerator is not built here (setup.py could not compile it)")

# The corpus (minus the two whose end depends on timing) and this directory's own program.
CORPUS_PROGRAMS = sorted(p.name for p in CORPUS.glob("*.py") if p.name not in {"os_exit.py", "interrupt.py"})


def _masked_text(trace_dir: Path) -> str:
    """trace.json as written, with what differs between any two runs masked: object
    addresses (` at 0x...`) and OS thread idents in reprs."""
    text = (trace_dir / "trace.json").read_text()
    return re.sub(r"\b\d{9,}\b", "<ident>", re.sub(r" at 0x[0-9a-f]+", " at 0x?", text))


def _events(trace_dir: Path) -> list:
    return json.loads((trace_dir / "trace.json").read_text())


def _core(trace_dir: Path) -> str:
    return json.loads((trace_dir / "trace_metadata.json").read_text())["recorder"]["core"]


def _compare(record, backend, script: Path, cwd: Path, options=()) -> None:
    py = record(script, options=list(options), env={**backend, "REWIND_CORE": "python"}, cwd=cwd)
    c = record(script, options=list(options), env={**backend, "REWIND_CORE": "c"}, cwd=cwd)
    assert (_core(py.trace_dir), _core(c.trace_dir)) == ("python", "c")
    assert py.proc.returncode == c.proc.returncode
    assert py.stdout == c.stdout
    if script.name == "threads_prog.py":
        assert per_thread_flow(_events(py.trace_dir)) == per_thread_flow(_events(c.trace_dir))
    else:
        assert _masked_text(py.trace_dir) == _masked_text(c.trace_dir)
    for name in ("trace_paths.json",):
        assert (py.trace_dir / name).read_text() == (c.trace_dir / name).read_text()


@needs_c
@pytest.mark.parametrize("program", CORPUS_PROGRAMS)
def test_c_core_writes_the_python_core_trace(record, backend, program):
    _compare(record, backend, CORPUS / program, CORPUS)


@needs_c
def test_c_core_every_branch(record, backend):
    """Globals, int64 edges, big ints, del, closures, generators, redacted/dropped ints, IO."""
    _compare(record, backend, PROGRAMS_DIR / "hot.py", PROGRAMS_DIR, ["--trace-filter", "filter.toml"])


@needs_c
@pytest.mark.parametrize("bounds", [{}, {"CODETRACER_VALUE_MAX_DEPTH": "2", "CODETRACER_VALUE_MAX_ITEMS": "3"}],
                         ids=["default-bounds", "small-bounds"])
def test_c_core_writes_new_container_items_like_python(record, backend, bounds):
    """Scalars and tuples of scalars inside new containers (Core.item_texts), at and past the
    depth and item bounds, beside items the encoder writes itself."""
    # (a fixed hash seed: the sets of strings come out in the same order in both runs)
    _compare(record, {**backend, **bounds, "PYTHONHASHSEED": "0"}, PROGRAMS_DIR / "nested.py", PROGRAMS_DIR)


@needs_c
def test_c_core_calls_and_returns(record, backend):
    """Recorder.enter / leave and the PY_START / PY_RETURN callbacks in C: int64 edges, None,
    args and return values that take the Python path, hidden, redacted and dropped ones."""
    _compare(record, backend, PROGRAMS_DIR / "calls.py", PROGRAMS_DIR, ["--trace-filter", "filter.toml"])


@needs_c
def test_c_core_counts_calls_like_python(record, backend):
    """The filter counters (redacted / dropped args and return values) and event counts."""
    metadata = []
    for core in ("python", "c"):
        rec = record(PROGRAMS_DIR / "calls.py", options=["--trace-filter", "filter.toml"],
                     env={**backend, "REWIND_CORE": core}, cwd=PROGRAMS_DIR)
        meta = json.loads((rec.trace_dir / "trace_metadata.json").read_text())
        metadata.append((meta["events"], meta["metrics"], meta["trace_filter"]["stats"]))
    assert metadata[0] == metadata[1]
    assert metadata[1][2]["value_redactions"]["ret"] > 0 and metadata[1][2]["value_drops"]["arg"] > 0


@needs_c
def test_c_core_is_the_default_when_built(record):
    """Fails in CI (REWIND_REQUIRE_ACCELERATOR=1) when the extension did not build."""
    assert BUILT, "the C accelerator is not importable: %s" % _import_error()
    rec = record(CORPUS / "calls.py", env={"REWIND_CORE": ""}, cwd=CORPUS)
    assert _core(rec.trace_dir) == "c"
    proc = run_python(["-c", "from rewind import accelerator; print(accelerator.core_name())"], cwd=ROOT,
                      env={"REWIND_CORE": ""})
    assert proc.stdout.strip() == "c", proc.stderr


def _import_error() -> str:
    try:
        from rewind.accelerator import _speedups  # noqa: F401
    except ImportError as exc:
        return str(exc)
    return ""


def test_python_core_when_asked(record):
    rec = record(CORPUS / "calls.py", env={"REWIND_CORE": "python"}, cwd=CORPUS)
    assert _core(rec.trace_dir) == "python"


def test_bad_core_value_is_refused_before_the_target_runs(tmp_path):
    (tmp_path / "prog.py").write_text("print('ran')\n")
    proc = run_rewind(["-o", str(tmp_path / "out"), "prog.py"], cwd=tmp_path, env={"REWIND_CORE": "fast"})
    assert proc.returncode == 2
    assert "ran" not in proc.stdout
    assert "[ERR_INVALID_POLICY_VALUE]" in proc.stderr
    assert "REWIND_CORE" in proc.stderr and "fast" in proc.stderr and "python, c" in proc.stderr
    assert not (tmp_path / "out").exists()


# Runs `python -m rewind ...` with the extension unimportable (None in sys.modules makes any
# import of it fail), as on an install where it could not be built.
_WITHOUT_EXTENSION = ("import runpy, sys; sys.modules['rewind.accelerator._speedups'] = None; "
                      "sys.argv[0] = 'rewind'; runpy.run_module('rewind', run_name='__main__')")


def test_c_core_without_the_extension_is_a_clear_error(tmp_path):
    (tmp_path / "prog.py").write_text("print('ran')\n")
    proc = run_python(["-c", _WITHOUT_EXTENSION, "-o", str(tmp_path / "out"), "prog.py"], cwd=tmp_path,
                      env={"REWIND_CORE": "c"})
    assert proc.returncode == 10, proc.stderr
    assert "ran" not in proc.stdout
    assert "[ERR_MISSING_EXTRA]" in proc.stderr and "REWIND_CORE" in proc.stderr and "not built" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_without_the_extension_the_default_is_python(tmp_path):
    (tmp_path / "prog.py").write_text("x = 1\nprint('ran', x)\n")
    proc = run_python(["-c", _WITHOUT_EXTENSION, "-o", str(tmp_path / "out"), "prog.py"], cwd=tmp_path,
                      env={"REWIND_CORE": ""})
    assert proc.returncode == 0 and proc.stdout == "ran 1\n", proc.stderr
    assert _core(tmp_path / "out") == "python"


@needs_c
def test_a_build_older_than_its_c_source_is_not_used(tmp_path):
    """An editable install whose C source changed since its last build (the Python code may
    already call what the new source defines): the default core is then the pure-Python one,
    and REWIND_CORE=c says which module to rebuild, before the program runs."""
    import shutil

    import rewind
    site = tmp_path / "site"
    shutil.copytree(Path(rewind.__file__).parent, site / "rewind", ignore=shutil.ignore_patterns("__pycache__"))
    source = (ROOT / "src" / "rewind" / "accelerator" / "_nodes.c").read_text()
    (site / "rewind" / "accelerator" / "_nodes.c").write_text(source + "/* changed since the build */\n")
    (tmp_path / "prog.py").write_text("x = 1\nprint('ran', x)\n")
    env = {"PYTHONPATH": str(site)}

    default = run_python(["-m", "rewind", "-o", str(tmp_path / "out"), "prog.py"], cwd=tmp_path,
                         env={**env, "REWIND_CORE": ""})
    assert default.returncode == 0 and default.stdout == "ran 1\n", default.stderr
    assert _core(tmp_path / "out") == "python"
    assert_valid(tmp_path / "out")

    forced = run_python(["-m", "rewind", "-o", str(tmp_path / "forced"), "prog.py"], cwd=tmp_path,
                        env={**env, "REWIND_CORE": "c"})
    assert forced.returncode == 10, forced.stderr
    assert "ran" not in forced.stdout
    assert "[ERR_MISSING_EXTRA]" in forced.stderr and "built from an older _nodes.c" in forced.stderr
    assert "pip install -e ." in forced.stderr
    assert not (tmp_path / "forced").exists()


# A loop-heavy program recorded in-process by the C core: the values it steps over keep
# the same reference count (the frame cache holds one while the frame runs), and memory
# stays flat over rounds.
_REFCOUNT_PROGRAM = r"""
import gc, json, sys
sys.path.insert(0, sys.argv[2])
import rewind
from rewind import accelerator

marker = 10 ** 12  # an int64 the snapshot encodes in C
obj = object()     # a value that goes through _value_miss
text = "".join(["t"] * 40)  # not a constant: no immortal refcount

def callee(x, y, z, w=None):
    return x  # an int64 argument and return value: Recorder.enter / leave in C

def nothing(x, y):
    return None  # an object argument: the Python Recorder.enter

def loop(n):
    a, b, c = marker, obj, text
    total = 0
    for i in range(n):
        total += i
        a = marker
        b = obj
        row = [marker, (i, text), text, 0.5 * i, None, True, (obj,)]  # new items: Core.item_texts
        if i % 4 == 0:
            callee(marker, i, -marker)
            nothing(obj, text)
    return total

def rss_kb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4

before = [sys.getrefcount(x) for x in (marker, obj, text)]
with rewind.trace(sys.argv[1]):
    loop(2000)
    gc.collect()
    rss1 = rss_kb()
    for _ in range(5):
        loop(20000)
    gc.collect()
    rss2 = rss_kb()
gc.collect()
after = [sys.getrefcount(x) for x in (marker, obj, text)]
print(json.dumps({"core": accelerator.core_name(), "before": before, "after": after, "growth_kb": rss2 - rss1}))
"""


@needs_c
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_c_core_leaks_no_references(tmp_path):
    script = tmp_path / "refs.py"
    script.write_text(_REFCOUNT_PROGRAM)
    proc = run_python([str(script), str(tmp_path / "out"), str(ROOT / "src")], cwd=tmp_path,
                      env={"REWIND_CORE": "c"}, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["core"] == "c"
    assert result["after"] == result["before"]
    # 100k steps of 5 values: a leaked object per value would be tens of MB.
    assert result["growth_kb"] < 4096, result
