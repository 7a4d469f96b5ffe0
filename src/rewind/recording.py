"""`rewind record`: run a target under a session and exit the way the contract says."""
from __future__ import annotations

import argparse
import os
import signal
import sys

from . import api, children, diagnostics, errors
from .policy import ENV_PROPAGATE_SCRIPT_EXIT, Policy, env_flag, recording_disabled, resolve_policy
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


def _framework_overrides(args: argparse.Namespace, overrides: dict) -> dict:
    """`--pytest`/`--unittest` exit with the suite's own status unless told otherwise
    (docs/test-frameworks.md): a CI job must still fail when its tests fail."""
    if (getattr(args, "framework", None) and "propagate_script_exit" not in overrides
            and not os.environ.get(ENV_PROPAGATE_SCRIPT_EXIT, "").strip()):
        overrides["propagate_script_exit"] = True
    return overrides


def record_target(args: argparse.Namespace, script: str | None, program_args: list[str]) -> int:
    policy = None
    framework = getattr(args, "framework", None)  # --pytest / --unittest
    try:
        policy = resolve_policy(_framework_overrides(args, _policy_overrides(args)), source="cli")
        target = resolve_target("module" if args.module else "script", args.module or script, program_args)
        follow_children = bool(args.follow_children or env_flag(children.ENV_FOLLOW_CHILDREN))
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
        # A test suite's project filter is found from where the suite runs, not from pytest's files.
        script_dir=os.getcwd() if framework else os.path.dirname(target.file),
        framework=None if getattr(args, "no_framework_filters", False) else framework,
        toplevel_path=target.file,
    )
    try:
        api.begin(session)
    except errors.RecorderError as err:
        return _report(err, policy)
    if follow_children:
        children.follow(session)

    session.conclude = lambda status: _conclude(session, TargetOutcome(status), policy, "os._exit")
    return _conclude(session, run_target(target), policy)


def _conclude(session: Session, outcome: TargetOutcome, policy: Policy, label: str | None = None) -> int:
    """Finish the session once the program has ended (or calls os._exit) and pick the exit
    status: a recorder failure under `abort` wins over whatever the program did with it;
    under `disable` the program's own status stands (the failure was reported when it
    happened)."""
    ours = outcome.exception is not None and outcome.exception is session.failed
    failure = session.failed if policy.on_recorder_error == "abort" else None
    try:
        session.stop(outcome.exit_code, outcome.exception, None if ours else outcome.traceback_text,
                     label=label)
    except errors.RecorderError as err:
        failure = failure or err
    if failure is not None:
        if ours:
            outcome = TargetOutcome(outcome.exit_code)  # ours, not the program's: no traceback
        _finish_program(outcome, False, note=False)
        previous = diagnostics.set_trace_id(session.recording_id)  # the report names the session
        try:
            return _report(failure, policy)
        finally:
            diagnostics.set_trace_id(previous)
    return _finish_program(outcome, policy.propagate_script_exit)


def _finish_program(outcome: TargetOutcome, propagate: bool, note: bool = True) -> int:
    """Print what Python prints at the program's end, and pick the exit status."""
    exc = outcome.exception
    if outcome.traceback_text:
        _to_stderr(outcome.traceback_text)
    elif isinstance(exc, SystemExit) and exc.code is not None and not isinstance(exc.code, int):
        _to_stderr("%s\n" % (exc.code,))
    if propagate:
        if isinstance(exc, KeyboardInterrupt):
            return EXIT_BY_SIGINT
        return outcome.exit_code
    if outcome.exit_code != 0 and note:
        _to_stderr("rewind: the program exited with status %d (use --propagate-script-exit to exit with it)\n"
                   % outcome.exit_code)
    return 0


def _to_stderr(text: str) -> None:
    """Write to sys.stderr; if the program closed or broke it, to file descriptor 2."""
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):
        try:
            os.write(2, text.encode("utf-8", "backslashreplace"))
        except OSError:
            pass
