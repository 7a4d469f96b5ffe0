"""Recording policy: how the recorder behaves around failures, logging, IO and value bounds.

(Extended by the errors/policy work; keep the public names.)
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class Policy:
    on_recorder_error: str = "abort"
    require_trace: bool = False
    keep_partial_trace: bool = False
    log_level: str = "warning"
    log_file: str | None = None
    json_errors: bool = False
    io_capture: str = "proxies"
    propagate_script_exit: bool = False
    max_depth: int = 3
    max_items: int = 50
    max_string: int = 1000

    def replace(self, **changes: object) -> "Policy":
        return dataclasses.replace(self, **changes)


def load_policy(overrides: dict | None = None, environ: dict | None = None) -> Policy:
    """Built-in defaults < environment < explicit overrides."""
    return Policy(**(overrides or {}))
