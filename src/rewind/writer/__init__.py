"""Trace writers: event sinks and the small JSON side files of a trace directory."""
from __future__ import annotations


def check_format(format: str) -> None:
    """Raise before anything runs when `format` cannot be written here (a missing extra)."""
    if format == "binary":
        from .binary_writer import require_modules
        require_modules()


def open_event_sink(format: str, directory: str):
    """The event sink for `format` ("json" -> trace.json, "binary" -> trace.bin)."""
    if format == "binary":
        from .binary_writer import BinaryEventSink
        return BinaryEventSink(directory)
    from .json_writer import JsonEventSink
    return JsonEventSink(directory)
