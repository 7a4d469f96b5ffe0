"""setup.py builds the C accelerator for `pip install .`, `pip install -e .` and from an sdist,
and without a working compiler prints one warning line and installs the pure-Python core.

Slow and needs the package index (pip builds in an isolated environment): runs only with
REWIND_INSTALL_TESTS=1, like tests/autostart/test_install.py.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rewind_testing import ROOT, assert_valid

pytestmark = pytest.mark.skipif(os.environ.get("REWIND_INSTALL_TESTS") != "1",
                                reason="set REWIND_INSTALL_TESTS=1 (creates venvs, pip installs rewind)")

WARNING = "rewind: the C accelerator could not be built ("


def _env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CODETRACER_", "PYTHON", "VIRTUAL_ENV", "REWIND_"))}
    env.update(extra)
    return env


def _source(tmp_path: Path) -> Path:
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".ci-venv-*", ".ci-native-venv", "__pycache__", "*.egg-info", "build", "dist", ".pytest_cache",
        "tests", "bench", "*.so"))
    return source


def _venv(tmp_path: Path) -> str:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    return str(venv / "bin" / "python")


def _check_install(python: str, tmp_path: Path, expected_core: str) -> None:
    proc = subprocess.run([python, "-c", "from rewind import accelerator; print(accelerator.core_name())"],
                          cwd=tmp_path, env=_env(), capture_output=True, text=True)
    assert proc.stdout.strip() == expected_core, proc.stderr
    (tmp_path / "prog.py").write_text("def f(x):\n    y = x + 1\n    return y\n\nprint(f(1))\n")
    proc = subprocess.run([python, "-m", "rewind", "-o", "out", "prog.py"], cwd=tmp_path, env=_env(),
                          capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout == "2\n", proc.stderr
    assert_valid(tmp_path / "out")


@pytest.mark.parametrize("how", ["regular", "editable", "sdist"])
def test_install_builds_the_accelerator(tmp_path, how):
    source = _source(tmp_path)
    python = _venv(tmp_path)
    target = str(source)
    if how == "sdist":
        build = subprocess.run([python, "-m", "pip", "install", "-q", "setuptools>=64"], env=_env(),
                               capture_output=True, text=True, timeout=600)
        assert build.returncode == 0, build.stderr
        build = subprocess.run([python, "setup.py", "-q", "sdist", "-d", str(tmp_path / "dist")], cwd=source,
                               env=_env(), capture_output=True, text=True, timeout=600)
        assert build.returncode == 0, build.stderr
        (target,) = map(str, (tmp_path / "dist").glob("rewind-*.tar.gz"))
    install = [python, "-m", "pip", "install", "-q", "--no-deps", *(["-e"] if how == "editable" else []), target]
    proc = subprocess.run(install, env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    _check_install(python, tmp_path, "c")


@pytest.mark.parametrize("editable", [False, True], ids=["regular", "editable"])
def test_install_without_a_compiler_warns_once_and_uses_python(tmp_path, editable):
    source = _source(tmp_path)
    python = _venv(tmp_path)
    install = [python, "-m", "pip", "install", "-v", "--no-deps", *(["-e"] if editable else []), str(source)]
    proc = subprocess.run(install, env=_env(CC="/bin/false"), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    output = proc.stdout + proc.stderr
    assert output.count(WARNING) == 1, output
    assert "the pure-Python core will be used" in output
    _check_install(python, tmp_path, "python")
