"""`rewind record`: run a target under a session and exit the way the contract says."""
from __future__ import annotations

import argparse
import os
import signal
import sys

from . import diagnostics, errors
from .policy import Policy, recording_disabled, resolve_policy
from .runner import TargetOutcome, resolve_target, run_target
from .session import Session

DEFAULT_TRACE_DIR = "trace-out"
# main() returns this to ask entry() to die by SIGINT, as Python does after an uncaught
# KeyboardInterrupt, so the shell sees the same status.
EXIT_BY_SIGINT = -signal.SIGINT


def _policy_overrides(args: argparse.Namespace) -> dict:
    fields = ("on_recorder_error", "require_trace", "keep_partial_trace", "log_level", "log_file",
              "json_errors", "io_capture", "propagate_script_exit")
    return {name: getattr(args, name) for name in fields if getattr(args, name, None) is not None}


def _report(err: errors.RecorderError, policy: Policy | None) -> int:
    diagnostics.report_error(err, policy)
    return err.exit_code


def record_target(args: argparse.Namespace, script: str | None, program_args: list[str]) -> int:
    policy = None
    try:
        policy = resolve_policy(_policy_overrides(args), source="cli")
        target = resolve_target("module" if args.module else "script", args.module or script, program_args)
        diagnostics.setup_logging(policy)
    except errors.RecorderError as err:
        return _report(err, policy)

    if recording_disabled():
        print("rewind: recording disabled by CODETRACER_PYTHON_RECORDER_DISABLED; running without a trace",
              file=sys.stderr)
        return _finish_program(run_target(target), policy.propagate_script_exit, note=False)

    session = Session(
        args.trace_dir or os.environ.get("CODETRACER_PYTHON_RECORDER_OUT_DIR") or DEFAULT_TRACE_DIR,
        policy=policy,
        format=args.format or os.environ.get("CODETRACER_FORMAT") or "json",
        trace_filter=args.trace_filter,
        activation_path=args.activation_path or target.file,
        program=target.name,
        args=program_args,
        script_dir=os.path.dirname(target.file),
        framework=None,
        toplevel_path=target.file,
    )
    try:
        session.start()
    except errors.RecorderError as err:
        return _report(err, policy)

    outcome = run_target(target)
    failure = session.failed
    if isinstance(outcome.exception, errors.RecorderError) and failure is None:
        failure = outcome.exception
    try:
        session.stop(outcome.exit_code, outcome.exception,
                     None if isinstance(outcome.exception, errors.RecorderError) else outcome.traceback_text)
    except errors.RecorderError as err:
        failure = failure or err
    if failure is not None:
        if isinstance(outcome.exception, errors.RecorderError):
            outcome = TargetOutcome(outcome.exit_code)  # ours, not the program's: no traceback
        _finish_program(outcome, False, note=False)
        return _report(failure, policy)
    return _finish_program(outcome, policy.propagate_script_exit)


def _finish_program(outcome: TargetOutcome, propagate: bool, note: bool = True) -> int:
    """Print what Python prints at the program's end, and pick the exit status."""
    exc = outcome.exception
    if outcome.traceback_text:
        sys.stderr.write(outcome.traceback_text)
    elif isinstance(exc, SystemExit) and exc.code is not None and not isinstance(exc.code, int):
        print(exc.code, file=sys.stderr)
    sys.stderr.flush()
    if propagate:
        if isinstance(exc, KeyboardInterrupt):
            return EXIT_BY_SIGINT
        return outcome.exit_code
    if outcome.exit_code != 0 and note:
        print("rewind: the program exited with status %d (use --propagate-script-exit to exit with it)"
              % outcome.exit_code, file=sys.stderr)
    return 0
