"""The recorder's error facade: every recorder-side failure is a RecorderError.

A RecorderError carries a stable ``code`` (an ``ERR_*`` string scripts can match
on), a ``kind`` (usage, environment, target, internal) that fixes the CLI exit
code, and a ``context`` dict of strings.  ``str(err)`` is
``[ERR_CODE] message (k=v, ...)``.

Raise with one line through the helper of the right kind::

    raise errors.usage(errors.ERR_INVALID_FILTER, "unknown key", path=str(path))
    raise errors.environment(errors.ERR_IO, "cannot write trace", path=p) from exc

and turn any caught exception into a classified error with ``classify(exc)``.

Every code is defined once below, in ``CODES``, with its kind and when it is
raised; docs/errors.md is the user-facing copy of that table.
"""
from __future__ import annotations

import errno as _errno
from collections.abc import Mapping
from typing import NamedTuple

# CLI exit codes.  A recorder failure wins over the script's own status.
EXIT_OK = 0
EXIT_USAGE = 2
EXIT_ENVIRONMENT = 10
EXIT_TARGET = 20
EXIT_INTERNAL = 70

KIND_USAGE = "usage"
KIND_ENVIRONMENT = "environment"
KIND_TARGET = "target"
KIND_INTERNAL = "internal"

EXIT_CODES: dict[str, int] = {
    KIND_USAGE: EXIT_USAGE,
    KIND_ENVIRONMENT: EXIT_ENVIRONMENT,
    KIND_TARGET: EXIT_TARGET,
    KIND_INTERNAL: EXIT_INTERNAL,
}


class RecorderError(Exception):
    """Base of every error rewind raises for a recorder-side problem."""

    kind = KIND_INTERNAL
    exit_code = EXIT_INTERNAL

    def __init__(self, code: str, message: str, context: Mapping[str, object] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        # Context values are strings so that the error is always JSON-serialisable.
        self.context = {str(k): str(v) for k, v in (context or {}).items()}

    def __str__(self) -> str:
        if self.context:
            ctx = ", ".join(f"{k}={v}" for k, v in self.context.items())
            return f"[{self.code}] {self.message} ({ctx})"
        return f"[{self.code}] {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.message!r}, {self.context!r})"

    def __reduce__(self):
        # Exception's default pickling replays self.args (message only), which
        # does not fit this __init__; errors must cross process boundaries.
        return (type(self), (self.code, self.message, self.context))

    def to_dict(self) -> dict[str, object]:
        """The error as the ``--json-errors`` fields (without run_id/trace_id)."""
        return {
            "error_code": self.code,
            "error_kind": self.kind,
            "message": self.message,
            "context": dict(self.context),
        }


class UsageError(RecorderError):
    """The caller asked for something invalid: fix the command line, env or API call."""

    kind = KIND_USAGE
    exit_code = EXIT_USAGE


class EnvironmentError(RecorderError):  # the contract name; deliberately not an OSError
    """The machine refused: filesystem, disk space, a missing optional package."""

    kind = KIND_ENVIRONMENT
    exit_code = EXIT_ENVIRONMENT


class TargetError(RecorderError):
    """The program (or trace) rewind was pointed at is missing or unusable."""

    kind = KIND_TARGET
    exit_code = EXIT_TARGET


class InternalError(RecorderError):
    """A bug in rewind."""

    kind = KIND_INTERNAL
    exit_code = EXIT_INTERNAL


ERROR_CLASSES: dict[str, type[RecorderError]] = {
    KIND_USAGE: UsageError,
    KIND_ENVIRONMENT: EnvironmentError,
    KIND_TARGET: TargetError,
    KIND_INTERNAL: InternalError,
}


class ErrorCode(NamedTuple):
    """One stable error code: its kind (hence exit code) and when it is raised."""

    code: str
    kind: str
    when: str

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.kind]


# --- The codes.  Each constant's value is its own name. -----------------------------------------

ERR_ALREADY_TRACING = "ERR_ALREADY_TRACING"
ERR_NOT_TRACING = "ERR_NOT_TRACING"
ERR_INVALID_ARGUMENT = "ERR_INVALID_ARGUMENT"
ERR_TRACE_DIR_CONFLICT = "ERR_TRACE_DIR_CONFLICT"
ERR_UNSUPPORTED_FORMAT = "ERR_UNSUPPORTED_FORMAT"
ERR_INVALID_POLICY_VALUE = "ERR_INVALID_POLICY_VALUE"
ERR_INVALID_FILTER = "ERR_INVALID_FILTER"
ERR_FILTER_NOT_FOUND = "ERR_FILTER_NOT_FOUND"
ERR_TRACE_MISSING = "ERR_TRACE_MISSING"
ERR_TRACE_DIR_CREATE_FAILED = "ERR_TRACE_DIR_CREATE_FAILED"
ERR_IO = "ERR_IO"
ERR_DISK_FULL = "ERR_DISK_FULL"
ERR_NO_FREE_TOOL_ID = "ERR_NO_FREE_TOOL_ID"
ERR_MISSING_EXTRA = "ERR_MISSING_EXTRA"
ERR_TARGET_NOT_FOUND = "ERR_TARGET_NOT_FOUND"
ERR_TRACE_INCOMPLETE = "ERR_TRACE_INCOMPLETE"
ERR_FRAME_INTROSPECTION_FAILED = "ERR_FRAME_INTROSPECTION_FAILED"
ERR_UNKNOWN = "ERR_UNKNOWN"

CODES: dict[str, ErrorCode] = {
    entry.code: entry
    for entry in (
        # usage (exit 2)
        ErrorCode(ERR_ALREADY_TRACING, KIND_USAGE,
                  "start() or trace() is called while a recording session is already active."),
        ErrorCode(ERR_NOT_TRACING, KIND_USAGE,
                  "An operation that needs an active session (such as stop() or flush()) is called "
                  "when none is active, where the API treats that as an error."),
        ErrorCode(ERR_INVALID_ARGUMENT, KIND_USAGE,
                  "A command-line or API argument has the wrong type or value and no more specific "
                  "code applies (for example a trace_filter that is neither a path nor a sequence)."),
        ErrorCode(ERR_TRACE_DIR_CONFLICT, KIND_USAGE,
                  "The trace directory path exists but cannot be used: it is a file, or a directory "
                  "holding something other than a previous trace."),
        ErrorCode(ERR_UNSUPPORTED_FORMAT, KIND_USAGE,
                  "--format / format= / CODETRACER_FORMAT names a format other than json or binary, "
                  "or a tool is given a file it cannot read or write in any known format."),
        ErrorCode(ERR_INVALID_POLICY_VALUE, KIND_USAGE,
                  "A policy setting (CODETRACER_* environment variable, CLI flag or API keyword) has "
                  "an invalid value, or configure_policy() gets an unknown keyword."),
        ErrorCode(ERR_INVALID_FILTER, KIND_USAGE,
                  "A trace filter file is not valid TOML or breaks the filter schema; raised before "
                  "any traced code runs."),
        ErrorCode(ERR_FILTER_NOT_FOUND, KIND_USAGE,
                  "A trace filter named by --trace-filter, trace_filter= or CODETRACER_TRACE_FILTER "
                  "does not exist."),
        ErrorCode(ERR_TRACE_MISSING, KIND_USAGE,
                  "require_trace is set and the session recorded nothing, or a tool is pointed at a "
                  "directory that holds no trace."),
        # environment (exit 10)
        ErrorCode(ERR_TRACE_DIR_CREATE_FAILED, KIND_ENVIRONMENT,
                  "The trace directory or its staging directory cannot be created or renamed into "
                  "place (permissions, read-only filesystem, missing parent)."),
        ErrorCode(ERR_IO, KIND_ENVIRONMENT,
                  "Reading or writing a trace, metadata or log file fails with an operating-system "
                  "error other than a full disk."),
        ErrorCode(ERR_DISK_FULL, KIND_ENVIRONMENT,
                  "A write fails because the disk or quota is full (ENOSPC, EDQUOT) or the file size "
                  "limit is hit (EFBIG, RLIMIT_FSIZE)."),
        ErrorCode(ERR_NO_FREE_TOOL_ID, KIND_ENVIRONMENT,
                  "Python 3.12+: every sys.monitoring tool id is already taken by other tools "
                  "(debuggers, profilers, coverage), so rewind cannot attach."),
        ErrorCode(ERR_MISSING_EXTRA, KIND_ENVIRONMENT,
                  "An optional dependency is not installed (for example zstandard/cbor2 for "
                  "--format binary: pip install 'rewind[binary]')."),
        # target (exit 20)
        ErrorCode(ERR_TARGET_NOT_FOUND, KIND_TARGET,
                  "The script to record does not exist or is not a file, or the -m module cannot "
                  "be found."),
        ErrorCode(ERR_TRACE_INCOMPLETE, KIND_TARGET,
                  "A trace cannot be used because it was cut short: its events end mid-stream, a "
                  "file is missing, or its metadata says partial."),
        # internal (exit 70)
        ErrorCode(ERR_FRAME_INTROSPECTION_FAILED, KIND_INTERNAL,
                  "Reading a frame's code, locals or globals fails unexpectedly inside a hook."),
        ErrorCode(ERR_UNKNOWN, KIND_INTERNAL,
                  "Any other unexpected exception inside rewind (a bug): classify() wraps it, "
                  "keeping the original as __cause__."),
    )
}


def usage(code: str, message: str, **context: object) -> UsageError:
    return UsageError(code, message, context)


def environment(code: str, message: str, **context: object) -> EnvironmentError:
    return EnvironmentError(code, message, context)


def target(code: str, message: str, **context: object) -> TargetError:
    return TargetError(code, message, context)


def internal(code: str, message: str, **context: object) -> InternalError:
    return InternalError(code, message, context)


def from_code(code: str, message: str, **context: object) -> RecorderError:
    """An error of the kind registered for ``code`` (InternalError for an unknown code)."""
    entry = CODES.get(code)
    cls = ERROR_CLASSES[entry.kind] if entry else InternalError
    return cls(code, message, context)


# errno values that mean "no room left"; EDQUOT does not exist on every platform.
_DISK_FULL_ERRNOS = frozenset(
    getattr(_errno, name) for name in ("ENOSPC", "EDQUOT", "EFBIG") if hasattr(_errno, name)
)


def classify(exc: BaseException, **context: object) -> RecorderError:
    """Map any exception to a classified RecorderError, keeping ``exc`` as ``__cause__``.

    - a RecorderError is returned unchanged (``context`` is not merged into it);
    - OSError with ENOSPC/EDQUOT/EFBIG -> EnvironmentError ERR_DISK_FULL;
    - any other OSError -> EnvironmentError ERR_IO;
    - anything else -> InternalError ERR_UNKNOWN.

    ``context`` (for example ``path=...`` or ``where="line hook"``) is added to the new error.
    """
    if isinstance(exc, RecorderError):
        return exc
    details: dict[str, object] = {}
    if isinstance(exc, OSError):
        if exc.errno is not None:
            details["errno"] = _errno.errorcode.get(exc.errno, str(exc.errno))
        if exc.filename is not None:
            details["path"] = exc.filename
        details.update(context)
        message = exc.strerror or str(exc) or type(exc).__name__
        code = ERR_DISK_FULL if exc.errno in _DISK_FULL_ERRNOS else ERR_IO
        error: RecorderError = EnvironmentError(code, message, details)
    else:
        details["exception"] = f"{type(exc).__module__}.{type(exc).__qualname__}"
        details.update(context)
        text = _safe_str(exc)
        message = f"unexpected {type(exc).__name__}" + (f": {text}" if text else "")
        error = InternalError(ERR_UNKNOWN, message, details)
    error.__cause__ = exc
    return error


def exit_code_for(exc: BaseException) -> int:
    """The CLI exit code for a failure: the error's kind code, else internal."""
    if isinstance(exc, RecorderError):
        return exc.exit_code
    return EXIT_INTERNAL


def _safe_str(exc: BaseException) -> str:
    # str() of an exception raised from user code can itself raise.
    try:
        return str(exc)
    except Exception:  # noqa: BLE001 - any failure just means "no text"
        return ""
