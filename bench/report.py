"""Markdown tables from results files of bench/run.py: `python bench/report.py A.json [B.json ...]`.

Prints, per results file, the main-suite table (every variant) and the filter-suite tables,
then one compact comparison across the files: per workload, the rewind JSON / binary ratios of
each Python and the native recorder's (from whichever file has it).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import fmt_num, fmt_ratio, fmt_size  # noqa: E402


def md_table(headers: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def main_table(report: dict) -> str:
    rows = []
    for result in report.get("main", []):
        for name, r in result["variants"].items():
            if not r["walls"]:
                rows.append([result["workload"], name, "failed", "", "", "", "", "", "", "", "", ""])
                continue
            rows.append([result["workload"], name, fmt_num(r["median_s"], 3),
                         "1" if name == "untraced" else fmt_ratio(r["x_untraced"]), fmt_ratio(r["x_floor"]),
                         fmt_ratio(r["x_native"]),
                         fmt_num(r["steps_used"]) if r["family"] in ("rewind", "native") else "",
                         fmt_num(r["ns_per_step"]), fmt_num(r["bytes_per_step"], 1), fmt_size(r["trace_bytes"]),
                         fmt_ratio(r["size_vs_native"]), "%s (+%s)" % (fmt_num(r["rss_mb"], 0),
                                                                     fmt_num(r["rss_delta_mb"], 0))])
    return md_table(["workload", "variant", "median s", "x untraced", "x floor", "x native", "steps", "ns/step",
                     "B/step", "trace", "size/native", "RSS MB (+untraced)"], rows)


def filter_tables(report: dict) -> str:
    filters = report.get("filters") or {}
    if not filters:
        return ""
    rows = []
    for result in filters.get("workloads", []) + ([filters["skipmost"]] if filters.get("skipmost") else []):
        v = result["variants"]
        base = v.get("rewind-json", {})
        row = [result["workload"], fmt_num(v["untraced"]["median_s"], 3)]
        if base:
            row.append("%s (%s)" % (fmt_num(base.get("median_s"), 3), fmt_ratio(base.get("x_untraced"))))
        else:
            row.append("-")
        for name in ("rewind-json+glob50", "rewind-json+regex50", "rewind-json+skip"):
            r = v.get(name)
            if r is None:
                row.append("")
            elif name.endswith("skip"):
                row.append("%s s, %s untraced" % (fmt_num(r["median_s"], 3), fmt_ratio(r["x_untraced"])))
            else:
                row.append(fmt_ratio(r.get("x_unfiltered")))
        rows.append(row)
    out = md_table(["workload", "untraced s", "rewind-json s (x untraced)", "glob50 / unfiltered",
                    "regex50 / unfiltered", "skip filter"], rows)
    loading = filters.get("loading") or {}
    lrows = [[name, m.get("rules_in_chain", ""), fmt_num(m["builtin"] * 1e3, 2), fmt_num(m["cold"] * 1e3, 2),
              fmt_num(m["warm"] * 1e3, 2), fmt_num(m["decide"] * 1e6, 1)]
             for name, m in loading.items() if "error" not in m]
    if lrows:
        out += "\n\n" + md_table(["chain", "user rules", "builtin alone ms", "cold build ms", "warm build ms",
                                  "decide us"], lrows)
    return out


def comparison(reports: list[dict]) -> str:
    by_python = [(r["meta"]["python"], {x["workload"]: x["variants"] for x in r.get("main", [])}) for r in reports]
    native_source = next((d for _p, d in by_python if any("native-json" in v for v in d.values())), None)
    workloads = list(dict.fromkeys(w for _p, d in by_python for w in d))
    headers = ["workload", "steps"]
    for py, _d in by_python:
        headers += ["%s json" % py, "%s bin" % py]
    headers += ["native json", "native bin", "json / native", "bin / native", "json / floor",
                "ns/step json", "B/step json / bin", "size json, bin / native", "RSS +MB rewind, native"]
    rows = []
    for w in workloads:
        row = [w]
        sources = ([native_source] if native_source else []) + [d for _p, d in by_python]
        steps = next((d[w].get("rewind-json", {}).get("steps_used") for d in sources if w in d), None)
        row.append(fmt_num(steps))
        for _py, d in by_python:
            v = d.get(w, {})
            row += [fmt_ratio(v.get("rewind-json", {}).get("x_untraced")),
                    fmt_ratio(v.get("rewind-bin", {}).get("x_untraced"))]
        nv = (native_source or {}).get(w, {})
        rj, rb = nv.get("rewind-json", {}), nv.get("rewind-bin", {})
        nj, nb = nv.get("native-json", {}), nv.get("native-bin", {})
        row += [fmt_ratio(nj.get("x_untraced")), fmt_ratio(nb.get("x_untraced")), fmt_ratio(rj.get("x_native")),
                fmt_ratio(rb.get("x_native")), fmt_ratio(rj.get("x_floor")), fmt_num(rj.get("ns_per_step")),
                "%s / %s" % (fmt_num(rj.get("bytes_per_step"), 0), fmt_num(rb.get("bytes_per_step"), 1)),
                "%s, %s" % (fmt_ratio(rj.get("size_vs_native")), fmt_ratio(rb.get("size_vs_native"))),
                "%s, %s" % (fmt_num(rj.get("rss_delta_mb"), 0), fmt_num(nj.get("rss_delta_mb"), 0))]
        rows.append(row)
    return md_table(headers, rows)


def main(paths: list[str]) -> int:
    reports = [json.loads(Path(p).read_text()) for p in paths]
    if len(reports) > 1 or any(r.get("main") for r in reports):
        print("### Comparison (rewind default core; x untraced unless said)\n")
        print(comparison(reports))
    for r in reports:
        m = r["meta"]
        print("\n### Python %s: `%s`\n" % (m["python"], m["command"]))
        print("rewind %s, %s reps, load average %s at start, %s at end%s\n" % (
            m.get("rewind_commit"), m["reps"], "/".join("%.1f" % x for x in m["loadavg_start"]),
            "/".join("%.1f" % x for x in m.get("loadavg_end", ())),
            ", native %s on %s" % (m["native"]["version"], m["native"]["python_version"]) if m.get("native") else ""))
        if r.get("main"):
            print(main_table(r))
        ft = filter_tables(r)
        if ft:
            print("\nFilters (Python %s):\n" % m["python"])
            print(ft)
        if r.get("notes"):
            print("\nNotes: " + "; ".join(dict.fromkeys(r["notes"])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
