"""Each corpus program recorded through the CLI: the trace is valid and says what the program did."""
from __future__ import annotations

import math
import sys

import pytest

from rewind_testing import CORPUS, WORKLOADS, run_python
from tracemodel import Err, Raw


def test_calls_arguments_returns_closures(record, backend):
    rec = record(CORPUS / "calls.py", env=backend)
    plain = run_python([str(CORPUS / "calls.py")], cwd=CORPUS)
    assert rec.stdout == plain.stdout
    v = rec.view
    assert v.toplevel.function == "<toplevel>"
    module = v.calls[1]
    assert module.function == "<__main__>" and module.depth == 1

    first, second = v.calls_of("posonly")
    assert first.args == {"a": 1, "b": 2, "c": 3, "rest": (), "key": 10, "flag": False, "extra": []}
    assert first.returned == 16
    assert second.args == {"a": 1, "b": 5, "c": 7, "rest": (8, 9), "key": 1, "flag": True,
                           "extra": [("color", "red")]}
    assert second.returned == 31

    facts = v.calls_of("fact")
    assert [c.args["n"] for c in facts] == [5, 4, 3, 2, 1]
    assert [c.returned for c in facts] == [120, 24, 6, 2, 1]
    assert [c.depth for c in facts] == [3, 4, 5, 6, 7]  # toplevel, module, main, fact...

    bumps = v.calls_of("make_counter.<locals>.bump")
    assert [c.returned for c in bumps] == [101, 106]
    bump_steps = v.steps_in("make_counter.<locals>.bump")
    assert {"step": 5, "count": 106} == {k: bump_steps[-1].values[k] for k in ("step", "count")}

    assert [c.returned for c in v.calls_of("main.<locals>.<lambda>")] == [0, 1, 4]
    (print_step,) = [s for s in v.steps_in("main") if s.line == 36]
    assert print_step.values["r1"] == 16 and print_step.values["r2"] == 31 and print_step.values["f"] == 120
    assert print_step.values["squares"] == [0, 1, 4]
    assert print_step.values["evens"] == [(0, True), (1, False), (2, True)]
    assert print_step.values["b"] == 106
    # every executed line of main, in order
    assert v.lines_of("main") == list(range(27, 38))
    assert v.calls_of("main")[0].returned == 120
    # The toplevel returns the exit status.
    assert v.toplevel.returned == 0 and v.toplevel.closed
    assert not v.open_at_end


def test_classes_dataclasses_slots_enums(record, backend):
    rec = record(CORPUS / "classes.py", env=backend)
    v = rec.view
    values = v.steps_in("main")[-1].values
    assert values["sq"] == {"__type__": "Square", "name": "sq", "size": 3}
    assert values["area"] == 9
    assert values["p"] == {"__type__": "Point", "x": 1, "y": 2}
    assert values["s"] == {"__type__": "Slotted", "a": 1}  # the unset slot b is not an attribute
    assert values["c"] == Raw("Color.GREEN", "Color")
    assert values["pair"] == {"__type__": "Pair", "left": 1, "right": "two"}
    names = {c.function for c in v.calls}
    assert {"Square.__init__", "Shape.__init__", "Shape.describe", "Shape.make", "Square.area",
            "Shape.unit", "Slotted.__init__"} <= names
    # dataclass __init__ is generated code with the file name "<string>": never recorded
    assert "Point.__init__" not in names
    init = v.calls_of("Square.__init__")[0]
    assert init.args["name"] == "sq" and init.args["size"] == 3
    assert v.calls_of("Shape.describe")[0].returned == "sq with 4 sides"


def test_exceptions_leaving_frames(record, backend):
    rec = record(CORPUS / "exceptions.py", env=backend)
    assert rec.stdout == "bad value+key\n"
    v = rec.view
    fails = v.calls_of("fail")
    assert [c.returned for c in fails] == [Raw("ValueError: bad value", "ValueError"), Raw("KeyError: 'k'", "KeyError")]
    (cleanup,) = v.calls_of("cleanup")
    assert cleanup.returned == Raw("ValueError: bad value", "ValueError")
    assert v.lines_of("cleanup") == [11, 12, 14]  # the finally block ran
    assert v.calls_of("catcher")[0].returned == "bad value+key"


def test_generators_yield_resume_throw(record, backend):
    rec = record(CORPUS / "generators.py", env=backend)
    assert rec.stdout == "[3, 2, 1] 10 6 caught [2, 1, 'done'] 14\n"
    v = rec.view
    countdown = v.calls_of("countdown")
    # list(countdown(3)): start + 3 resumes; yields 3, 2, 1 then returns "done"
    assert [c.returned for c in countdown[:4]] == [3, 2, 1, "done"]
    assert countdown[0].args == {"n": 3} and countdown[1].args == {}
    catching = v.calls_of("catching")
    thrown = [c for c in catching if c.args.get("exception", Raw("", "")).type == "KeyError"]
    assert len(thrown) == 1 and thrown[0].args["exception"] == Raw("KeyError: 'x'", "KeyError")
    assert thrown[0].returned == "caught"
    closes = [c for c in countdown if c.args.get("exception") == Raw("GeneratorExit", "GeneratorExit")]
    if sys.version_info < (3, 13):
        # gen.close() throws GeneratorExit into the suspended countdown(10)
        assert len(closes) == 1 and closes[0].returned == Raw("GeneratorExit", "GeneratorExit")
    else:
        # 3.13 closes a generator suspended outside any try/with without running its frame:
        # no code runs, so there is nothing to record
        assert closes == []
    assert [c.returned for c in v.calls_of("delegator")][-2:] == ["done", None]
    assert all(c.closed for c in v.calls)


def test_async_programs(record, backend):
    rec = record(CORPUS / "async_prog.py", env=backend)
    assert rec.stdout == "[10, 20] [0, 1, 2] 50\n"
    v = rec.view
    fetch = v.calls_of("fetch")
    # each fetch starts (with n), suspends at sleep(0) (a Return), resumes (a Call) and returns n*10
    starts = [c for c in fetch if "n" in c.args]
    assert sorted(c.args["n"] for c in starts) == [1, 2, 5]
    assert sorted(c.returned for c in fetch if isinstance(c.returned, int)) == [10, 20, 50]
    assert {c.function for c in v.calls} >= {"main", "fetch", "ticker"}
    # asyncio itself is not recorded
    assert not any("asyncio" in p for p in v.paths)


def test_threads_each_keep_their_stack(record, backend):
    rec = record(CORPUS / "threads_prog.py", env=backend)
    v = rec.view
    assert len(v.threads_seen) == 4
    works = v.calls_of("work")
    assert sorted(c.returned for c in works) == [124750, 1999000, 1999000, 1999000]
    for call in works:
        assert call.closed
        # a thread's work() is the root of its own stack, main's runs inside main()
        assert (call.depth == 0) == (call.thread != 0)
    for thread in set(v.threads_seen) - {0}:
        lines = [s.line for s in v.steps if s.thread == thread and not s.is_entry]
        assert lines[:3] == [6, 7, 8]


def test_values_at_the_edges(record, backend):
    rec = record(CORPUS / "values.py", env=backend)
    assert rec.stdout.startswith("0 200 True 1.5")  # LoudRepr.__repr__ was never called
    v = rec.view
    values = v.steps_in("main")[-1].values
    floats = values["floats"]
    assert floats[:2] == [1.5, -0.0] and math.copysign(1, floats[1]) == -1
    assert floats[2] == math.inf and floats[3] == -math.inf and math.isnan(floats[4]) and floats[5] == 1e300
    assert values["big"] == 2 ** 100 and values["negbig"] == -(2 ** 70)
    assert values["i64max"] == 2 ** 63 - 1 and values["i64over"] == 2 ** 63
    assert values["raw"] == Raw(repr(b"\x00\xffabc"), "bytes")
    assert values["weird"] == "caf\xe9 ? end"  # the lone surrogate is replaced
    assert values["long_text"].startswith("x" * 1000) and values["long_text"].endswith("...<+4000 chars>")
    assert values["long_list"][:50] == list(range(50)) and values["long_list"][50] == Raw("<+150 more>", "<truncated>")
    assert len(values["long_dict"]) == 51
    assert values["nested"] == [[[Raw("<list of 1 item>", "list")]]]
    assert values["nested_pair"] == [[[Raw("<tuple of 2 items>", "tuple")]]]
    assert values["cyc"] == [1, Err("<cycle>")]
    node = values["a"]
    assert node["label"] == "a" and node["next"]["label"] == "b"
    assert values["loud"] == {"__type__": "LoudRepr", "tag": "loud"}
    assert values["pair_set"] == [3] and values["empty"] == ()
    assert values["done"] == 0


def test_own_modules_and_same_named_functions(record, backend):
    rec = record(CORPUS / "imports_app.py", env=backend, cwd=CORPUS)
    assert rec.stdout == "6 4 -3\n"
    v = rec.view
    helpers = [f for f in v.functions if f["name"] == "helper"]
    assert len(helpers) == 3
    assert len({(v.paths[f["path_id"]], f["line"]) for f in helpers}) == 3
    assert {c.function for c in v.calls} >= {"<mypkg>", "<mypkg.helpers>", "<mypkg.other>"}
    by_file = {c.path.rsplit("/", 1)[-1]: c.returned for c in v.calls_of("helper")}
    assert by_file == {"helpers.py": 6, "other.py": 4, "imports_app.py": -3}


def test_exec_of_a_real_file(record, backend):
    rec = record(CORPUS / "exec_file.py", env=backend)
    assert rec.stdout == "42\n"
    v = rec.view
    assert "<executed>" in {c.function for c in v.calls}
    assert v.calls_of("helper")[0].returned == 42


# The shared benchmark workloads, scaled down (same code, smaller loop counts) so that
# recording and validating them stays quick; bench/ runs them at full size.
SCALED_WORKLOADS = {
    "fib.py": ("range(22)", "range(16)"),
    "loops.py": ("collatz_stats(3000)", "collatz_stats(300)"),
    "objects.py": ("simulate(20000)", "simulate(2000)"),
    "generators.py": ("range(8)", "range(8)"),
}


@pytest.mark.parametrize("workload", sorted(SCALED_WORKLOADS))
def test_bench_workloads(record, tmp_path, workload):
    """Same output as a plain run, a valid trace, the toplevel returning 0 and, for fib, one
    call per fib() call."""
    from rewind.tools.summary import summarize
    source = (WORKLOADS / workload).read_text()
    full, scaled = SCALED_WORKLOADS[workload]
    assert full in source
    script = tmp_path / workload
    script.write_text(source.replace(full, scaled))
    rec = record(script)
    plain = run_python([str(script)], cwd=tmp_path)
    assert rec.stdout == plain.stdout
    summary = summarize(str(rec.trace_dir))
    if workload == "fib.py":
        assert summary["calls"] == sum(_fib_calls(i) for i in range(16)) + 3  # + toplevel, module, main
    assert rec.trace_dir.joinpath("trace.json").read_text()[-200:].endswith(
        '{"Return":{"return_value":{"kind":"Int","i":0,"type_id":1}}}\n]\n')


def _fib_calls(n: int) -> int:
    return 1 if n < 2 else 1 + _fib_calls(n - 1) + _fib_calls(n - 2)


def test_third_party_library_is_recorded(record, tmp_path):
    """A real pure-Python library from PyPI (markdown, in site-packages) is traced."""
    pytest.importorskip("markdown", reason="the test extra installs markdown")
    script = tmp_path / "md.py"
    script.write_text("import markdown\nhtml = markdown.markdown('# Title\\n\\nSome *text*.')\nprint(html)\n")
    rec = record(script)
    assert rec.stdout == "<h1>Title</h1>\n<p>Some <em>text</em>.</p>\n"
    v = rec.view
    assert any("site-packages/markdown" in p for p in v.paths)
    (call,) = [c for c in v.calls if c.function == "markdown"]
    assert call.returned == "<h1>Title</h1>\n<p>Some <em>text</em>.</p>"
