"""errors-audit: find recorder-side failures that bypass the rewind.errors facade.

    python -m rewind.tools.errors_audit [SRC_DIR]     (default: the installed rewind package)

Reports, as ``file:line: message``:
- ``raise`` of a builtin exception class (``ValueError``, ``OSError``, ``Exception``...);
  re-raising (``raise`` alone, ``raise exc``) is fine;
- bare ``except:``;
- an ``ERR_*`` code passed to a RecorderError class or helper that is not registered in
  ``rewind.errors.CODES``, or that is raised with a kind other than its registered one.

Findings listed in ALLOW_LIST (file glob, function glob, exception, reason) are accepted,
and so are the exceptions Python's protocols require (``AttributeError`` from
``__getattr__``, ``StopIteration`` from ``__next__``...).  Exit 1 when anything is
left, 0 when clean.
"""
from __future__ import annotations

import argparse
import ast
import builtins
import fnmatch
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rewind import errors


@dataclass(frozen=True)
class Allowed:
    """One accepted finding: where (globs on the package-relative file and the function), what, why."""

    file: str
    function: str
    exception: str  # the builtin class name, "except:", or an ERR_* code
    reason: str


# Paths are relative to the package directory, POSIX separators; "<module>" is module-level code.
ALLOW_LIST: tuple[Allowed, ...] = (
    Allowed("cli.py", "entry", "SystemExit",
            "the console-script entry point exits with the recorder's or the script's status"),
    Allowed("__main__.py", "<module>", "SystemExit",
            "`python -m rewind` exits with the status cli.main() returns"),
    Allowed("tools/*.py", "<module>", "SystemExit",
            "`python -m rewind.tools.X` exits with the tool's status"),
    Allowed("tools/trace_reader.py", "_reject_constant", "ValueError",
            "json.loads parse_constant hook: its ValueError is handled like any JSONDecodeError by the callers"),
    Allowed("faults.py", "arm_sink.write", "OSError",
            "test fault injection imitates a failed write; the session classifies it like a real one"),
    Allowed("capture/*.py", "*", "ValueError",
            "the capture proxies stand in for the program's streams: a write to a closed one must raise "
            "the same ValueError the real stream raises"),
)

# Raises that a Python protocol requires of these methods; they are not recorder failures.
PROTOCOL_RAISES: dict[str, frozenset[str]] = {
    "__getattr__": frozenset({"AttributeError"}),
    "__getattribute__": frozenset({"AttributeError"}),
    "__setattr__": frozenset({"AttributeError"}),
    "__delattr__": frozenset({"AttributeError"}),
    "__get__": frozenset({"AttributeError"}),
    "__next__": frozenset({"StopIteration"}),
    "__anext__": frozenset({"StopAsyncIteration"}),
    "__getitem__": frozenset({"KeyError", "IndexError", "TypeError"}),
    "__setitem__": frozenset({"KeyError", "IndexError", "TypeError"}),
    "__delitem__": frozenset({"KeyError", "IndexError", "TypeError"}),
    "__missing__": frozenset({"KeyError"}),
    "__hash__": frozenset({"TypeError"}),
    "__reduce__": frozenset({"TypeError"}),
    "__reduce_ex__": frozenset({"TypeError"}),
    "__copy__": frozenset({"TypeError"}),
    "__deepcopy__": frozenset({"TypeError"}),
}

# NotImplementedError marks an abstract method, not a runtime failure.
ALWAYS_ALLOWED = frozenset({"NotImplementedError"})

BUILTIN_EXCEPTIONS = frozenset(
    name for name, value in vars(builtins).items()
    if isinstance(value, type) and issubclass(value, BaseException)
)

_KIND_OF_CONSTRUCTOR = {
    "usage": errors.KIND_USAGE, "UsageError": errors.KIND_USAGE,
    "environment": errors.KIND_ENVIRONMENT, "EnvironmentError": errors.KIND_ENVIRONMENT,
    "target": errors.KIND_TARGET, "TargetError": errors.KIND_TARGET,
    "internal": errors.KIND_INTERNAL, "InternalError": errors.KIND_INTERNAL,
    "RecorderError": None, "from_code": None,  # no kind of their own to check
}


@dataclass(frozen=True)
class Finding:
    path: Path  # as shown: the scanned directory joined with the relative path
    relpath: str  # relative to the scanned directory, POSIX separators
    line: int
    function: str
    exception: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


def _called_name(node: ast.expr) -> str | None:
    """``Foo`` for ``Foo``/``Foo(...)``/``mod.Foo(...)``."""
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _code_literal(node: ast.expr) -> str | None:
    """The ERR_* code an argument spells: "ERR_X", ERR_X or errors.ERR_X (values equal names)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("ERR_"):
        return node.value
    name = _called_name(node) if isinstance(node, (ast.Name, ast.Attribute)) else None
    if name and name.startswith("ERR_"):
        return name
    return None


def _builtin_exception_raised(exc: ast.expr | None) -> str | None:
    """The builtin class a ``raise`` statement raises, or None.

    ``raise``, ``raise exc`` (a caught exception) and ``raise mod.Error(...)`` are not builtins;
    ``raise ValueError``, ``raise ValueError(...)`` and ``raise builtins.ValueError(...)`` are.
    """
    target = exc.func if isinstance(exc, ast.Call) else exc
    if isinstance(target, ast.Name):
        name = target.id
    elif (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
          and target.value.id == "builtins"):
        name = target.attr
    else:
        return None
    return name if name in BUILTIN_EXCEPTIONS else None


class _Visitor(ast.NodeVisitor):
    def __init__(self, path: Path, relpath: str):
        self.path = path
        self.relpath = relpath
        self.scope: list[str] = []
        self.findings: list[Finding] = []

    @property
    def function(self) -> str:
        return ".".join(self.scope) or "<module>"

    def _add(self, node: ast.AST, exception: str, message: str) -> None:
        self.findings.append(
            Finding(self.path, self.relpath, getattr(node, "lineno", 0), self.function, exception, message)
        )

    def _scoped(self, node: ast.AST, name: str) -> None:
        self.scope.append(name)
        self.generic_visit(node)
        self.scope.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._scoped(node, node.name)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._scoped(node, node.name)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._scoped(node, node.name)

    def visit_Raise(self, node: ast.Raise) -> None:
        name = _builtin_exception_raised(node.exc)
        if name is not None and not self._protocol_allows(name):
            self._add(node, name, f"raise of builtin {name} in {self.function}: raise a "
                                  f"rewind.errors error (usage/environment/target/internal) instead")
        self.generic_visit(node)

    def _protocol_allows(self, exception: str) -> bool:
        if exception in ALWAYS_ALLOWED:
            return True
        method = self.scope[-1] if self.scope else ""
        return exception in PROTOCOL_RAISES.get(method, frozenset())

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.type is None:
            self._add(node, "except:", f"bare `except:` in {self.function}: it also catches "
                                       f"KeyboardInterrupt and SystemExit; name the exceptions")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        constructor = _called_name(node.func)
        if constructor in _KIND_OF_CONSTRUCTOR and node.args:
            code = _code_literal(node.args[0])
            if code is not None:
                entry = errors.CODES.get(code)
                kind = _KIND_OF_CONSTRUCTOR[constructor]
                if entry is None:
                    self._add(node, code, f"{code} is not a registered error code: add it to "
                                          f"rewind.errors.CODES (and docs/errors.md)")
                elif kind is not None and kind != entry.kind:
                    self._add(node, code, f"{code} is registered as {entry.kind} but raised as {kind}")
        self.generic_visit(node)


def _is_allowed(finding: Finding, allow_list: Iterable[Allowed]) -> bool:
    return any(
        fnmatch.fnmatchcase(finding.relpath, entry.file)
        and fnmatch.fnmatchcase(finding.function, entry.function)
        and finding.exception == entry.exception
        for entry in allow_list
    )


def scan_file(path: Path, relpath: str) -> list[Finding]:
    """Every finding in one file, before the allow-list."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (SyntaxError, UnicodeDecodeError, OSError) as exc:
        line = getattr(exc, "lineno", None) or 0
        return [Finding(path, relpath, line, "<module>", "<parse>", f"cannot audit: {exc}")]
    visitor = _Visitor(path, relpath)
    visitor.visit(tree)
    return visitor.findings


def audit(src_dir: Path, allow_list: Iterable[Allowed] = ALLOW_LIST) -> list[Finding]:
    """Findings in every ``*.py`` under ``src_dir`` that the allow-list does not accept."""
    allow = tuple(allow_list)
    findings: list[Finding] = []
    for path in sorted(src_dir.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        relpath = path.relative_to(src_dir).as_posix()
        findings.extend(f for f in scan_file(path, relpath) if not _is_allowed(f, allow))
    return findings


_DESCRIPTION = ("List raises of builtin exceptions, bare `except:` and unregistered ERR_* codes "
                "in the rewind package, outside the allow-list; exit 1 when there are any.")


def default_src_dir() -> Path:
    return Path(__file__).resolve().parent.parent


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src_dir", nargs="?", type=Path, default=None,
                        help="package directory to audit (default: the installed rewind package)")
    parser.add_argument("--show-allow-list", action="store_true",
                        help="print the allow-list with its reasons and exit")


def run(args: argparse.Namespace) -> int:
    if args.show_allow_list:
        for entry in ALLOW_LIST:
            print(f"{entry.file} {entry.function} {entry.exception}: {entry.reason}")
        return 0
    src_dir = args.src_dir or default_src_dir()
    if not src_dir.is_dir():
        print(f"errors-audit: not a directory: {src_dir}", file=sys.stderr)
        return 2
    findings = audit(src_dir)
    for finding in findings:
        print(finding)
    if findings:
        print(f"errors-audit: {len(findings)} finding(s) in {src_dir}", file=sys.stderr)
        return 1
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "errors-audit", help="list raises of builtin exceptions and bare except: outside the allow-list"
    )
    _add_arguments(parser)
    parser.set_defaults(func=run)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rewind.tools.errors_audit",
                                     description=_DESCRIPTION)
    _add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
