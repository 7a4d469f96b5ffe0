"""`pip install .` and `pip install -e .` put rewind-autostart.pth into site-packages (setup.py),
and the installed hook records with CODETRACER_TRACE and is inert without it.

Slow and needs the package index (pip builds in an isolated environment): runs only with
REWIND_INSTALL_TESTS=1.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from process_testing import write_tree
from rewind_testing import ROOT, assert_valid

pytestmark = pytest.mark.skipif(os.environ.get("REWIND_INSTALL_TESTS") != "1",
                                reason="set REWIND_INSTALL_TESTS=1 (creates venvs, pip installs rewind)")


def _clean_env() -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CODETRACER_", "PYTHON", "VIRTUAL_ENV", "REWIND_"))}
    return env


@pytest.mark.parametrize("editable", [False, True], ids=["regular", "editable"])
def test_installed_hook(tmp_path, editable):
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".ci-venv-*", "__pycache__", "*.egg-info", "build", "dist", ".pytest_cache", "tests", "bench"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    env = _clean_env()
    install = [python, "-m", "pip", "install", "-q", "--no-deps", *(["-e"] if editable else []), str(source)]
    proc = subprocess.run(install, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert os.path.isfile(os.path.join(site, "rewind-autostart.pth"))

    write_tree(tmp_path, {"prog.py": "def f(x):\n    return x + 1\n\nprint(f(1))\n"})
    probe = [python, "-c", "import sys; print('rewind' in sys.modules)"]
    assert subprocess.run(probe, env=env, capture_output=True, text=True).stdout == "False\n"
    proc = subprocess.run([python, "prog.py"], cwd=tmp_path, env=dict(env, CODETRACER_TRACE="out"),
                          capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout == "2\n", proc.stderr
    assert_valid(tmp_path / "out")

    # The pytest plugin's entry point is registered too.
    eps = subprocess.run([python, "-c", "from importlib.metadata import entry_points; "
                                        "print([e.value for e in entry_points(group='pytest11')])"],
                         env=env, capture_output=True, text=True, check=True).stdout
    assert "pytest_rewind" in eps

    subprocess.run([python, "-m", "pip", "uninstall", "-y", "-q", "rewind"], env=env, check=True,
                   capture_output=True)
    assert not os.path.exists(os.path.join(site, "rewind-autostart.pth"))
