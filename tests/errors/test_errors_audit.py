"""errors-audit on small synthetic source trees, and on rewind's own error/policy/diagnostics code."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rewind.tools import errors_audit
from rewind.tools.errors_audit import Allowed, audit

SRC = Path(__file__).resolve().parents[2] / "src"


def make_tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def messages(findings) -> list[str]:
    return [f"{f.relpath}:{f.line}:{f.exception}" for f in findings]


def test_clean_tree(tmp_path):
    make_tree(tmp_path, {"mod.py": """
        from rewind import errors

        def f(x):
            try:
                return int(x)
            except ValueError as exc:
                raise errors.usage(errors.ERR_INVALID_ARGUMENT, "bad x", x=x) from exc
    """})
    assert audit(tmp_path) == []


def test_builtin_raises_are_reported(tmp_path):
    make_tree(tmp_path, {"pkg/mod.py": """
        import builtins

        def a():
            raise ValueError("bad")

        def b():
            raise TypeError

        class C:
            def m(self):
                raise builtins.RuntimeError("x")

        raise OSError("module level")
    """})
    found = audit(tmp_path)
    assert messages(found) == [
        "pkg/mod.py:5:ValueError",
        "pkg/mod.py:8:TypeError",
        "pkg/mod.py:12:RuntimeError",
        "pkg/mod.py:14:OSError",
    ]
    assert [f.function for f in found] == ["a", "b", "C.m", "<module>"]
    assert str(found[0]) == f"{tmp_path / 'pkg' / 'mod.py'}:5: " + found[0].message
    assert "ValueError" in found[0].message and "rewind.errors" in found[0].message


def test_reraising_is_fine(tmp_path):
    make_tree(tmp_path, {"mod.py": """
        import mylib

        def f(exc):
            try:
                pass
            except OSError as caught:
                raise
            except KeyError as caught:
                raise caught
            except Exception as caught:
                raise caught.with_traceback(None)
            raise exc

        def g(exc):
            raise type(exc)("again")

        def h():
            raise mylib.ValueError("not the builtin")
    """})
    assert audit(tmp_path) == []


def test_bare_except_is_reported(tmp_path):
    make_tree(tmp_path, {"mod.py": """
        def f():
            try:
                pass
            except:
                pass
            try:
                pass
            except Exception:
                pass
            try:
                pass
            except BaseException:
                raise
    """})
    found = audit(tmp_path)
    assert messages(found) == ["mod.py:5:except:"]
    assert "bare `except:`" in found[0].message


def test_protocol_raises_and_not_implemented_are_fine(tmp_path):
    make_tree(tmp_path, {"mod.py": """
        class Proxy:
            def __getattr__(self, name):
                raise AttributeError(name)

            def __next__(self):
                raise StopIteration

            def __getitem__(self, key):
                raise KeyError(key)

            def abstract(self):
                raise NotImplementedError

            def other(self):
                raise AttributeError("not a protocol method")
    """})
    assert messages(audit(tmp_path)) == ["mod.py:16:AttributeError"]


def test_default_allow_list(tmp_path):
    make_tree(tmp_path, {
        "cli.py": """
            def entry():
                raise SystemExit(2)

            def helper():
                raise SystemExit(1)
        """,
        "__main__.py": "raise SystemExit(0)\n",
        "tools/tool.py": """
            def main():
                return 0

            if __name__ == "__main__":
                raise SystemExit(main())
        """,
    })
    assert messages(audit(tmp_path)) == ["cli.py:6:SystemExit"]


def test_custom_allow_list(tmp_path):
    make_tree(tmp_path, {"hooks/a.py": """
        def cb():
            raise ValueError("x")

        def other():
            raise ValueError("y")
    """})
    allow = [Allowed("hooks/*.py", "cb", "ValueError", "json hook protocol")]
    assert messages(audit(tmp_path, allow)) == ["hooks/a.py:6:ValueError"]
    assert messages(audit(tmp_path, [Allowed("hooks/a.py", "*", "ValueError", "r")])) == []
    # The exception must match too.
    assert len(audit(tmp_path, [Allowed("hooks/a.py", "*", "TypeError", "r")])) == 2


def test_error_codes_are_checked(tmp_path):
    make_tree(tmp_path, {"mod.py": """
        from rewind import errors
        from rewind.errors import UsageError, usage

        def f():
            raise errors.usage("ERR_INVALID_FILTER", "fine")

        def g():
            raise usage("ERR_MADE_UP", "unregistered")

        def h():
            raise errors.usage(errors.ERR_DISK_FULL, "wrong kind")

        def i():
            raise UsageError("ERR_TARGET_NOT_FOUND", "wrong kind", {})

        def j():
            raise errors.RecorderError(errors.ERR_IO, "base class: any kind")

        def k():
            return errors.from_code("ERR_ALSO_MADE_UP", "unregistered")
    """})
    found = audit(tmp_path)
    assert messages(found) == [
        "mod.py:9:ERR_MADE_UP",
        "mod.py:12:ERR_DISK_FULL",
        "mod.py:15:ERR_TARGET_NOT_FOUND",
        "mod.py:21:ERR_ALSO_MADE_UP",
    ]
    assert "not a registered error code" in found[0].message
    assert found[1].message == "ERR_DISK_FULL is registered as environment but raised as usage"


def test_unparsable_file_is_reported(tmp_path):
    make_tree(tmp_path, {"broken.py": "def f(:\n    pass\n", "ok.py": "x = 1\n"})
    found = audit(tmp_path)
    assert len(found) == 1 and found[0].relpath == "broken.py"
    assert "cannot audit" in found[0].message


def test_pycache_is_skipped(tmp_path):
    make_tree(tmp_path, {"__pycache__/junk.py": "raise ValueError\n"})
    assert audit(tmp_path) == []


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "rewind.tools.errors_audit", *args],
                          check=False, capture_output=True, text=True, env=env, timeout=120)


def test_command_exit_codes(tmp_path):
    clean = make_tree(tmp_path / "clean", {"a.py": "x = 1\n"})
    dirty = make_tree(tmp_path / "dirty", {"a.py": "\n\ndef f():\n    raise KeyError('k')\n"})
    ok = run_cli(str(clean))
    assert (ok.returncode, ok.stdout) == (0, "")
    bad = run_cli(str(dirty))
    assert bad.returncode == 1
    assert bad.stdout.splitlines() == [
        (f"{dirty / 'a.py'}:4: raise of builtin KeyError in f: raise a rewind.errors error "
         "(usage/environment/target/internal) instead")
    ]
    assert "1 finding" in bad.stderr
    missing = run_cli(str(tmp_path / "nope"))
    assert missing.returncode == 2


def test_command_shows_the_allow_list():
    result = run_cli("--show-allow-list")
    assert result.returncode == 0
    assert len(result.stdout.splitlines()) == len(errors_audit.ALLOW_LIST)


def test_allow_list_entries_have_reasons():
    for entry in errors_audit.ALLOW_LIST:
        assert entry.reason.strip() and entry.file and entry.function and entry.exception


@pytest.mark.parametrize("module", ["errors.py", "policy.py", "diagnostics.py", "tools/errors_audit.py"])
def test_the_facade_itself_is_clean(module):
    findings = [f for f in audit(SRC / "rewind") if f.relpath == module]
    assert findings == []
