"""The error facade: hierarchy, str format, codes registry, classify()."""
from __future__ import annotations

import builtins
import errno
import pickle
import re
from pathlib import Path

import pytest

from rewind import errors
from rewind.errors import (
    EnvironmentError,
    InternalError,
    RecorderError,
    TargetError,
    UsageError,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "errors.md"

REQUIRED_CODES = {
    "ERR_ALREADY_TRACING": "usage",
    "ERR_NOT_TRACING": "usage",
    "ERR_TRACE_DIR_CONFLICT": "usage",
    "ERR_TRACE_DIR_CREATE_FAILED": "environment",
    "ERR_UNSUPPORTED_FORMAT": "usage",
    "ERR_INVALID_POLICY_VALUE": "usage",
    "ERR_INVALID_FILTER": "usage",
    "ERR_FILTER_NOT_FOUND": "usage",
    "ERR_IO": "environment",
    "ERR_DISK_FULL": "environment",
    "ERR_TRACE_MISSING": "usage",
    "ERR_TRACE_INCOMPLETE": "target",
    "ERR_FRAME_INTROSPECTION_FAILED": "internal",
    "ERR_NO_FREE_TOOL_ID": "environment",
    "ERR_MISSING_EXTRA": "environment",
    "ERR_TARGET_NOT_FOUND": "target",
    "ERR_UNKNOWN": "internal",
}


# --- format ---------------------------------------------------------------------------------------

def test_str_with_context():
    err = UsageError("ERR_INVALID_FILTER", "bad selector", {"file": "f.toml", "line": 3})
    assert str(err) == "[ERR_INVALID_FILTER] bad selector (file=f.toml, line=3)"


def test_str_without_context():
    assert str(InternalError("ERR_UNKNOWN", "boom")) == "[ERR_UNKNOWN] boom"


def test_context_values_become_strings():
    err = errors.environment("ERR_IO", "cannot write", path=Path("/x/y"), size=12, missing=None)
    assert err.context == {"path": "/x/y", "size": "12", "missing": "None"}
    assert all(isinstance(v, str) for v in err.context.values())


def test_attributes_and_repr():
    err = errors.usage("ERR_ALREADY_TRACING", "already tracing", trace_dir="out")
    assert (err.code, err.message) == ("ERR_ALREADY_TRACING", "already tracing")
    assert (err.kind, err.exit_code) == ("usage", 2)
    assert err.args == ("already tracing",)
    assert repr(err) == "UsageError('ERR_ALREADY_TRACING', 'already tracing', {'trace_dir': 'out'})"


def test_to_dict():
    err = errors.target("ERR_TARGET_NOT_FOUND", "no such script", path="x.py")
    assert err.to_dict() == {
        "error_code": "ERR_TARGET_NOT_FOUND",
        "error_kind": "target",
        "message": "no such script",
        "context": {"path": "x.py"},
    }


# --- hierarchy ------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "cls, helper, kind, exit_code",
    [
        (UsageError, errors.usage, "usage", 2),
        (EnvironmentError, errors.environment, "environment", 10),
        (TargetError, errors.target, "target", 20),
        (InternalError, errors.internal, "internal", 70),
    ],
)
def test_kinds_and_exit_codes(cls, helper, kind, exit_code):
    err = helper("ERR_X", "msg", a=1)
    assert type(err) is cls
    assert isinstance(err, RecorderError) and isinstance(err, Exception)
    assert err.kind == cls.kind == kind
    assert err.exit_code == cls.exit_code == exit_code == errors.EXIT_CODES[kind]
    assert errors.ERROR_CLASSES[kind] is cls


def test_exit_code_constants():
    assert (errors.EXIT_OK, errors.EXIT_USAGE, errors.EXIT_ENVIRONMENT, errors.EXIT_TARGET,
            errors.EXIT_INTERNAL) == (0, 2, 10, 20, 70)


def test_environment_error_is_not_an_oserror():
    assert not issubclass(EnvironmentError, OSError)
    assert EnvironmentError is not builtins.EnvironmentError
    with pytest.raises(RecorderError):
        raise errors.environment("ERR_IO", "x")
    try:
        raise errors.environment("ERR_IO", "x")
    except OSError:  # pragma: no cover - the point is that this branch is not taken
        pytest.fail("rewind's EnvironmentError was caught as an OSError")
    except RecorderError:
        pass


def test_cause_is_kept():
    original = FileNotFoundError(errno.ENOENT, "No such file", "f.toml")
    with pytest.raises(UsageError) as info:
        try:
            raise original
        except OSError as exc:
            raise errors.usage("ERR_FILTER_NOT_FOUND", "filter not found", path="f.toml") from exc
    assert info.value.__cause__ is original


@pytest.mark.parametrize("cls", [UsageError, EnvironmentError, TargetError, InternalError])
def test_pickle_round_trip(cls):
    err = cls("ERR_IO", "message", {"k": "v"})
    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is cls
    assert (copy.code, copy.message, copy.context) == (err.code, err.message, err.context)
    assert str(copy) == str(err)


# --- the registry ---------------------------------------------------------------------------------

def test_required_codes_are_registered_with_their_kinds():
    for code, kind in REQUIRED_CODES.items():
        assert code in errors.CODES, code
        assert errors.CODES[code].kind == kind, code


def test_every_code_has_a_constant_a_kind_and_a_description():
    for code, entry in errors.CODES.items():
        assert entry.code == code
        assert re.fullmatch(r"ERR_[A-Z0-9_]+", code)
        assert getattr(errors, code) == code
        assert entry.kind in errors.EXIT_CODES
        assert entry.exit_code == errors.EXIT_CODES[entry.kind]
        assert len(entry.when) > 20


def test_every_err_constant_is_registered():
    constants = {name for name in vars(errors) if name.startswith("ERR_")}
    assert constants == set(errors.CODES)


def test_from_code_uses_the_registered_kind():
    assert type(errors.from_code("ERR_DISK_FULL", "full", path="p")) is EnvironmentError
    assert type(errors.from_code("ERR_ALREADY_TRACING", "x")) is UsageError
    assert type(errors.from_code("ERR_TARGET_NOT_FOUND", "x")) is TargetError
    unknown = errors.from_code("ERR_NOT_A_CODE", "x")
    assert type(unknown) is InternalError and unknown.code == "ERR_NOT_A_CODE"


def test_docs_table_matches_the_registry():
    text = DOCS.read_text(encoding="utf-8")
    rows = {
        m.group(1): (m.group(2), int(m.group(3)))
        for m in re.finditer(r"^\| `(ERR_[A-Z0-9_]+)` \| (\w+) \| (\d+) \|", text, re.MULTILINE)
    }
    assert rows == {code: (e.kind, e.exit_code) for code, e in errors.CODES.items()}


# --- classify -------------------------------------------------------------------------------------

def test_classify_keeps_recorder_errors_unchanged():
    err = errors.usage("ERR_INVALID_FILTER", "bad")
    assert errors.classify(err) is err
    assert errors.classify(err, extra="ignored") is err
    assert "extra" not in err.context


@pytest.mark.parametrize("name", ["ENOSPC", "EFBIG", "EDQUOT"])
def test_classify_disk_full(name):
    number = getattr(errno, name, None)
    if number is None:
        pytest.skip(f"{name} does not exist here")
    exc = OSError(number, "No space left", "/tmp/trace.json")
    err = errors.classify(exc)
    assert type(err) is EnvironmentError
    assert err.code == "ERR_DISK_FULL"
    assert err.exit_code == 10
    assert err.context == {"errno": name, "path": "/tmp/trace.json"}
    assert err.__cause__ is exc


@pytest.mark.parametrize(
    "exc",
    [
        PermissionError(errno.EACCES, "Permission denied", "/root/x"),
        FileNotFoundError(errno.ENOENT, "No such file or directory", "missing"),
        OSError("no errno at all"),
        BrokenPipeError(errno.EPIPE, "Broken pipe"),
    ],
)
def test_classify_other_oserrors_are_io(exc):
    err = errors.classify(exc, where="writer")
    assert type(err) is EnvironmentError
    assert err.code == "ERR_IO"
    assert err.context["where"] == "writer"
    assert err.message
    assert err.__cause__ is exc


def test_classify_io_context():
    err = errors.classify(PermissionError(errno.EACCES, "Permission denied", "/root/x"))
    assert str(err) == "[ERR_IO] Permission denied (errno=EACCES, path=/root/x)"


@pytest.mark.parametrize("exc", [ValueError("bad"), KeyError("k"), RuntimeError(), ZeroDivisionError("x")])
def test_classify_anything_else_is_internal_unknown(exc):
    err = errors.classify(exc)
    assert type(err) is InternalError
    assert err.code == "ERR_UNKNOWN"
    assert err.exit_code == 70
    assert err.__cause__ is exc
    assert err.context["exception"].endswith(type(exc).__qualname__)
    assert type(exc).__name__ in err.message


def test_classify_survives_an_exception_whose_str_raises():
    class Nasty(Exception):
        def __str__(self):
            raise RuntimeError("no str for you")

    err = errors.classify(Nasty())
    assert err.code == "ERR_UNKNOWN"
    assert err.message == "unexpected Nasty"


def test_exit_code_for():
    assert errors.exit_code_for(errors.usage("ERR_X", "m")) == 2
    assert errors.exit_code_for(errors.target("ERR_X", "m")) == 20
    assert errors.exit_code_for(ValueError()) == 70


def test_package_exports_the_hierarchy():
    import rewind

    for name in ("RecorderError", "UsageError", "EnvironmentError", "TargetError", "InternalError"):
        assert getattr(rewind, name) is getattr(errors, name)
