"""`rewind filter check FILE...` and `rewind filter explain [--trace-filter SPEC]... TARGET [VALUE]`."""
from __future__ import annotations

import argparse
import json
import os
import sys

from .. import errors, filters


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "filter", help="check trace filter files, or explain what they decide",
        description="Check trace filter files, or explain which rule decides for a module, file or function.",
    )
    commands = parser.add_subparsers(dest="filter_command", metavar="{check,explain}")

    check = commands.add_parser(
        "check", help="validate filter files exactly as recording would (exit 0 valid, 2 invalid)",
    )
    check.add_argument("files", nargs="+", metavar="FILE", help="filter files (a::b chains allowed)")
    check.set_defaults(func=run)

    explain = commands.add_parser(
        "explain", help="which rule of which filter decides exec and value actions, and why",
        description="TARGET is a module (pkg.mod), a file (path/to/mod.py), module.qualname "
                    "(pkg.mod.Cls.meth) or module:qualname. VALUE is KIND:NAME, e.g. arg:password "
                    "(kinds: local, global, arg, ret, attr; 'ret' alone for the return value).",
    )
    explain.add_argument("--trace-filter", action="append", default=[], metavar="SPEC",
                         help="filter file(s) as for recording; repeatable; a.toml::b.toml chains")
    explain.add_argument("--framework", choices=sorted(filters.chain.FRAMEWORK_FILTERS),
                         help="include that framework's builtin filter (as --pytest/--unittest would)")
    explain.add_argument("--script-dir", metavar="DIR",
                         help="where to discover .codetracer/trace-filter.toml from (default: the "
                              "target file's directory, else the current directory)")
    explain.add_argument("--json", action="store_true", help="print the explanation as JSON")
    explain.add_argument("target", metavar="TARGET")
    explain.add_argument("value", metavar="VALUE", nargs="?")
    explain.set_defaults(func=run)

    parser.set_defaults(func=run, filter_parser=parser)


def run(args: argparse.Namespace) -> int:
    command = getattr(args, "filter_command", None)
    if command == "check":
        return _check(args.files)
    if command == "explain":
        return _explain(args)
    parser = getattr(args, "filter_parser", None)
    if parser is not None:
        parser.print_usage(sys.stderr)
    print("rewind filter: choose a command: check or explain", file=sys.stderr)
    return errors.EXIT_USAGE


def _check(specs: list[str]) -> int:
    status = 0
    for entry in filters.split_specs(specs):
        try:
            loaded = filters.load_filter_file(entry)
            # Recording puts builtin-default first: compose so 'inherit' is judged the same way.
            filters.compose([filters.load_builtin("builtin-default"), loaded])
        except errors.RecorderError as err:
            print(str(err), file=sys.stderr)
            status = max(status, err.exit_code)
            continue
        print(f"ok: {loaded.path} ({loaded.name}, version {loaded.version}, {len(loaded.rules)} rules)")
    return status


def _explain(args: argparse.Namespace) -> int:
    target = filters.resolve_target(args.target)
    script_dir = args.script_dir
    if script_dir is None:
        script_dir = os.path.dirname(target.filename) if target.filename else os.getcwd()
    chain = filters.build_chain(args.trace_filter, script_dir=script_dir, framework=args.framework)
    result = filters.explain(chain, target, args.value)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(filters.format_explanation(result))
    return 0
