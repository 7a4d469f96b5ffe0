"""Helpers for the tests of rewind around real processes: test suites, auto-start and child
processes, laid out on disk in tmp dirs and run in subprocesses."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from rewind_testing import ROOT, assert_valid, subprocess_env

PTH = ROOT / "src" / "rewind-autostart.pth"


def write_tree(root: Path, files: dict[str, str]) -> Path:
    """Write `files` ({relative path: source}) under `root`, dedented."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return root


def hook_env(tmp_path: Path, extra: dict | None = None) -> dict:
    """The environment of a Python whose start-up runs rewind-autostart.pth as an installed one
    does: a sitecustomize on PYTHONPATH adds a site directory holding the file, and
    site.addsitedir processes its .pth files (the tests run rewind from src/, not installed)."""
    hook = tmp_path / "_rewind_hook"
    site_dir = hook / "site"
    if not site_dir.exists():
        site_dir.mkdir(parents=True)
        shutil.copy(PTH, site_dir / PTH.name)
        (hook / "sitecustomize.py").write_text("import site\nsite.addsitedir(%r)\n" % str(site_dir))
    env = subprocess_env(extra)
    env["PYTHONPATH"] = str(hook) + os.pathsep + env["PYTHONPATH"]
    return env


def run(args: list[str], *, cwd: Path, env: dict, timeout: float = 180,
        input: str | None = None) -> subprocess.CompletedProcess:
    """`python ARGS...` with exactly `env`."""
    return subprocess.run([sys.executable, *args], cwd=str(cwd), env=env, capture_output=True, text=True,
                          timeout=timeout, input=input)


def metadata(trace_dir: Path | str) -> dict:
    with open(os.path.join(trace_dir, "trace_metadata.json"), encoding="utf-8") as f:
        return json.load(f)


def trace_dirs(root: Path) -> list[Path]:
    """Every finished trace directory under `root` (at any depth)."""
    return sorted(Path(d) for d, _, files in os.walk(root) if "trace_metadata.json" in files)


def assert_all_valid(root: Path) -> list[Path]:
    found = trace_dirs(root)
    assert found, "no trace under %s" % root
    for trace_dir in found:
        assert_valid(trace_dir)
    return found


def paths_of(trace_dir: Path | str) -> list[str]:
    with open(os.path.join(trace_dir, "trace_paths.json"), encoding="utf-8") as f:
        return json.load(f)
