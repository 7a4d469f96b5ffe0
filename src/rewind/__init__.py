"""rewind: record the execution of a Python program into a CodeTracer trace.

    import rewind
    with rewind.trace("trace-out"):
        work()

PYTEST_DONT_REWRITE: rewind ships a pytest plugin, so pytest marks this package for assertion
rewriting, but rewind is often imported before pytest starts (`rewind --pytest`, auto-start):
this marker keeps pytest from warning that it cannot rewrite it.
"""
from __future__ import annotations

from ._version import __version__
from .api import flush, is_tracing, start, stop, trace
from .diagnostics import metrics
from .errors import EnvironmentError, InternalError, RecorderError, TargetError, UsageError
from .policy import configure_policy, configure_policy_from_env, policy_snapshot

__all__ = [
    "__version__", "trace", "start", "stop", "is_tracing", "flush",
    "configure_policy", "configure_policy_from_env", "policy_snapshot", "metrics",
    "RecorderError", "UsageError", "EnvironmentError", "TargetError", "InternalError",
]
