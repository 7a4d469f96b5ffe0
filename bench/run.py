"""rewind's benchmark harness (issue 9 "Benchmark", issue 3 "Performance").

    python bench/run.py [--quick] [--suite main|filters|all] [--workloads fib,loops ...]
                        [--reps N] [--json out.json] [--native-python PATH]

Run it with the interpreter under test (e.g. /tmp/venv312/bin/python bench/run.py): the
untraced program, the floor and rewind all run on that interpreter, each in a fresh
subprocess; the native recorder runs on --native-python (or $REWIND_NATIVE_PYTHON).
Repetitions are interleaved (rep 1 of every variant, then rep 2, ... with the order rotated
each time) so that load from other users of the machine spreads over all variants.
See bench/README.md for what every column means.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from harness import BENCH, fmt_num, fmt_ratio, fmt_size, median  # noqa: E402


@dataclass
class Workload:
    name: str
    script: Path
    args: list = field(default_factory=list)
    quick_args: list | None = None
    requires: tuple = ()                 # modules the program imports (third-party)
    pure: tuple = ()                     # modules that must be .py files, not compiled
    note: str = ""
    max_reps: int | None = None          # cap for the heaviest workloads
    in_filter_suite: bool = True         # the filter suite runs it unless named in --workloads

    def argv(self, quick: bool, work: Path) -> list[str]:
        args = self.quick_args if (quick and self.quick_args is not None) else self.args
        return [str(self.script)] + [str(a).format(work=work) for a in args]


WORKLOADS = [
    Workload("empty", BENCH / "micro" / "empty.py", note="empty program: fixed start-up and finish cost"),
    Workload("fib", BENCH / "workloads" / "fib.py", note="shared: call-heavy recursion"),
    Workload("loops", BENCH / "workloads" / "loops.py", note="shared: line-heavy, 5 int locals"),
    Workload("objects", BENCH / "workloads" / "objects.py", note="shared: classes, dicts, lists"),
    Workload("generators", BENCH / "workloads" / "generators.py", note="shared: generators and asyncio"),
    Workload("mixed9", BENCH / "workloads" / "mixed.py", note="9 mixed variables: list, dict, object..."),
    Workload("markdown", BENCH / "thirdparty" / "markdown_doc.py", ["3"], ["1"], ("markdown",),
             note="markdown renders a generated document"),
    Workload("tomli", BENCH / "thirdparty" / "toml_doc.py", ["12"], ["4"], ("tomli",), ("tomli._parser",),
             note="tomli (pure Python) parses a generated TOML document"),
    Workload("pytest", BENCH / "thirdparty" / "pytest_suite.py", ["{work}/pytest-suite", "1"],
             ["{work}/pytest-suite", "1"], ("pytest",), note="pytest runs a generated suite in-process",
             max_reps=1, in_filter_suite=False),
]
WORKLOAD_NAMES = [w.name for w in WORKLOADS]


@dataclass
class Variant:
    name: str
    family: str              # untraced | floor | rewind | native | native-untraced
    fmt: str | None = None   # json | binary
    core: str | None = None  # python | default (REWIND_CORE)

    def command(self, py: str, native_py: str | None, target: list[str], trace: Path,
                extra_options: list[str] = ()) -> tuple[list[str], dict]:
        if self.family == "untraced":
            return [py, *target], harness.clean_env()
        if self.family == "native-untraced":
            return [native_py, *target], harness.clean_env()
        if self.family == "floor":
            return [py, str(BENCH / "floor.py"), *target], harness.clean_env()
        if self.family == "rewind":
            env = harness.clean_env({"REWIND_CORE": "python"} if self.core == "python" else None,
                                    rewind_src=True)
            return [py, "-m", "rewind", "-o", str(trace), "--format", self.fmt, *extra_options,
                    *target], env
        if self.family == "native":
            return [native_py, "-m", "codetracer_python_recorder", "--trace-dir", str(trace),
                    "--format", self.fmt, *extra_options, *target], harness.clean_env()
        raise ValueError(self.family)

    @property
    def traced(self) -> bool:
        return self.family in ("rewind", "native")


def rewind_variant_name(fmt: str, core: str) -> str:
    return "rewind-%s%s" % ("json" if fmt == "json" else "bin", "" if core == "default" else ":py")


# ---------------------------------------------------------------------------------------
# Environment probes


def probe_python(py: str, code: str, env: dict | None = None) -> tuple[bool, str]:
    try:
        proc = subprocess.run([py, "-c", code], capture_output=True, text=True, timeout=120,
                              env=env or harness.clean_env())
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    text = (proc.stdout + proc.stderr).strip()
    return proc.returncode == 0, text


def check_requirements(py: str, workload: Workload) -> str | None:
    """None when `py` can run the workload's program, else why not."""
    for module in workload.requires:
        ok, text = probe_python(py, "import %s" % module)
        if not ok:
            return "%s cannot import %s (pip install %s)" % (py, module, module)
    for module in workload.pure:
        ok, text = probe_python(py, "import %s as m; print(m.__file__)" % module)
        if not ok or not text.splitlines()[-1].endswith(".py"):
            top = module.split(".")[0]
            return ("%s: %s is compiled (%s), a recorder cannot see into it; "
                    "pip install --force-reinstall --no-binary %s %s" % (py, module, text.splitlines()[-1:], top, top))
    return None


def probe_binary_format(py: str, work: Path) -> str | None:
    """None when `rewind --format binary` works here, else the reason it is skipped."""
    probe = work / "probe"
    probe.mkdir(parents=True, exist_ok=True)
    script = probe / "tiny.py"
    script.write_text("x = 1\nprint(x + 1)\n")
    proc = subprocess.run([py, "-m", "rewind", "-o", str(probe / "t"), "--format", "binary", str(script)],
                          capture_output=True, text=True, timeout=120, env=harness.clean_env(rewind_src=True),
                          cwd=str(probe))
    ok = proc.returncode == 0 and (probe / "t" / "trace.bin").is_file()
    harness.remove(probe)
    if ok:
        return None
    last = (proc.stderr.strip().splitlines() or ["exit status %d" % proc.returncode])[-1]
    return "rewind --format binary does not work here: %s" % last


def probe_default_core(py: str) -> str | None:
    """None when the default core of the checkout's src/ is the C one, else why it is not
    (the `default` variants then measure the pure-Python core)."""
    ok, text = probe_python(py, "from rewind import accelerator; print(accelerator.core_name())",
                            env=harness.clean_env(rewind_src=True))
    if ok and text.splitlines()[-1:] == ["c"]:
        return None
    return ("the default core of %s is not the C one (%s): the `default` variants measure the "
            "pure-Python core; build the accelerator in place with `pip install -e .`"
            % (harness.SRC, text.splitlines()[-1] if text else "no output"))


def probe_native(native_py: str | None) -> tuple[dict | None, str | None]:
    if not native_py:
        return None, ("native recorder: not measured (pass --native-python or set REWIND_NATIVE_PYTHON "
                      "to a Python with codetracer-python-recorder installed; bench/native_venv.sh makes one)")
    ok, text = probe_python(native_py, "import sys, importlib.metadata as m, codetracer_python_recorder; "
                                       "print(m.version('codetracer-python-recorder')); "
                                       "print('%d.%d' % sys.version_info[:2]); print(sys.version.split()[0])")
    if not ok:
        return None, "native recorder: %s cannot import codetracer_python_recorder: %s" % (native_py, text[-300:])
    version, minor, full = text.splitlines()[-3:]
    return {"python": native_py, "version": version, "python_version": full, "minor": minor}, None


# ---------------------------------------------------------------------------------------
# The main suite


def build_variants(args, binary_note: str | None, native: dict | None) -> list[Variant]:
    variants = [Variant("untraced", "untraced"), Variant("floor", "floor")]
    formats = ["json"] + ([] if binary_note else ["binary"])
    for fmt in formats:
        for core in args.cores:
            variants.append(Variant(rewind_variant_name(fmt, core), "rewind", fmt, core))
    if native:
        if native["minor"] != "%d.%d" % sys.version_info[:2]:
            variants.append(Variant("native-untraced", "native-untraced"))
        for fmt in args.native_formats:
            variants.append(Variant("native-" + ("json" if fmt == "json" else "bin"), "native", fmt))
    if args.variants:
        wanted = set(args.variants) | {"untraced"}
        variants = [v for v in variants if v.name in wanted or (v.family == "native-untraced" and
                                                                 any(w.startswith("native") for w in wanted))]
    return variants


def measure_workload(args, workload: Workload, variants: list[Variant], native: dict | None,
                     work: Path, notes: list[str], extra_options: dict | None = None,
                     label: str | None = None) -> dict:
    """Run every variant args.reps times, interleaved; returns the raw and derived results."""
    label = label or workload.name
    target = workload.argv(args.quick, work)
    py = sys.executable
    native_py = native["python"] if native else None
    extra_options = extra_options or {}
    runs_dir = work / "runs" / label
    results: dict[str, dict] = {v.name: {"walls": [], "rss_kb": [], "failures": [], "steps": None,
                                         "trace_bytes": None, "event_file_bytes": None, "recorder": None,
                                         "family": v.family, "format": v.fmt, "core": v.core}
                                for v in variants}
    # Warm-up (untimed): fills the OS cache, writes .pyc files (and pytest's rewritten test
    # modules), and gives the reference output.
    reference: dict[str, bytes] = {}
    warmups = [("untraced", py)]
    if native_py and any(v.family in ("native", "native-untraced") for v in variants):
        warmups.append(("native-untraced", native_py))
    for fam, interp in warmups:
        wdir = runs_dir / ("warmup-" + fam)
        out = harness.run_measured([interp, *target], env=harness.clean_env(), cwd=wdir, timeout=args.timeout,
                                   max_bytes=args.max_trace_bytes, watch_dir=wdir)
        reference[fam] = harness.normalized_stdout(out.stdout_path)
        if out.returncode != 0:
            notes.append("%s: the untraced program failed on %s (exit %d): %s"
                         % (label, interp, out.returncode, out.stderr_tail[-300:]))
        harness.remove(wdir)
    reps = min(args.reps, workload.max_reps or args.reps)
    for rep in range(reps):
        order = variants[rep % len(variants):] + variants[:rep % len(variants)]
        for variant in order:
            res = results[variant.name]
            if res["failures"] and len(res["failures"]) >= 2 and not res["walls"]:
                continue  # failed twice in a row: do not burn more time on it
            run_dir = runs_dir / ("%s-%d" % (variant.name.replace(":", "_"), rep))
            trace = run_dir / "trace"
            argv, env = variant.command(py, native_py, target, trace, extra_options.get(variant.name, []))
            out = harness.run_measured(argv, env=env, cwd=run_dir, timeout=args.timeout,
                                       max_bytes=args.max_trace_bytes, watch_dir=run_dir)
            ok = out.returncode == 0 and out.killed is None
            if variant.traced and ok:
                harness.inspect_trace(trace, out, want_steps=res["steps"] is None)
                if not out.event_file_bytes:
                    ok = False
            if ok:
                ref = reference.get("native-untraced" if variant.family == "native" and "native-untraced" in
                                    reference else "untraced")
                if ref is not None and harness.normalized_stdout(out.stdout_path) != ref:
                    notes.append("%s/%s: stdout differs from the untraced run" % (label, variant.name))
                res["walls"].append(out.wall)
                res["rss_kb"].append(out.maxrss_kb)
                if variant.traced:
                    res["trace_bytes"] = out.trace_bytes
                    res["event_file_bytes"] = out.event_file_bytes
                    if out.steps is not None:
                        res["steps"] = out.steps
                    if out.recorder:
                        res["recorder"] = out.recorder
            else:
                why = ("killed: %s" % out.killed) if out.killed else ("exit %d" % out.returncode)
                res["failures"].append({"rep": rep, "why": why, "wall": out.wall,
                                        "stderr": out.stderr_tail[-600:]})
                notes.append("%s/%s rep %d failed (%s): %s" % (label, variant.name, rep, why,
                                                              out.stderr_tail.strip().splitlines()[-1:]))
            if args.verbose:
                print("  %-12s %-16s rep %d  %7.2fs  rc=%s rss=%dMB%s" % (
                    label, variant.name, rep, out.wall, out.returncode, out.maxrss_kb // 1024,
                    "" if ok else "  FAILED"), flush=True)
            if not args.keep_traces:
                harness.remove(run_dir)
    derive(results)
    return {"workload": workload.name, "argv": target, "note": workload.note, "reps": reps, "variants": results}


def derive(results: dict[str, dict]) -> None:
    """Medians and the ratios between variants."""
    for res in results.values():
        res["median_s"] = median(res["walls"])
        res["min_s"] = min(res["walls"]) if res["walls"] else None
        res["rss_mb"] = median(res["rss_kb"]) / 1024 if res["rss_kb"] else None

    def med(name):
        return results.get(name, {}).get("median_s")

    base = med("untraced")
    native_base = med("native-untraced") or base
    native_steps = results.get("native-json", {}).get("steps")
    for name, res in results.items():
        m = res["median_s"]
        fam = res["family"]
        b = native_base if fam in ("native", "native-untraced") else base
        res["x_untraced"] = m / b if (m and b) else None
        res["x_floor"] = m / med("floor") if (m and fam == "rewind" and med("floor")) else None
        peer = None
        if fam == "rewind":
            peer = "native-json" if res["format"] == "json" else "native-bin"
        res["x_native"] = m / med(peer) if (m and peer and med(peer)) else None
        peer_bytes = results.get(peer, {}).get("event_file_bytes") if peer else None
        res["size_vs_native"] = (res["event_file_bytes"] / peer_bytes
                                 if (peer_bytes and res["event_file_bytes"]) else None)
        steps = res["steps"] or (native_steps if name == "native-bin" else None)
        if fam == "rewind" and not steps:
            steps = next((r["steps"] for r in results.values() if r["family"] == "rewind" and r["steps"]), None)
        res["steps_used"] = steps
        # (not for a program with almost no steps, where it would be start-up cost over nothing)
        res["ns_per_step"] = ((m - b) * 1e9 / steps) if (m and b and steps and steps >= 1000 and
                                                         res["family"] in ("rewind", "native")) else None
        res["bytes_per_step"] = (res["event_file_bytes"] / steps) if (steps and res["event_file_bytes"]) else None
        untraced_rss = results.get("untraced", {}).get("rss_mb")
        res["rss_delta_mb"] = (res["rss_mb"] - untraced_rss) if (res["rss_mb"] and untraced_rss) else None


MAIN_HEADERS = ["workload", "variant", "median s", "x untraced", "x floor", "x native", "steps",
                "ns/step", "B/step", "trace", "size/native", "RSS MB", "dRSS MB"]


def main_rows(result: dict) -> list[list[str]]:
    rows = []
    for name, r in result["variants"].items():
        rows.append([result["workload"], name + (" (failed)" if not r["walls"] and r["failures"] else ""),
                     fmt_num(r["median_s"], 3), fmt_ratio(r["x_untraced"]) if name != "untraced" else "1",
                     fmt_ratio(r["x_floor"]), fmt_ratio(r["x_native"]),
                     fmt_num(r["steps_used"]) if r["family"] in ("rewind", "native") else "",
                     fmt_num(r["ns_per_step"]), fmt_num(r["bytes_per_step"], 1), fmt_size(r["trace_bytes"]),
                     fmt_ratio(r["size_vs_native"]), fmt_num(r["rss_mb"], 1), fmt_num(r["rss_delta_mb"], 1)])
    return rows


def run_main_suite(args, work: Path, notes: list[str], native: dict | None) -> list[dict]:
    binary_note = probe_binary_format(sys.executable, work)
    if binary_note:
        notes.append(binary_note + " (binary variants skipped)")
        print("note:", binary_note, "(binary variants skipped)", flush=True)
    if "default" in args.cores:
        core_note = probe_default_core(sys.executable)
        if core_note:
            notes.append(core_note)
            print("note:", core_note, flush=True)
    variants = build_variants(args, binary_note, native)
    results = []
    for workload in [w for w in WORKLOADS if w.name in args.workloads]:
        missing = check_requirements(sys.executable, workload)
        if missing:
            notes.append("%s skipped: %s" % (workload.name, missing))
            print("note: %s skipped: %s" % (workload.name, missing), flush=True)
            continue
        wl_variants = variants
        if native and workload.requires:
            native_missing = check_requirements(native["python"], workload)
            if native_missing:
                notes.append("%s: native variants skipped: %s" % (workload.name, native_missing))
                wl_variants = [v for v in variants if v.family not in ("native", "native-untraced")]
        print("== %s (%s), %d reps x %d variants" % (workload.name, workload.note,
                                                     min(args.reps, workload.max_reps or args.reps), len(wl_variants)),
              flush=True)
        result = measure_workload(args, workload, wl_variants, native, work, notes)
        results.append(result)
        harness.print_table(MAIN_HEADERS, main_rows(result))
        print(flush=True)
    return results


# ---------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="1 repetition and smaller third-party inputs (for development)")
    parser.add_argument("--suite", choices=("main", "filters", "all"), default="main")
    parser.add_argument("--workloads", nargs="+", metavar="NAME",
                        help="subset of: %s (commas or spaces); the filter suite also has skipmost"
                             % ", ".join(WORKLOAD_NAMES))
    parser.add_argument("--variants", nargs="+", metavar="NAME",
                        help="main suite: only these variants (untraced always runs), e.g. rewind-json floor")
    parser.add_argument("--reps", type=int, help="repetitions per variant (default 3, --quick 1)")
    parser.add_argument("--json", metavar="PATH", help="write all results here (default: WORK_DIR/results.json)")
    parser.add_argument("--native-python", metavar="PATH", default=os.environ.get("REWIND_NATIVE_PYTHON"),
                        help="a Python with codetracer-python-recorder installed (default $REWIND_NATIVE_PYTHON)")
    parser.add_argument("--native-formats", default="json,binary",
                        help="native recorder formats to run (default json,binary)")
    parser.add_argument("--cores", default="python,default",
                        help="REWIND_CORE settings: python (REWIND_CORE=python) and/or default (unset)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds before a run is killed (default 900)")
    parser.add_argument("--max-trace-gb", type=float, default=8.0,
                        help="a run whose directory grows past this is killed (default 8)")
    parser.add_argument("--work-dir", metavar="DIR", help="where runs happen (default: a new temp dir)")
    parser.add_argument("--keep-traces", action="store_true", help="do not delete each run's trace")
    parser.add_argument("--filter-reps", type=int, help="filter suite: cold loads of the 200-rule chain (default 7)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every run as it ends")
    parser.add_argument("--list", action="store_true", help="list workloads and exit")
    args = parser.parse_args(argv)
    names = [n for item in (args.workloads or WORKLOAD_NAMES) for n in item.split(",") if n]
    unknown = sorted(set(names) - set(WORKLOAD_NAMES) - {"skipmost"})
    if unknown:
        parser.error("unknown workload(s) %s; choose from %s" % (", ".join(unknown), ", ".join(WORKLOAD_NAMES)))
    args.workloads_given = bool(args.workloads)
    args.workloads = names
    args.variants = [n for item in (args.variants or []) for n in item.split(",") if n]
    args.reps = args.reps or (1 if args.quick else 3)
    args.native_formats = [f for f in args.native_formats.split(",") if f]
    args.cores = [c for c in args.cores.split(",") if c]
    if set(args.cores) - {"python", "default"} or set(args.native_formats) - {"json", "binary"}:
        parser.error("--cores takes python,default; --native-formats takes json,binary")
    args.max_trace_bytes = int(args.max_trace_gb * (1 << 30))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.list:
        for w in WORKLOADS:
            print("%-11s %s %s  -- %s" % (w.name, w.script.relative_to(BENCH), " ".join(map(str, w.args)), w.note))
        return 0
    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="rewind-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    native, native_note = probe_native(args.native_python)
    if native_note:
        notes.append(native_note)
        print("note:", native_note, flush=True)
    else:
        print("native recorder: codetracer-python-recorder %s on Python %s (%s)"
              % (native["version"], native["python_version"], native["python"]), flush=True)
    command = " ".join([sys.executable] + sys.argv)
    report = {
        "meta": {
            "command": command,
            "python": sys.version.split()[0],
            "executable": sys.executable,
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "loadavg_start": os.getloadavg(),
            "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "reps": args.reps,
            "quick": args.quick,
            "native": native,
            "rewind_commit": _git_commit(),
        },
        "notes": notes,
    }
    print("python %s, %d reps, work dir %s" % (report["meta"]["python"], args.reps, work), flush=True)
    _compile_rewind(notes)
    if args.suite in ("main", "all"):
        report["main"] = run_main_suite(args, work, notes, native)
    if args.suite in ("filters", "all"):
        import filter_suite
        report["filters"] = filter_suite.run(args, work, notes, sys.modules[__name__])
    report["meta"]["loadavg_end"] = os.getloadavg()
    if report.get("main"):
        print("== summary (python %s)" % report["meta"]["python"])
        rows = [row for result in report["main"] for row in main_rows(result)]
        harness.print_table(MAIN_HEADERS, rows)
    if notes:
        print("\nnotes:")
        for note in dict.fromkeys(notes):
            print(" -", note)
    out = Path(args.json) if args.json else work / "results.json"
    out.write_text(json.dumps(report, indent=1, default=str))
    print("\nresults written to", out)
    return 0


def _compile_rewind(notes: list[str]) -> None:
    """Byte-compile the rewind sources the variants import, as `pip install` does: a
    checkout run with PYTHONDONTWRITEBYTECODE set (or never imported yet) would otherwise
    compile rewind's modules from source in every recorded run (15-25 ms each)."""
    proc = subprocess.run([sys.executable, "-m", "compileall", "-q", str(harness.SRC / "rewind")],
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        note = "could not byte-compile %s: recorded runs include compiling rewind (%s)" % (
            harness.SRC / "rewind", (proc.stdout + proc.stderr).strip()[-300:])
        notes.append(note)
        print("note:", note, flush=True)


def _git_commit() -> str | None:
    try:
        proc = subprocess.run(["git", "-C", str(BENCH.parent), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(BENCH.parent), "status", "--porcelain", "--", "src"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return proc.stdout.strip() + ("+dirty-src" if dirty else "") if proc.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired):
        return None


if __name__ == "__main__":
    sys.exit(main())
