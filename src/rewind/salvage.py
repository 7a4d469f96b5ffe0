"""Finish a `trace.json` that was cut short, so that what was written stays loadable.

Used when a partial trace is kept (``keep_partial_trace``) and when recording ends in a way
that may have interrupted the recorder half-way through an event (a signal, a
KeyboardInterrupt raised inside a hook).  It trusts only the file, never the recorder's
in-memory state:

1. the file is read back as written; everything after the last complete event is cut off
   (a write that failed half-way, a disk that filled up) and so is anything from the first
   event that does not fit the stream (a Return with no open call);
2. the calls still open at that point are counted per thread, and closing events are
   appended: a ``Return`` of ``<unfinished>`` for each open frame, ``ThreadExit`` for
   threads that did not end, the program's error (if any) and the top-level ``Return``
   with the exit status, then the closing ``]``;
3. if that does not fit (the file size limit or a full disk), more events are cut from the
   end until it does; a file without even the trace header is rewritten as a minimal trace.

Only a file the sink no longer has open may be handed to it (the sink's buffered file
would otherwise flush stale text after the closing ``]``).
"""
from __future__ import annotations

import json
import os

# The four events every trace starts with (trace-format.md rule 3).
HEADER_EVENTS = 4
_NONE_TYPE = '{"Type":{"kind":30,"lang_type":"None","specific_info":{"kind":"None"}}}'
_INT_TYPE = '{"Type":{"kind":7,"lang_type":"int","specific_info":{"kind":"None"}}}'
_STR_TYPE = '{"Type":{"kind":9,"lang_type":"str","specific_info":{"kind":"None"}}}'
_UNFINISHED_TYPE = '{"Type":{"kind":16,"lang_type":"<unfinished>","specific_info":{"kind":"None"}}}'
UNFINISHED_TEXT = "<unfinished: recording stopped>"
I64_MIN, I64_MAX = -(1 << 63), (1 << 63) - 1
MAX_ATTEMPTS = 12


class _Scan:
    """What the events kept so far add up to (a plain class: salvage runs in every recorded
    process's start, where importing dataclasses would cost 7 ms)."""

    def __init__(self, *, events: int = 0, paths: list | None = None, depth: dict | None = None, types: int = 0,
                 known_types: dict | None = None):
        self.cut = 0                 # byte offset just after the last kept event
        self.events = events
        self.paths = paths if paths is not None else []
        self.depth = depth if depth is not None else {}   # open calls per trace thread number
        self.current = 0
        self.started: set = set()
        self.exited: set = set()
        self.types = types
        self.known_types = known_types if known_types is not None else {}  # definition text -> type id

    def apply(self, text: bytes) -> bool:
        """Account for one complete event; False if it does not fit the stream."""
        if text.startswith(b'{"Call":'):
            self.depth[self.current] = self.depth.get(self.current, 0) + 1
        elif text.startswith(b'{"Return":'):
            open_calls = self.depth.get(self.current, 0)
            if open_calls == 0:
                return False
            self.depth[self.current] = open_calls - 1
        elif text.startswith(b'{"Thread'):
            try:
                variant, number = json.loads(text).popitem()
            except (ValueError, KeyError):
                return False
            if variant == "ThreadExit":
                self.exited.add(number)
            else:
                self.current = number
                if variant == "ThreadStart":
                    self.started.add(number)
        elif text.startswith(b'{"Type":'):
            self.known_types.setdefault(text.decode("utf-8", "replace"), self.types)
            self.types += 1
        elif text.startswith(b'{"Path":'):
            try:
                self.paths.append(json.loads(text)["Path"])
            except (ValueError, KeyError):
                return False
        return True


def _scan(path: str, limit: int | None) -> _Scan:
    scan = _Scan()
    offset = 0
    first = True
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return scan
    with f:
        for line in f:
            start = offset
            offset += len(line)
            text = line.rstrip(b"\n")
            lead = 0
            if first:
                if not text.startswith(b"["):
                    break
                text, lead = text[1:], 1
            first = False
            if text.endswith(b","):
                text = text[:-1]
            if text == b"]" or not text:
                break  # the closing bracket of a finished trace
            end = start + lead + len(text)
            if limit is not None and end > limit:
                break
            if not line.endswith(b"\n"):
                # The file's last piece: keep it only if the event is whole.
                try:
                    json.loads(text)
                except ValueError:
                    break
            if not scan.apply(text):
                break
            scan.cut = end
            scan.events += 1
    if scan.events < HEADER_EVENTS:
        scan.events = 0
    return scan


def _type_id(scan: _Scan, definition: str, defs: list) -> int:
    tid = scan.known_types.get(definition)
    if tid is None:
        tid = scan.known_types[definition] = scan.types
        scan.types += 1
        defs.append(definition)
    return tid


def _closing_events(scan: _Scan, exit_code: int | None, error_text: str | None) -> list:
    defs: list = []
    events: list = []
    unfinished = None

    def unfinished_return() -> str:
        nonlocal unfinished
        if unfinished is None:
            unfinished = '{"Return":{"return_value":{"kind":"Raw","r":%s,"type_id":%d}}}' % (
                json.dumps(UNFINISHED_TEXT), _type_id(scan, _UNFINISHED_TYPE, defs))
        return unfinished

    current = scan.current
    for number in sorted((set(scan.depth) | scan.started) - {0}):
        open_calls = scan.depth.get(number, 0)
        needs_exit = number in scan.started and number not in scan.exited
        if not open_calls and not needs_exit:
            continue
        if current != number:
            events.append('{"ThreadSwitch":%d}' % number)
            current = number
        events.extend(unfinished_return() for _ in range(open_calls))
        if needs_exit:
            events.append('{"ThreadExit":%d}' % number)
    main_open = scan.depth.get(0, 0)
    if main_open:
        if current != 0:
            events.append('{"ThreadSwitch":0}')
        events.extend(unfinished_return() for _ in range(main_open - 1))
        if error_text:
            events.append('{"Event":{"kind":11,"metadata":"","content":%s}}'
                          % json.dumps(error_text, ensure_ascii=False))
        if isinstance(exit_code, int) and I64_MIN <= exit_code <= I64_MAX:
            value = '{"kind":"Int","i":%d,"type_id":%d}' % (exit_code, _type_id(scan, _INT_TYPE, defs))
        else:
            value = '{"kind":"String","text":"<exit>","type_id":%d}' % _type_id(scan, _STR_TYPE, defs)
        events.append('{"Return":{"return_value":%s}}' % value)
    return defs + events


def _minimal(toplevel_path: str) -> tuple[_Scan, str]:
    """A trace with only the header: nothing of the original file could be kept."""
    scan = _Scan(paths=[toplevel_path], depth={0: 1}, types=1, known_types={_NONE_TYPE: 0},
                 events=HEADER_EVENTS)
    header = ",\n".join([
        '{"Path":%s}' % json.dumps(toplevel_path, ensure_ascii=False),
        '{"Function":{"path_id":0,"line":1,"name":"<toplevel>"}}',
        '{"Call":{"function_id":0,"args":[]}}',
        _NONE_TYPE,
    ])
    return scan, "[" + header


def finish_json_trace(path: str, *, toplevel_path: str, exit_code: int | None = None,
                      error_text: str | None = None) -> list:
    """Make the (closed) `trace.json` at `path` a complete, valid trace in place.

    Returns the path list of the kept `Path` events, for `trace_paths.json`.  Raises
    OSError when not even a minimal trace can be written.
    """
    limit = None
    last_error: OSError | None = None
    for _ in range(MAX_ATTEMPTS):
        scan = _scan(path, limit)
        prefix = ""
        if scan.events == 0:
            scan, prefix = _minimal(toplevel_path)
        tail = _closing_events(scan, exit_code, error_text)
        text = prefix + "".join(",\n" + event for event in tail) + "\n]\n"
        data = text.encode("utf-8", "replace")
        try:
            mode = "wb" if prefix or not os.path.exists(path) else "r+b"
            with open(path, mode) as f:
                if not prefix:
                    f.truncate(scan.cut)
                    f.seek(scan.cut)
                f.write(data)
            return list(scan.paths)
        except OSError as exc:
            last_error = exc
            if prefix:
                break
            # No room for the closing events: give up more of the end of the trace.
            limit = scan.cut - max(4096, 4 * len(data))
            if limit <= 0:
                limit = 0
    assert last_error is not None
    raise last_error


def remove_stale_staging(parent: str, name: str) -> None:
    """Remove staging directories of `name` left by recordings whose process is gone
    (killed with SIGKILL, power loss): they are never a trace, only litter."""
    prefix = ".%s.rewind-staging-" % name
    try:
        entries = os.listdir(parent)
    except OSError:
        return
    for entry in entries:
        if not entry.startswith(prefix):
            continue
        pid_text = entry[len(prefix):].partition("-")[0]
        if not pid_text.isdigit() or int(pid_text) == os.getpid() or _alive(int(pid_text)):
            continue
        import shutil  # here, not at start: left-over staging directories are rare
        shutil.rmtree(os.path.join(parent, entry), ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, not ours
    return True
