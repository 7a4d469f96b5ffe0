"""`rewind convert SRC DST`: rewrite a trace's events as trace.json or trace.bin.

The events are streamed from SRC (through trace_reader) into a new trace directory, so memory
stays bounded for traces of any size.  `trace_paths.json` is copied as is and
`trace_metadata.json` is copied with `recorder.format` set to the new format.  The new
directory is built under a temporary name beside DST and renamed into place at the end, so an
interrupted conversion never leaves a half-written DST.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import sys
from pathlib import Path
from typing import Any

from .. import errors
from .trace_reader import (
    EVENTS_BINARY,
    EVENTS_JSON,
    METADATA_FILE,
    PATHS_FILE,
    MissingExtraError,
    TraceNotFoundError,
    TraceSyntaxError,
    iter_events,
    locate_trace,
    read_json_file,
)

FORMATS = ("json", "binary")
EVENT_FILES = {"json": EVENTS_JSON, "binary": EVENTS_BINARY}
# What a directory may hold to be replaced with --force (a trace directory, nothing else).
TRACE_FILES = frozenset({EVENTS_JSON, EVENTS_BINARY, METADATA_FILE, PATHS_FILE})
_BATCH = 2048  # events per write to the sink


def convert_trace(src: str | os.PathLike[str], dst: str | os.PathLike[str], *, to: str | None = None,
                  force: bool = False, level: int | None = None) -> dict[str, Any]:
    """Convert the trace directory `src` into a new trace directory `dst`.

    `to` defaults to the other format than the source's.  Raises `RecorderError`s:
    usage (bad paths, DST not empty without `force`), environment (missing `binary` extra,
    I/O), or ERR_UNSUPPORTED_FORMAT / ERR_TRACE_INCOMPLETE for a source it cannot read.
    Returns a small report: formats, event count, sizes.
    """
    try:
        location = locate_trace(src)
    except TraceNotFoundError as err:
        raise errors.usage(errors.ERR_TRACE_MISSING, str(err), path=os.fspath(src)) from None
    src_format = location.format
    dst_format = to or ("binary" if src_format == "json" else "json")
    if dst_format not in FORMATS:
        raise errors.usage(errors.ERR_UNSUPPORTED_FORMAT, "unknown trace format", format=dst_format,
                           allowed=", ".join(FORMATS))
    if "binary" in (src_format, dst_format):
        from ..writer.binary_writer import require_modules
        require_modules()  # ERR_MISSING_EXTRA naming pip install 'rewind[binary]'

    target = Path(os.path.abspath(os.fspath(dst)))
    _check_destination(location.directory, target, force)
    metadata = _read_metadata(location.directory / METADATA_FILE, dst_format)

    staging = target.parent / f".{target.name}.rewind-convert-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging.mkdir()
    except OSError as exc:
        raise errors.environment(errors.ERR_TRACE_DIR_CREATE_FAILED, "cannot create the destination directory",
                                 path=str(target), reason=exc.strerror or str(exc)) from exc
    try:
        count, paths = _copy_events(location.events_file, staging, dst_format, level)
        paths_file = location.directory / PATHS_FILE
        if paths_file.is_file():
            shutil.copyfile(paths_file, staging / PATHS_FILE)
        else:  # rebuild it from the Path events (trace-format.md rule 9)
            _write_json(staging / PATHS_FILE, paths)
        _write_json(staging / METADATA_FILE, metadata)
        _publish(staging, target)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError):
            code = errors.ERR_DISK_FULL if exc.errno in (27, 28) else errors.ERR_IO
            raise errors.environment(code, "cannot write the converted trace", path=str(target),
                                     reason=exc.strerror or str(exc)) from exc
        raise
    events_file = target / EVENT_FILES[dst_format]
    return {"source": str(location.directory), "source_format": src_format,
            "source_size": location.events_file.stat().st_size, "destination": str(target),
            "format": dst_format, "size": events_file.stat().st_size, "events": count}


def _check_destination(source_dir: Path, target: Path, force: bool) -> None:
    if target.exists() and not target.is_dir():
        raise errors.usage(errors.ERR_TRACE_DIR_CONFLICT, "the destination exists and is not a directory",
                           path=str(target))
    if target.is_dir():
        if target.resolve() == source_dir.resolve():
            raise errors.usage(errors.ERR_TRACE_DIR_CONFLICT, "the destination is the source directory",
                               path=str(target))
        found = sorted(os.listdir(target))
        if found and not force:
            raise errors.usage(errors.ERR_TRACE_DIR_CONFLICT,
                               "the destination directory is not empty; use --force to replace it",
                               path=str(target))
        foreign = sorted(set(found) - TRACE_FILES)
        if foreign:  # even --force replaces only a trace directory
            raise errors.usage(errors.ERR_TRACE_DIR_CONFLICT,
                               "the destination holds files that are not a trace; refusing to replace it",
                               path=str(target), found=", ".join(foreign[:5]))


def _read_metadata(path: Path, dst_format: str) -> Any:
    try:
        metadata = read_json_file(path)
    except FileNotFoundError:
        raise errors.target(errors.ERR_TRACE_INCOMPLETE, f"the source has no {METADATA_FILE}",
                            path=str(path)) from None
    except (OSError, ValueError) as err:
        raise errors.target(errors.ERR_TRACE_INCOMPLETE, f"the source's {METADATA_FILE} cannot be read",
                            path=str(path), reason=str(err)) from None
    if isinstance(metadata, dict):
        recorder = metadata.get("recorder")
        if recorder is None:
            metadata["recorder"] = {"format": dst_format}
        elif isinstance(recorder, dict):
            recorder["format"] = dst_format
    return metadata


def _copy_events(events_file: Path, staging: Path, dst_format: str, level: int | None) -> tuple[int, list[str]]:
    sink = _open_sink(dst_format, staging, level)
    encode = _event_encoder(dst_format)
    paths: list[str] = []
    count = 0
    batch: list[Any] = []
    try:
        events = iter_events(events_file)
        for count, (_, event) in enumerate(events, 1):
            if isinstance(event, dict) and isinstance(event.get("Path"), str):
                paths.append(event["Path"])
            batch.append(encode(event))
            if len(batch) >= _BATCH:
                _write_batch(sink, dst_format, batch, first=count == len(batch))
                batch = []
        if batch:
            _write_batch(sink, dst_format, batch, first=count == len(batch))
        if count == 0 and dst_format == "json":
            sink.write_first("")  # an empty array: "[" + "\n]\n"
    except MissingExtraError as err:
        sink.abandon()
        raise errors.environment(errors.ERR_MISSING_EXTRA, str(err)) from None
    except TraceSyntaxError as err:
        sink.abandon()
        raise errors.usage(errors.ERR_UNSUPPORTED_FORMAT, f"cannot read the source trace: {err.message}",
                           path=str(events_file), event=err.event_index, byte_offset=err.byte_offset) from None
    except ValueError as err:  # an event the destination format cannot hold (NaN, lone surrogate...)
        sink.abandon()
        raise errors.usage(errors.ERR_UNSUPPORTED_FORMAT, f"event #{count} cannot be converted: {err}",
                           path=str(events_file)) from None
    except BaseException:
        sink.abandon()
        raise
    sink.close()
    return count, paths


def _open_sink(dst_format: str, directory: Path, level: int | None):
    if dst_format == "binary":
        from ..writer.binary_writer import DEFAULT_LEVEL, BinaryEventSink
        return BinaryEventSink(str(directory), level=DEFAULT_LEVEL if level is None else level)
    from ..writer.json_writer import JsonEventSink
    return JsonEventSink(str(directory))


def _event_encoder(dst_format: str):
    if dst_format == "binary":
        import cbor2

        from ..writer.binary_writer import replace_surrogates
        dumps = cbor2.dumps

        def encode(event: Any) -> bytes:
            try:
                return dumps(event)
            except UnicodeEncodeError:  # a lone surrogate: `?`, as trace.json gets it
                return dumps(replace_surrogates(event))
        return encode
    # rewind's own layout: compact, non-ASCII kept (as the recorder writes it).
    return json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def _write_batch(sink, dst_format: str, batch: list, first: bool) -> None:
    if dst_format == "binary":
        sink.write_cbor_events(batch)
    elif first:
        sink.write_first(batch[0])
        if len(batch) > 1:
            sink.write(",\n" + ",\n".join(batch[1:]))
    else:
        sink.write(",\n" + ",\n".join(batch))


def _write_json(path: Path, data: Any) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, ensure_ascii=False)
        f.write("\n")


def _publish(staging: Path, target: Path) -> None:
    old = None
    if target.is_dir():
        old = staging.with_name(staging.name + ".old")
        os.rename(target, old)
    os.rename(staging, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# --- CLI ----------------------------------------------------------------------------------

def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert", help="convert a trace between trace.json and trace.bin",
        description="Write the events of the trace directory SRC into a new trace directory DST in the "
                    "other format (trace.json <-> trace.bin), with trace_paths.json and "
                    "trace_metadata.json copied (recorder.format updated).")
    parser.add_argument("src", metavar="SRC", help="the trace directory to read")
    parser.add_argument("dst", metavar="DST", help="the trace directory to write (must not exist or be empty)")
    parser.add_argument("--to", choices=FORMATS, default=None,
                        help="the format to write (default: the other one)")
    parser.add_argument("--force", action="store_true", help="replace DST if it already holds a trace")
    parser.add_argument("--level", type=int, default=None, metavar="N",
                        help="zstd level for trace.bin (default 3)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    report = convert_trace(args.src, args.dst, to=args.to, force=args.force, level=args.level)
    print(f"converted {report['events']} events: {report['source']} ({report['source_format']}, "
          f"{report['source_size']} bytes) -> {report['destination']} ({report['format']}, "
          f"{report['size']} bytes)", file=sys.stdout)
    return 0
