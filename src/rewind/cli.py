"""Command line: `rewind [record] [OPTIONS] SCRIPT|-m MODULE [ARGS...]` and the tool subcommands."""
from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
from typing import Sequence

from . import errors
from ._version import __version__

# Tool subcommands (contract section 7): each module has register(subparsers) and run(args).
TOOL_MODULES = {
    "validate": "rewind.tools.validate",
    "summary": "rewind.tools.summary",
    "filter": "rewind.tools.filter_cmd",
    "convert": "rewind.tools.convert",
}

# Recording options that take a value: needed to find where the target starts.
_VALUE_OPTIONS = {"--trace-dir", "--out-dir", "-o", "--format", "--trace-filter", "--activation-path",
                  "--on-recorder-error", "--log-level", "--log-file", "--io-capture"}

RECORD_USAGE = ("rewind [record] [OPTIONS] SCRIPT [ARGS...] | -m MODULE [ARGS...] "
                "| --pytest [PYTEST ARGS...] | --unittest [UNITTEST ARGS...]")

# `--pytest ARGS...` / `--unittest ARGS...` run `-m pytest` / `-m unittest` with the rest of the
# command line as the framework's own arguments (docs/test-frameworks.md).
FRAMEWORK_OPTIONS = {"--pytest": "pytest", "--unittest": "unittest"}


def build_record_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rewind", usage=RECORD_USAGE,
        description="Record a Python program into a CodeTracer trace. "
                    "Tools: rewind validate|summary|filter|convert ...",
        epilog="Everything after the script (or -m MODULE, or --) belongs to the program.")
    parser.add_argument("--version", action="version", version="rewind %s" % __version__)
    parser.add_argument("--trace-dir", "--out-dir", "-o", dest="trace_dir", metavar="DIR",
                        help="where the trace directory goes "
                             "(default ./trace-out; env CODETRACER_PYTHON_RECORDER_OUT_DIR)")
    parser.add_argument("--format", choices=("json", "binary"),
                        help="event file format (default json; env CODETRACER_FORMAT)")
    parser.add_argument("--trace-filter", action="append", default=[], metavar="SPEC",
                        help="filter file(s); repeatable; a.toml::b.toml chains (env CODETRACER_TRACE_FILTER)")
    parser.add_argument("--activation-path", metavar="PATH",
                        help="record only from the moment this file's code starts running (default: the script)")
    parser.add_argument("--on-recorder-error", choices=("abort", "disable"))
    parser.add_argument("--require-trace", action="store_true", default=None)
    parser.add_argument("--keep-partial-trace", action="store_true", default=None)
    parser.add_argument("--log-level", choices=("debug", "info", "warning", "error", "critical"))
    parser.add_argument("--log-file", metavar="PATH")
    parser.add_argument("--json-errors", action="store_true", default=None)
    parser.add_argument("--io-capture", choices=("off", "proxies", "proxies+fd"))
    parser.add_argument("--propagate-script-exit", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--no-framework-filters", action="store_true",
                        help="with --pytest/--unittest: do not add the builtin framework filter")
    parser.add_argument("--follow-children", action="store_true", default=None,
                        help="also record child Python processes (subprocess, multiprocessing) into "
                             "TRACE_DIR.children/PID (env CODETRACER_FOLLOW_CHILDREN)")
    for flag, framework in FRAMEWORK_OPTIONS.items():
        parser.add_argument(flag, dest="framework", action="store_const", const=framework,
                            help="run %s under recording; everything after it is %s's own arguments"
                                 % (framework, framework))
    parser.add_argument("-m", dest="module", metavar="MODULE", help="run a library module as a script")
    return parser


def split_record_argv(argv: Sequence[str]) -> tuple[list[str], str | None, str | None, list[str]]:
    """Split into (rewind options, script, module, program args): everything after the
    script, `-m MODULE` or `--` belongs to the program."""
    options: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in FRAMEWORK_OPTIONS:
            # The framework runs as `-m pytest|unittest`; the flag stays in the options so the
            # parser records which framework (and its builtin filter) this is.
            return [*options, arg], None, FRAMEWORK_OPTIONS[arg], list(argv[i + 1:])
        if arg == "--":
            rest = list(argv[i + 1:])
            return options, (rest[0] if rest else None), None, rest[1:]
        if arg == "-m" or (arg.startswith("-m") and len(arg) > 2 and not arg.startswith("--")):
            module = arg[2:] or (argv[i + 1] if i + 1 < len(argv) else None)
            rest_at = i + 1 if arg[2:] else i + 2
            return options, None, module, list(argv[rest_at:])
        if arg.startswith("-") and arg != "-":
            options.append(arg)
            if arg in _VALUE_OPTIONS:
                if i + 1 < len(argv):
                    options.append(argv[i + 1])
                i += 2
                continue
            i += 1
            continue
        return options, arg, None, list(argv[i + 1:])
    return options, None, None, []


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in TOOL_MODULES:
        return _run_tool(argv)
    if argv and argv[0] == "record":
        argv = argv[1:]
    return _record(argv)


def _run_tool(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="rewind")
    subparsers = parser.add_subparsers(dest="tool", required=True)
    name = argv[0]
    try:
        module = importlib.import_module(TOOL_MODULES[name])
    except ImportError as exc:
        print("rewind: the %s tool is not available: %s" % (name, exc), file=sys.stderr)
        return errors.EXIT_INTERNAL
    module.register(subparsers)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:
        # The reader went away (`rewind summary DIR | head`): stop quietly, as pipelines expect.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except errors.RecorderError as err:
        print("rewind: error: %s" % err, file=sys.stderr)
        return err.exit_code


def _record(argv: list[str]) -> int:
    from .recording import record_target
    parser = build_record_parser()
    options, script, module, program_args = split_record_argv(argv)
    args = parser.parse_args(options + (["-m", module] if module else []))
    if script is None and module is None:
        parser.error("no script or -m MODULE given")
    return record_target(args, script, program_args)


def entry() -> None:
    """Console-script entry point."""
    code = main()
    if code == -signal.SIGINT:  # KeyboardInterrupt with --propagate-script-exit
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    sys.exit(code)


if __name__ == "__main__":
    entry()
