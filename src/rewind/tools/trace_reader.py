"""Streaming access to a trace directory's events, never holding the whole trace in memory.

`iter_events(path)` yields `(index, event)` pairs from `trace.json` (any valid JSON-array
layout) and is the single place a `trace.bin` reader plugs in: see `_EVENT_READERS`.
"""
from __future__ import annotations

import codecs
import importlib.util
import io
import json
import os
import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

EVENTS_JSON = "trace.json"
EVENTS_BINARY = "trace.bin"
METADATA_FILE = "trace_metadata.json"
PATHS_FILE = "trace_paths.json"

# Called for a problem that does not stop reading: (event index, or None for a problem of the
# binary container, message).
ProblemCallback = Callable[[int | None, str], None]

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
    """Decode `trace.bin` (trace-format.md section 6) frame by frame, in bounded memory.

    The frames are walked sequentially from the header (the seek table is not needed to read
    them); the seek table is parsed first and every frame is checked against its entry.
    Container problems that do not stop reading (a missing or inconsistent seek table, a
    non-zero descriptor, an indefinite-length item) go to `on_problem` with index None;
    anything that makes the rest unreadable raises `TraceSyntaxError` with a file offset.
    """
    with open(events_file, "rb") as stream:
        yield from _BinaryTraceReader(stream, on_problem).events()


@dataclass(frozen=True)
class SeekTable:
    offset: int  # byte offset of the skippable frame holding it
    entries: list[tuple[int, int]]  # (compressed size, decompressed size) per frame
    descriptor: int


class _BinaryTraceReader:
    """Walks the zstd frames of a trace.bin and decodes the concatenated CBOR events."""

    _INPUT_CHUNK = 1 << 16

    def __init__(self, stream: BinaryIO, on_problem: ProblemCallback | None):
        import cbor2
        import zstandard

        from ..writer import binary_writer as bw
        self._bw = bw
        self._cbor2 = cbor2
        self._zstd_error = zstandard.ZstdError
        self._dctx = zstandard.ZstdDecompressor()
        self._stream = stream
        self._on_problem = on_problem
        self._size = os.fstat(stream.fileno()).st_size
        self._index = 0
        # CBOR items not yet complete: pieces of decompressed content, their total size and the
        # content offset where they start; decoding is retried once the pending size doubles.
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._content_offset = 0
        self._retry_at = 0
        self._frame_no = -1
        self._frame_offset = len(bw.HEADER)

    # -- container -----------------------------------------------------------------------------

    def events(self) -> Iterator[tuple[int, Any]]:
        bw = self._bw
        self._check_header()
        table, end = self.read_seek_table()
        pos = len(bw.HEADER)
        frame_no = 0
        while pos < end:
            if end - pos < 4:
                self._problem(f"{end - pos} stray byte(s) at byte offset {pos} after the last frame", pos)
                break
            magic = int.from_bytes(self._read_at(pos, 4), "little")
            if magic == bw.ZSTD_FRAME_MAGIC:
                self._frame_no, self._frame_offset = frame_no, pos
                compressed, content = yield from self._frame(pos, end)
                if table is not None:
                    self._check_entry(table, frame_no, pos, compressed, content)
                pos += compressed
                frame_no += 1
            elif bw.SKIPPABLE_MAGIC_FIRST <= magic <= bw.SKIPPABLE_MAGIC_LAST:
                header = self._read_at(pos, 8)
                length = int.from_bytes(header[4:8], "little") if len(header) == 8 else 0
                if table is not None or pos + 8 + length != self._size:
                    # Without a valid table, a skippable frame ending the file is the broken
                    # table (already reported); anywhere else it has no place in a trace.bin.
                    self._problem(f"unexpected skippable frame (magic 0x{magic:08X}) at byte offset {pos}", pos)
                pos += 8 + length
            else:
                raise self._error(f"expected a zstd frame at byte offset {pos}, found magic 0x{magic:08X}", pos)
        yield from self._finish_content(min(pos, end))
        if table is not None and frame_no != len(table.entries):
            self._problem(f"the seek table lists {len(table.entries)} frame(s) but the file holds {frame_no}",
                          table.offset)

    def _check_header(self) -> None:
        bw = self._bw
        header = self._read_at(0, len(bw.HEADER))
        if header[:len(bw.MAGIC_PREFIX)] != bw.MAGIC_PREFIX:
            raise self._error(f"not a CodeTracer binary trace: the file starts with {header[:5].hex(' ').upper()!r}, "
                              f"expected {bw.MAGIC_PREFIX.hex(' ').upper()!r}", 0)
        if len(header) < len(bw.HEADER):
            raise self._error("the file ends inside its 8-byte header", len(header))
        if header != bw.HEADER:
            raise self._error(f"unsupported binary trace version: header {header.hex(' ').upper()}, "
                              f"expected {bw.HEADER.hex(' ').upper()} (version 1)", 5)

    def read_seek_table(self) -> tuple[SeekTable | None, int]:
        """Parse and check the seek table at the end of the file.

        Returns the table (None, reported, if unusable) and where the frames end: before the
        table, or where a readable footer puts it, or else at the end of the file.
        """
        bw = self._bw
        size = self._size
        minimum = len(bw.HEADER) + 8 + bw.SEEK_TABLE_FOOTER_SIZE
        if size < minimum:
            self._problem(f"no seek table: the file is {size} bytes, shorter than a header and an empty "
                          "seek table (the trace was not finished)", size)
            return None, size
        count, descriptor, magic = struct.unpack("<IBI", self._read_at(size - bw.SEEK_TABLE_FOOTER_SIZE, 9))
        if magic != bw.SEEKABLE_FOOTER_MAGIC:
            self._problem(f"no seek table: the file must end with the seekable-format magic "
                          f"0x{bw.SEEKABLE_FOOTER_MAGIC:08X}, found 0x{magic:08X} at byte offset {size - 4} "
                          "(the trace was not finished)", size - 4)
            return None, size
        if descriptor != bw.SEEK_TABLE_DESCRIPTOR:
            self._problem(f"seek table descriptor at byte offset {size - 5} is 0x{descriptor:02X}, "
                          f"expected 0x{bw.SEEK_TABLE_DESCRIPTOR:02X}", size - 5)
            if descriptor & 0x7F:  # reserved bits and the unused bits: the layout is unknown
                return None, size
        entry_size = bw.SEEK_ENTRY_SIZE + (4 if descriptor & 0x80 else 0)
        frame_size = entry_size * count + bw.SEEK_TABLE_FOOTER_SIZE
        offset = size - 8 - frame_size
        if offset < len(bw.HEADER):
            self._problem(f"the seek table footer at byte offset {size - 9} lists {count} frame(s): "
                          f"{frame_size + 8} bytes of table, more than the file holds", size - 9)
            return None, size
        table_magic, table_size = struct.unpack("<II", self._read_at(offset, 8))
        if table_magic != bw.SEEK_TABLE_MAGIC:
            self._problem(f"seek table: expected the skippable-frame magic 0x{bw.SEEK_TABLE_MAGIC:08X} at byte "
                          f"offset {offset} (where {count} entries put it), found 0x{table_magic:08X}", offset)
            return None, offset
        if table_size != frame_size:
            self._problem(f"seek table: the skippable frame at byte offset {offset} declares {table_size} bytes, "
                          f"{count} entries need {frame_size}", offset + 4)
            return None, offset
        body = self._read_at(offset + 8, entry_size * count)
        entries = [(int.from_bytes(body[i:i + 4], "little"), int.from_bytes(body[i + 4:i + 8], "little"))
                   for i in range(0, len(body), entry_size)]
        total = len(bw.HEADER) + sum(c for c, _ in entries)
        if total != offset:
            self._problem(f"seek table: the compressed sizes add up to {total - len(bw.HEADER)} bytes, but the frames "
                          f"span {offset - len(bw.HEADER)} (byte offsets {len(bw.HEADER)} to {offset})", offset)
        return SeekTable(offset, entries, descriptor), offset

    def _check_entry(self, table: SeekTable, frame_no: int, pos: int, compressed: int, content: int) -> None:
        if frame_no >= len(table.entries):
            if frame_no == len(table.entries):
                self._problem(f"zstd frame #{frame_no} at byte offset {pos} is not in the seek table "
                              f"({len(table.entries)} entries)", pos)
            return
        want_compressed, want_content = table.entries[frame_no]
        entry_offset = table.offset + 8 + frame_no * (8 + (4 if table.descriptor & 0x80 else 0))
        if want_compressed != compressed:
            self._problem(f"seek table entry #{frame_no} (byte offset {entry_offset}) gives {want_compressed} "
                          f"compressed bytes, the frame at byte offset {pos} has {compressed}", entry_offset)
        if want_content != content:
            self._problem(f"seek table entry #{frame_no} (byte offset {entry_offset}) gives {want_content} "
                          f"decompressed bytes, the frame at byte offset {pos} holds {content}", entry_offset + 4)

    def _frame(self, pos: int, end: int):
        """Decompress the zstd frame at `pos`, feeding its content to the CBOR decoder;
        returns (compressed size, content size)."""
        decompressor = self._dctx.decompressobj()
        self._stream.seek(pos)
        consumed = 0
        content = 0
        while not decompressor.eof:
            want = min(self._INPUT_CHUNK, end - pos - consumed)
            data = self._stream.read(want) if want > 0 else b""
            if not data:
                raise self._error(f"zstd frame #{self._frame_no} at byte offset {pos} is truncated "
                                  f"(the frame area ends at byte offset {end})", pos)
            try:
                out = decompressor.decompress(data)
            except self._zstd_error as err:
                raise self._error(f"zstd frame #{self._frame_no} at byte offset {pos} is corrupt: {err}", pos) from None
            consumed += len(data)
            if out:
                content += len(out)
                yield from self._feed(out)
        return consumed - len(decompressor.unused_data), content

    def _read_at(self, offset: int, size: int) -> bytes:
        self._stream.seek(offset)
        return self._stream.read(size)

    # -- CBOR ----------------------------------------------------------------------------------

    def _feed(self, data: bytes) -> Iterator[tuple[int, Any]]:
        self._pending.append(data)
        self._pending_size += len(data)
        if self._pending_size >= self._retry_at:
            yield from self._decode_pending()

    def _finish_content(self, end: int) -> Iterator[tuple[int, Any]]:
        if self._pending_size:
            yield from self._decode_pending()
        if self._pending_size:
            raise self._error(f"the event data ends inside an event: {self._pending_size} byte(s) left at "
                              f"decompressed content offset {self._content_offset} (truncated trace)", end)

    def _decode_pending(self) -> Iterator[tuple[int, Any]]:
        cbor2 = self._cbor2
        buf = b"".join(self._pending) if len(self._pending) > 1 else self._pending[0]
        stream = io.BytesIO(buf)
        decoder = cbor2.CBORDecoder(stream, read_size=1, allow_indefinite=False)
        pos = 0
        size = len(buf)
        while pos < size:
            try:
                event = decoder.decode()
            except cbor2.CBORDecodeEOF:
                break
            except cbor2.CBORDecodeError as err:
                if "indefinite" not in str(err):
                    raise self._cbor_error(pos, err) from None
                event = self._decode_indefinite(stream, pos)
                if event is _INCOMPLETE:
                    break
                decoder = cbor2.CBORDecoder(stream, read_size=1, allow_indefinite=False)
            except (ValueError, TypeError, OverflowError, RecursionError) as err:
                raise self._cbor_error(pos, err) from None
            pos = stream.tell()
            yield self._index, event
            self._index += 1
        rest = buf[pos:] if pos else buf
        self._content_offset += pos
        self._pending = [rest] if rest else []
        self._pending_size = len(rest)
        self._retry_at = 2 * len(rest)

    def _decode_indefinite(self, stream: io.BytesIO, pos: int) -> Any:
        """An item with indefinite lengths: readable, but section 6 asks for definite ones."""
        stream.seek(pos)
        try:
            event = self._cbor2.CBORDecoder(stream, read_size=1).decode()
        except self._cbor2.CBORDecodeEOF:
            stream.seek(pos)
            return _INCOMPLETE
        except (self._cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError) as err:
            raise self._cbor_error(pos, err) from None
        self._problem(f"event #{self._index} uses indefinite-length CBOR (decompressed content offset "
                      f"{self._content_offset + pos}); trace-format.md section 6 asks for definite lengths",
                      self._frame_offset)
        return event

    # -- reporting -----------------------------------------------------------------------------

    def _cbor_error(self, pos: int, err: BaseException) -> TraceSyntaxError:
        return self._error(f"malformed CBOR event at decompressed content offset {self._content_offset + pos} "
                           f"(zstd frame #{self._frame_no} starts at byte offset {self._frame_offset}): {err}",
                           self._frame_offset)

    def _error(self, message: str, offset: int) -> TraceSyntaxError:
        return TraceSyntaxError(message, byte_offset=offset, event_index=self._index)

    def _problem(self, message: str, offset: int) -> None:
        message = f"{EVENTS_BINARY}: {message}"
        if self._on_problem is None:
            raise TraceSyntaxError(message, byte_offset=offset, event_index=self._index)
        self._on_problem(None, message)


_INCOMPLETE: Any = object()


_EVENT_READERS: dict[str, Callable[[Path, ProblemCallback | None], Iterator[tuple[int, Any]]]] = {
    "json": _iter_json_events,
    "binary": _iter_binary_events,
}
