"""`trace.json` sink: a JSON array of events, one event per line, streamed in chunks."""
from __future__ import annotations

import json
import os
from typing import Iterable


class JsonEventSink:
    """Writes event text as produced by the recorder.

    The first event is written as `[<event>`; every later piece of text arrives already
    prefixed with `,\\n`; `close()` writes the closing `\\n]`.  The file is encoded with
    `errors="replace"`, so a lone surrogate in a string becomes `?` instead of invalid UTF-8
    (the reader rejects lone surrogates: trace-format.md rule 8).
    """

    file_name = "trace.json"

    def __init__(self, directory: str):
        self.path = os.path.join(directory, self.file_name)
        self._file = open(self.path, "w", encoding="utf-8", errors="replace", newline="\n",
                          buffering=1 << 20)
        self._started = False
        self.bytes_written = 0

    def write_first(self, event_text: str) -> None:
        self._file.write("[" + event_text)
        self._started = True

    def write(self, text: str) -> None:
        self._file.write(text)

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        if self._file.closed:
            return
        self._file.write("\n]\n")
        self._file.close()
        self.bytes_written = os.path.getsize(self.path)

    def detach_in_child(self) -> None:
        """After fork: whatever the inherited buffer still flushes goes to /dev/null."""
        point_at_devnull(self._file)

    def abandon(self) -> None:
        """Close without finishing (the staging directory is about to be removed)."""
        try:
            self._file.close()
        except OSError:
            pass


def point_at_devnull(file) -> None:
    """Make an inherited file's descriptor write to /dev/null (a forked child must never
    write into its parent's trace, even when the buffer it inherited is flushed at exit)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, file.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def write_json_file(path: str, data: object) -> None:
    with open(path, "w", encoding="utf-8", errors="replace") as f:
        json.dump(data, f, indent=2, ensure_ascii=False)
        f.write("\n")


def write_paths(directory: str, paths: Iterable[str]) -> None:
    write_json_file(os.path.join(directory, "trace_paths.json"), list(paths))
