"""Streaming access to a trace directory's events, never holding the whole trace in memory.

`iter_events(path)` yields `(index, event)` pairs from `trace.json` (any valid JSON-array
layout) and is the single place a `trace.bin` reader plugs in: see `_EVENT_READERS`.
"""
from __future__ import annotations

import codecs
import importlib.util
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

EVENTS_JSON = "trace.json"
EVENTS_BINARY = "trace.bin"
METADATA_FILE = "trace_metadata.json"
PATHS_FILE = "trace_paths.json"

# Called for a problem that does not stop reading: (event index, message).
ProblemCallback = Callable[[int, str], None]

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_CHUNK_SIZE = 1 << 16
# A longer line is read in pieces, so a one-line trace does not become one huge read.
_LINE_LIMIT = 1 << 20
# A decode error this close to the end of the buffer may just mean "read more".
_TRUNCATION_MARGIN = 16


class TraceNotFoundError(FileNotFoundError):
    """The path is not a trace directory (the message names what is missing)."""


class MissingExtraError(ImportError):
    """Reading this trace needs an optional dependency group that is not installed."""


class TraceSyntaxError(ValueError):
    """The event file is not a valid JSON array; reading cannot go on past this point."""

    def __init__(self, message: str, *, byte_offset: int, event_index: int):
        super().__init__(f"{message} at byte offset {byte_offset}")
        self.message = message
        self.byte_offset = byte_offset
        self.event_index = event_index


@dataclass(frozen=True)
class TraceLocation:
    directory: Path
    events_file: Path
    format: str  # "json" or "binary"


def locate_trace(path: str | os.PathLike[str]) -> TraceLocation:
    """Find the event file of a trace directory (or accept the event file itself)."""
    path = Path(path)
    if path.is_file():
        fmt = "binary" if path.name == EVENTS_BINARY or path.suffix == ".bin" else "json"
        return TraceLocation(path.parent, path, fmt)
    if not path.exists():
        raise TraceNotFoundError(f"{path}: no such trace directory")
    if not path.is_dir():
        raise TraceNotFoundError(f"{path} is not a trace directory")
    if (path / EVENTS_JSON).is_file():
        return TraceLocation(path, path / EVENTS_JSON, "json")
    if (path / EVENTS_BINARY).is_file():
        return TraceLocation(path, path / EVENTS_BINARY, "binary")
    raise TraceNotFoundError(
        f"{path} is not a trace directory: it has no {EVENTS_JSON} (nor {EVENTS_BINARY})")


def iter_events(trace_dir_or_file: str | os.PathLike[str], *,
                on_problem: ProblemCallback | None = None) -> Iterator[tuple[int, Any]]:
    """Yield `(index, event)` for every event of the trace, in order.

    Raises `TraceNotFoundError` at once when there is no event file, `MissingExtraError` for a
    `trace.bin` without the `binary` extra, and `TraceSyntaxError` (with a byte offset) when
    iteration reaches malformed content.  Problems that do not stop reading (a `NaN` or
    `Infinity` token) go to `on_problem`; without it they raise `TraceSyntaxError` too.
    """
    location = locate_trace(trace_dir_or_file)
    return _EVENT_READERS[location.format](location.events_file, on_problem)


def read_json_file(path: str | os.PathLike[str]) -> Any:
    """Load a small JSON side file strictly (no NaN/Infinity); raises ValueError or OSError."""
    with open(path, "rb") as f:
        text = f.read().decode("utf-8")
    return json.loads(text, parse_constant=_reject_constant)


def _reject_constant(token: str) -> float:
    raise ValueError(f"non-standard JSON token {token} (NaN/Infinity are not valid JSON)")


# --- trace.json ---------------------------------------------------------------------------

def _iter_json_events(events_file: Path, on_problem: ProblemCallback | None) -> Iterator[tuple[int, Any]]:
    with open(events_file, "rb") as stream:
        yield from _JsonArrayReader(stream, on_problem).events()


_EXPECT_OPEN, _EXPECT_FIRST, _EXPECT_EVENT, _EXPECT_SEPARATOR, _DONE = range(5)


class _JsonArrayReader:
    """Incremental parser of one top-level JSON array.

    The buffer is refilled one line at a time, so rewind's own layout (one event per line)
    decodes each event with a single `raw_decode` of its line.  A value that spans lines
    (pretty-printed traces) or a line longer than `_LINE_LIMIT` gets more text appended in
    growing chunks until it decodes, so any valid layout works in bounded memory: about
    `_LINE_LIMIT` or twice the largest single event, whichever is larger.
    """

    def __init__(self, stream: BinaryIO, on_problem: ProblemCallback | None):
        self._stream = stream
        self._on_problem = on_problem
        self._utf8 = codecs.getincrementaldecoder("utf-8")("strict")
        self._decoder = json.JSONDecoder(parse_constant=self._flag_constant)
        self._buf = ""
        self._pos = 0
        self._bytes_read = 0
        self._eof = False
        self._flagged_constants: list[str] = []
        self._index = 0
        self._utf8_error: str | None = None  # raised once the text before it is used up

    def events(self) -> Iterator[tuple[int, Any]]:
        state = _EXPECT_OPEN
        while True:
            char = self._next_significant_char()
            if state == _EXPECT_OPEN:
                if char != "[":
                    found = "end of file" if not char else repr(char)
                    raise self._error(f"the event file must be a JSON array: expected '[', found {found}")
                self._pos += 1
                state = _EXPECT_FIRST
            elif state == _EXPECT_FIRST or state == _EXPECT_EVENT:
                if char == "]" and state == _EXPECT_FIRST:
                    self._pos += 1
                    state = _DONE
                    continue
                if not char:
                    raise self._error("unexpected end of file: the event array is not closed with ']'")
                event = self._decode_value()
                yield self._index, event
                self._index += 1
                state = _EXPECT_SEPARATOR
            elif state == _EXPECT_SEPARATOR:
                if char == ",":
                    self._pos += 1
                    state = _EXPECT_EVENT
                elif char == "]":
                    self._pos += 1
                    state = _DONE
                elif not char:
                    raise self._error("unexpected end of file: the event array is not closed with ']'")
                else:
                    raise self._error(f"expected ',' or ']' after an event, found {char!r}")
            else:  # _DONE
                if not char:
                    return
                raise self._error(f"unexpected {char!r} after the closing ']' of the event array")

    def _next_significant_char(self) -> str:
        """Skip whitespace (refilling as needed); '' means end of file."""
        while True:
            self._pos = _WHITESPACE.match(self._buf, self._pos).end()
            if self._pos < len(self._buf):
                return self._buf[self._pos]
            if not self._fill():
                return ""

    def _decode_value(self) -> Any:
        while True:
            self._flagged_constants.clear()
            try:
                value, end = self._decoder.raw_decode(self._buf, self._pos)
            except json.JSONDecodeError as err:
                if self._eof or not self._may_be_truncated(err):
                    message = err.msg.removesuffix(" at")  # e.g. "Invalid control character at"
                    raise self._error(f"malformed JSON: {message}", err.pos) from None
                self._fill(min_chars=max(_CHUNK_SIZE, len(self._buf) - self._pos))
                continue
            except RecursionError:
                raise self._error("malformed JSON: values nested too deeply") from None
            # A number cut at the end of the buffer would decode short: read on and retry.
            if end == len(self._buf) and not self._eof:
                self._fill(min_chars=_CHUNK_SIZE)
                continue
            if self._flagged_constants:
                self._report_constants()
            self._pos = end
            return value

    def _may_be_truncated(self, err: json.JSONDecodeError) -> bool:
        return err.msg.startswith("Unterminated string") or err.pos >= len(self._buf) - _TRUNCATION_MARGIN

    def _fill(self, min_chars: int = 0) -> bool:
        """Append more text to the buffer, dropping what was consumed; False at end of file."""
        if self._pos:
            self._buf = self._buf[self._pos:]
            self._pos = 0
        if self._utf8_error is not None:
            raise self._error(self._utf8_error, len(self._buf))
        if self._eof:
            return False
        if min_chars:
            raw = self._stream.read(min_chars)
        else:
            raw = self._stream.readline(_LINE_LIMIT)
        try:
            text = self._utf8.decode(raw, final=not raw)
            self._bytes_read += len(raw)
        except UnicodeDecodeError as err:
            # Keep the valid text before the bad byte, so the events there are still read.
            data = self._utf8.getstate()[0] + raw  # err.start counts from the pending bytes
            text = data[:err.start].decode("utf-8")
            self._bytes_read += len(raw) - len(data) + err.start
            self._utf8.reset()
            self._utf8_error = f"invalid UTF-8 ({err.reason})"
        if not raw:
            self._eof = True
        self._buf += text
        return True

    def _byte_offset(self, pos: int) -> int:
        # Text decoded strictly from UTF-8 has no surrogates, so it re-encodes to the same bytes.
        end_of_buffer = self._bytes_read - len(self._utf8.getstate()[0])
        return end_of_buffer - len(self._buf[pos:].encode("utf-8"))

    def _error(self, message: str, pos: int | None = None) -> TraceSyntaxError:
        offset = self._byte_offset(self._pos if pos is None else pos)
        return TraceSyntaxError(message, byte_offset=offset, event_index=self._index)

    def _flag_constant(self, token: str) -> float:
        self._flagged_constants.append(token)
        return float(token.replace("Infinity", "inf"))

    def _report_constants(self) -> None:
        tokens = ", ".join(sorted(set(self._flagged_constants)))
        message = (f"non-standard JSON token(s) {tokens} in the event starting at byte offset "
                   f"{self._byte_offset(self._pos)} (NaN/Infinity are not valid JSON)")
        if self._on_problem is None:
            raise TraceSyntaxError(message, byte_offset=self._byte_offset(self._pos), event_index=self._index)
        self._on_problem(self._index, message)


# --- trace.bin ----------------------------------------------------------------------------

_BINARY_MODULES = ("zstandard", "cbor2")


def _iter_binary_events(events_file: Path, on_problem: ProblemCallback | None) -> Iterator[tuple[int, Any]]:
    # Checked before iterating, so a missing extra is reported when iter_events() is called.
    missing = [name for name in _BINARY_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingExtraError(
            f"reading {events_file.name} needs the optional 'binary' extra "
            f"(pip install 'rewind[binary]'); missing: {', '.join(missing)}")
    return _decode_binary_events(events_file, on_problem)


def _decode_binary_events(events_file: Path, on_problem: ProblemCallback | None) -> Iterator[tuple[int, Any]]:
    """The extension point for `trace.bin` (trace-format.md section 6).

    To implement: check the 8-byte header, decompress the seekable zstd frames one at a time,
    and yield `(index, event)` for each CBOR item, with the same shapes as in trace.json;
    raise `TraceSyntaxError` (byte offset into the file) on corrupt data.
    """
    raise NotImplementedError(f"reading {events_file.name} (CBOR + zstd) is not implemented yet")


_EVENT_READERS: dict[str, Callable[[Path, ProblemCallback | None], Iterator[tuple[int, Any]]]] = {
    "json": _iter_json_events,
    "binary": _iter_binary_events,
}
