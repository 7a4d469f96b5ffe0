"""The recorder's error facade: every recorder-side failure is a RecorderError.

Codes are stable strings that scripts can match on; kinds map to CLI exit codes.
(This module is extended by the errors/policy work; keep the public names.)
"""
from __future__ import annotations

from typing import Mapping

EXIT_USAGE = 2
EXIT_ENVIRONMENT = 10
EXIT_TARGET = 20
EXIT_INTERNAL = 70


class RecorderError(Exception):
    kind = "internal"
    exit_code = EXIT_INTERNAL

    def __init__(self, code: str, message: str, context: Mapping[str, object] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.context = {str(k): str(v) for k, v in (context or {}).items()}

    def __str__(self) -> str:
        if self.context:
            ctx = ", ".join(f"{k}={v}" for k, v in self.context.items())
            return f"[{self.code}] {self.message} ({ctx})"
        return f"[{self.code}] {self.message}"


class UsageError(RecorderError):
    kind = "usage"
    exit_code = EXIT_USAGE


class EnvironmentError(RecorderError):  # noqa: A001 - contract name; deliberately not an OSError
    kind = "environment"
    exit_code = EXIT_ENVIRONMENT


class TargetError(RecorderError):
    kind = "target"
    exit_code = EXIT_TARGET


class InternalError(RecorderError):
    kind = "internal"
    exit_code = EXIT_INTERNAL


def usage(code: str, message: str, **context: object) -> UsageError:
    return UsageError(code, message, context)


def environment(code: str, message: str, **context: object) -> EnvironmentError:
    return EnvironmentError(code, message, context)


def target(code: str, message: str, **context: object) -> TargetError:
    return TargetError(code, message, context)


def internal(code: str, message: str, **context: object) -> InternalError:
    return InternalError(code, message, context)
