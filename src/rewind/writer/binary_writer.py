"""`trace.bin` sink: the CodeTracer binary format v1 (trace-format.md section 6).

Layout: the 8-byte header, then a Zstandard *seekable-format* stream: independent zstd frames
(level 3, each holding at most `FRAME_CONTENT_LIMIT` bytes of content), then one skippable
frame with the seek table.  The content is the CBOR encodings of the events, concatenated with
no length prefix; every event has the shape of its JSON (definite-length maps with text keys).

Two layers, so that the recorder may later emit CBOR itself:

* `BinaryEventSink.write_cbor(data)` / `write_cbor_events(parts)` take CBOR bytes of whole
  events and own the framing: a frame is cut at an event boundary before it would exceed
  `FRAME_CONTENT_LIMIT` (only a single event larger than that is split across frames), so each
  frame decompresses on its own to whole events.
* `write_first(text)` / `write(text)` keep the `JsonEventSink` interface: the recorder's JSON
  text (one event per line, each after `,\\n`) goes through `JsonToCbor`, which converts line by
  line with a bounded cache of recent lines (most events repeat verbatim: a cache hit costs a
  dict lookup instead of `json.loads` + `cbor2.dumps`).

`zstandard` and `cbor2` come from the `binary` extra and are imported only when a binary sink
is made (`require_modules()` raises `ERR_MISSING_EXTRA` before anything is recorded).
"""
from __future__ import annotations

import json
import os
import struct
import threading
from typing import Any, Callable, Iterable

from .. import accelerator, errors
from .json_writer import point_at_devnull

FILE_NAME = "trace.bin"
HEADER = bytes((0xC0, 0xDE, 0x72, 0xAC, 0xE2, 0x01, 0x00, 0x00))
MAGIC_PREFIX = HEADER[:5]  # "C0DE72ACE2": a CodeTracer file; HEADER[5] is the version

ZSTD_FRAME_MAGIC = 0xFD2FB528
SKIPPABLE_MAGIC_FIRST = 0x184D2A50
SKIPPABLE_MAGIC_LAST = 0x184D2A5F
SEEK_TABLE_MAGIC = 0x184D2A5E  # the skippable-frame magic the seekable format uses
SEEKABLE_FOOTER_MAGIC = 0x8F92EAB1
SEEK_TABLE_DESCRIPTOR = 0x00  # no per-frame checksums in the table
SEEK_TABLE_FOOTER_SIZE = 9  # u32 number of frames, u8 descriptor, u32 seekable magic
SEEK_ENTRY_SIZE = 8  # u32 compressed size, u32 decompressed size

DEFAULT_LEVEL = 3
# Content (decompressed) bytes per frame.  4 MiB compresses markedly better than 1-2 MiB on
# repetitive traces (fib.py: 144x vs 97x at level 3) and keeps a reader's buffer small.
FRAME_CONTENT_LIMIT = 4 << 20

# A write longer than this (in characters) is converted in pieces of about this size.
TEXT_PIECE = 1 << 20

EXTRA_HINT = "pip install 'rewind[binary]'"
_BINARY_MODULES = ("zstandard", "cbor2")


def require_modules() -> tuple[Any, Any]:
    """Import `zstandard` and `cbor2`, or raise EnvironmentError ERR_MISSING_EXTRA."""
    modules = []
    missing = []
    for name in _BINARY_MODULES:
        try:
            modules.append(__import__(name))
        except ImportError:
            missing.append(name)
    if missing:
        raise errors.environment(
            errors.ERR_MISSING_EXTRA,
            "the binary trace format needs the optional 'binary' extra: %s" % EXTRA_HINT,
            missing=", ".join(missing))
    return modules[0], modules[1]


def seek_table(entries: Iterable[tuple[int, int]]) -> bytes:
    """The seek-table skippable frame for `(compressed_size, decompressed_size)` entries."""
    entries = list(entries)
    body = b"".join(struct.pack("<II", c, d) for c, d in entries)
    return (struct.pack("<II", SEEK_TABLE_MAGIC, SEEK_ENTRY_SIZE * len(entries) + SEEK_TABLE_FOOTER_SIZE)
            + body + struct.pack("<IBI", len(entries), SEEK_TABLE_DESCRIPTOR, SEEKABLE_FOOTER_MAGIC))


class JsonToCbor:
    """The recorder's JSON event text -> CBOR bytes per event.

    Fast path: rewind writes one event per line, so the text splits on `,\\n` into single
    events; each line is looked up in a cache of recently converted lines.  Any other layout
    falls back to parsing the whole piece as an array.  Lone surrogates become `?`, exactly as
    `JsonEventSink` writes them (its file uses `errors="replace"`).
    """

    def __init__(self, cbor2: Any, cache_limit: int = 4 << 20, max_cached_line: int = 1 << 16,
                 c_transcoder: Any = None):
        # The accelerator's transcoder (accelerator/_cbor.c) gives the same bytes without
        # json.loads + cbor2.dumps; text it does not handle raises ValueError and comes here.
        self._c_transcoder = c_transcoder
        self._c_events: Callable[[str], list[bytes]] | None = c_transcoder.events if c_transcoder else None
        self._c_joined: Callable[[str], bytes] | None = c_transcoder.events_joined if c_transcoder else None
        self._dumps = cbor2.dumps
        self._loads = json.loads
        self._cache: dict[str, bytes] = {}
        self._cache_size = 0
        self._cache_limit = cache_limit
        self._max_cached_line = max_cached_line
        self.hits = 0
        self.misses = 0

    def convert(self, text: str) -> list[bytes]:
        """CBOR bytes of each event in `text` (one or more events, each after `,\\n`)."""
        if self._c_events is not None:
            try:
                return self._c_events(text)
            except ValueError:
                pass  # e.g. a lone surrogate: converted (and replaced) below
        if text.startswith(",\n"):
            text = text[2:]
        elif text.startswith(","):
            text = text[1:]
        lines = text.split(",\n")
        get = self._cache.get
        out = [get(line) for line in lines]
        if None not in out:
            self.hits += len(out)
            return out
        try:
            for i, cbor in enumerate(out):
                if cbor is None:
                    cbor = get(lines[i])  # the same line earlier in this piece
                    if cbor is None:
                        out[i] = self._convert_line(lines[i])
                        self.misses += 1
                        continue
                    out[i] = cbor
                self.hits += 1
        except ValueError:  # not one event per line: parse the piece as a whole
            return [self._encode(event) for event in self._loads("[" + text + "]")]
        return out

    def convert_joined(self, text: str) -> bytes:
        """`b"".join(self.convert(text))`; the C transcoder makes it without a bytes object per
        event."""
        if self._c_joined is not None:
            try:
                return self._c_joined(text)
            except ValueError:
                pass  # converted (and replaced) by the Python path
        return b"".join(self.convert(text))

    def forget(self) -> None:
        """Drop the caches of recent events (this converter's and the C transcoder's)."""
        self._cache.clear()
        self._cache_size = 0
        if self._c_transcoder is not None:
            self._c_transcoder.forget()

    def _convert_line(self, line: str) -> bytes:
        cbor = self._encode(self._loads(line))
        size = len(line)
        if size <= self._max_cached_line:
            if self._cache_size + size > self._cache_limit:
                self._cache.clear()
                self._cache_size = 0
            self._cache[line] = cbor
            self._cache_size += size + len(cbor) + 64
        return cbor

    def _encode(self, event: Any) -> bytes:
        try:
            return self._dumps(event)
        except UnicodeEncodeError:
            return self._dumps(replace_surrogates(event))


def replace_surrogates(value: Any) -> Any:
    """`value` with every lone surrogate in its strings replaced by `?` (as JsonEventSink does)."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {replace_surrogates(k): replace_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [replace_surrogates(v) for v in value]
    return value


class BinaryEventSink:
    """Writes `trace.bin`; same interface as `JsonEventSink`, plus `write_cbor*` for CBOR input."""

    file_name = FILE_NAME

    def __init__(self, directory: str, *, level: int = DEFAULT_LEVEL,
                 frame_limit: int = FRAME_CONTENT_LIMIT):
        zstandard, cbor2 = require_modules()
        if frame_limit <= 0:
            raise errors.usage("ERR_INVALID_ARGUMENT", "frame_limit must be positive", frame_limit=frame_limit)
        self.path = os.path.join(directory, self.file_name)
        self.level = level
        self.frame_limit = frame_limit
        self._compressor = zstandard.ZstdCompressor(level=level, write_content_size=True,
                                                    write_checksum=True)
        self.converter = JsonToCbor(cbor2, c_transcoder=accelerator.cbor_transcoder())
        self._lock = threading.Lock()
        self._content = bytearray()
        self.frames: list[tuple[int, int]] = []  # (compressed, decompressed) sizes, in order
        self.bytes_written = 0
        self.content_bytes = 0
        self._detached = False
        self._file = open(self.path, "wb")
        self._file.write(HEADER)

    # -- the JsonEventSink interface ----------------------------------------------------------

    def write_first(self, event_text: str) -> None:
        self.write(event_text)

    def write(self, text: str) -> None:
        with self._lock:  # converting under the lock keeps the order of concurrent writes
            if self._detached:
                return
            if len(text) <= TEXT_PIECE:
                self._append_text(text)
                return
            # A large write is converted a piece at a time (cut after whole lines), so the
            # copies made while converting stay small whatever the recorder hands over.
            start = 0
            while start < len(text):
                cut = text.find(",\n", start + TEXT_PIECE)
                end = len(text) if cut < 0 else cut
                self._append_text(text[start:end])
                start = end

    def flush(self) -> None:
        """Compress what is buffered into a frame and push it to the file (not yet seekable:
        the seek table is written by `close()`)."""
        with self._lock:
            if self._detached:
                return
            if self._content:
                self._emit(self._content)
                self._content = bytearray()
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            if self._detached or self._file.closed:
                return
            if self._content:
                self._emit(self._content)
                self._content = bytearray()
            self._file.write(seek_table(self.frames))
            self._file.close()
            self.bytes_written = os.path.getsize(self.path)
            self.converter.forget()

    def detach_in_child(self) -> None:
        """After fork: never write again; whatever the buffer flushes goes to /dev/null."""
        self._detached = True
        self._content = bytearray()
        self._lock = threading.Lock()  # another thread may have held the old one at fork time
        point_at_devnull(self._file)

    def abandon(self) -> None:
        """Close without finishing (the staging directory is about to be removed)."""
        self._detached = True
        try:
            self._file.close()
        except OSError:
            pass

    # -- CBOR input ---------------------------------------------------------------------------

    def write_cbor_events(self, parts: Iterable[bytes]) -> None:
        """Append events given as one CBOR item each; frames end at event boundaries."""
        with self._lock:
            if not self._detached:
                self._append(parts)

    def write_cbor(self, data: bytes) -> None:
        """Append already-encoded CBOR events (whole items, concatenated)."""
        self.write_cbor_events((data,))

    def _append_text(self, text: str) -> None:
        joined = self.converter.convert_joined(text)
        if len(self._content) + len(joined) <= self.frame_limit:  # the common case: it fits this frame
            self._content += joined
            return
        self._append(self.converter.convert(text))  # event by event: a frame ends between two

    def _append(self, parts: Iterable[bytes]) -> None:
        content = self._content
        limit = self.frame_limit
        if type(parts) is list:
            joined = b"".join(parts)
            if len(content) + len(joined) <= limit:  # the common case: all of it fits this frame
                content += joined
                return
        for cbor in parts:
            if len(content) + len(cbor) > limit:
                content = self._cut(content, cbor)
            else:
                content += cbor
        self._content = content

    def _cut(self, content: bytearray, cbor: bytes) -> bytearray:
        """`content + cbor` would overflow a frame: emit `content`, split an oversized item."""
        if content:
            self._emit(content)
        limit = self.frame_limit
        view = memoryview(cbor)
        while len(view) > limit:
            self._emit(view[:limit])
            view = view[limit:]
        return bytearray(view)

    def _emit(self, content) -> None:
        compressed = self._compressor.compress(content)
        self._file.write(compressed)
        self.frames.append((len(compressed), len(content)))
        self.content_bytes += len(content)
