"""The recorder: turns the interpreter hooks' raw events into CodeTracer events.

Both backends (hooks/monitoring.py and hooks/settrace.py) call the same methods here, so
they produce the same event stream for the same program.  The recorder owns:

- interning of paths, functions, types and variable names (each defined once, before use);
- one `CodeInfo` per code object: the filter decision and everything pre-rendered for it;
- one call stack per thread, and the ThreadStart/ThreadSwitch events around switches;
- the full variable snapshot after every Step (trace-format.md rule 2).

Each event method runs under one re-entrant lock: encoding runs Python code, so the GIL can
switch threads in the middle of a snapshot, and without the lock another thread's events
(or its mutation of a shared container) would land inside this step's values.  Event text
(`,\n{...}` per event) is buffered and written in chunks.
"""
from __future__ import annotations

import dis
import os
import sys
import threading
import types
from functools import partial
from threading import get_ident

from . import accelerator
from .encoder import EMPTY, I64_MAX, I64_MIN, Node, TypeTable, ValueEncoder, _escape, exception_text

if sys.version_info >= (3, 11):
    def qualname_of(code: types.CodeType) -> str:
        return code.co_qualname
else:  # read from the source (qualnames.py imports ast: 2 ms of start-up 3.11+ do without)
    from .qualnames import qualname_of

CO_OPTIMIZED = 0x0001
CO_VARARGS = 0x0004
CO_VARKEYWORDS = 0x0008

# Global values of these types are left out of snapshots: imports, function and class
# definitions are noise at every step (the older recorder's traces were mostly that).
HIDDEN_GLOBAL_TYPES = frozenset({types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type})

# Variable-entry modes in CodeInfo.var_entries.
ALLOW, REDACT, DROP, HIDDEN = 0, 1, 2, 3

# Buffered fragments (one per step or call) are written when there are more than FLUSH_EVERY
# of them, when they hold more than FLUSH_CHARS characters, or at once after one longer than
# LARGE_FRAGMENT characters.  Joining many large steps makes strings of hundreds of KB: once
# freed, glibc may give that memory back to the system, and the next join page-faults all of
# it again (on mixed9, every byte of the trace: 113,000 faults and 20% of the time, depending
# on where the heap happens to end).  32 KB chunks (and their encoded bytes) stay below that.
FLUSH_EVERY = 64
FLUSH_CHARS = 1 << 15
LARGE_FRAGMENT = 4096

_MISSING = object()
# Values whose encoding never depends on anything but themselves (no Node to share).
_SCALAR_TYPES = frozenset({int, str, float, bool, type(None), bytes})


_RESUME = dis.opmap.get("RESUME", -1)


HINT_FRAMES = 8  # how many frames a call's arguments and a return value are looked up in


def _hint_from_callers(stack: list, decision, value: object):
    """The Node of `value`'s last encoding in the nearest frames of `stack` (innermost first)
    that show it with the same filter decision, or None (always for a scalar: no Node)."""
    if type(value) in _SCALAR_TYPES:
        return None
    for caller in reversed(stack[-HINT_FRAMES:]):
        if caller.info.decision is decision:
            for cached in caller.cache.values():
                if cached[0] is value:
                    if type(cached[2]) is Node:
                        return cached[2]
                    break
    return None


def suspended_line_of(info: "CodeInfo", frame: types.FrameType) -> int:
    """The line a generator/coroutine frame was suspended at, read as it resumes: 3.10
    points at the YIELD_VALUE, 3.11+ at the RESUME right after it (whose line-table entry
    may already be the next line's)."""
    lasti = frame.f_lasti
    if lasti >= 2 and info.code.co_code[lasti] == _RESUME:
        lasti -= 2
    return _line_at(info, lasti)


def _line_at(info: "CodeInfo", offset: int) -> int:
    """The source line of a bytecode offset (computed once per code object)."""
    lines = info.offset_lines
    if lines is None:
        lines = info.offset_lines = {}
        for start, end, line in info.code.co_lines():
            for at in range(start, end, 2):
                lines[at] = line if line is not None else -1
    return lines.get(offset, -1)


def _is_dunder(name: str) -> bool:
    return len(name) > 4 and name[:2] == "__" and name[-2:] == "__"


class CodeInfo:
    """Everything the recorder needs about one code object, computed once per session."""

    __slots__ = ("code", "traced", "decision", "function_id", "path_id", "name", "call_step",
                 "arg_names", "is_module", "global_names", "local_entries", "global_entries",
                 "step_texts", "ret_mode", "module", "offset_lines")

    def __init__(self, code: types.CodeType, traced: bool):
        self.code = code
        self.traced = traced
        self.offset_lines: dict[int, int] | None = None


class ActiveFrame:
    """A traced frame on a thread's stack.  The C core (accelerator/_speedups.c, Core.enter)
    makes these without calling __init__ and sets the same slots: change both together."""

    __slots__ = ("info", "frame", "last_line", "exception", "exception_lasti", "resume_pending", "cache")

    def __init__(self, info: CodeInfo, frame: types.FrameType):
        self.info = info
        self.frame = frame
        self.last_line = -1
        self.exception = None
        self.exception_lasti = -2
        self.resume_pending = False
        self.cache: dict = {}  # name -> (value, Value event text, deps): see Recorder._values


class ThreadState:
    """A thread's call stack.  `tid` is the OS thread ident; `number` is the id written in
    the trace (0 for the thread that started recording, then 1, 2... in order of first
    appearance), so the same program gives the same trace on every run."""

    __slots__ = ("tid", "number", "stack", "started", "claimed")

    def __init__(self, tid: int, number: int):
        self.tid = tid
        self.number = number
        self.stack: list[ActiveFrame] = []
        self.started = False
        self.claimed = False  # bound to a live thread through Recorder.tls


class Recorder:
    """Builds the event stream.  `sink` is a writer (writer/json_writer.py)."""

    def __init__(self, sink, chain, *, max_depth: int = 3, max_items: int = 50, max_string: int = 1000,
                 toplevel_path: str = "", main_thread_id: int | None = None):
        self.sink = sink
        self.chain = chain
        self.buffer: list[str] = []
        self.buffered_chars = 0  # in self.buffer, as counted by the Python paths (FLUSH_CHARS)
        # The hot paths (REWIND_CORE, accelerator/): the C core replaces `line`, `enter` and
        # `leave` on this instance (below); the methods stay the reference it mirrors and do
        # the rare cases.  It brings its own lock, which it takes without a Python call.
        self.core, speedups = accelerator.select_core()
        self.lock = threading.RLock() if speedups is None else speedups.RecorderLock()
        self._acquire = self.lock.acquire  # bound once: the per-line path uses them directly
        self._release = self.lock.release
        self.paths: dict[str, int] = {}
        self.path_list: list[str] = []
        self.functions: dict[tuple, int] = {}
        self.variables: dict[str, int] = {}
        # Keyed by id(code): code objects compare equal across files (co_filename is not part
        # of their equality), so two identical functions in two files would share one entry.
        # CodeInfo.code keeps each code object alive, so an id is never reused.
        self.code_infos: dict[int, CodeInfo] = {}
        self.threads: dict[int, ThreadState] = {}  # by OS ident: the latest thread with it
        self.all_threads: list[ThreadState] = []
        self.tls = threading.local()  # .state: the ThreadState of the current thread
        # IO capture (capture/core.py): while a thread has output not yet written as an
        # Event, io_pending is True and _emit / line call io_flush(ts) before that thread's
        # next event (its partial output belongs to the step it was written in).
        self.io_pending = False
        self.io_flush = None
        self.main_tid = main_thread_id if main_thread_id is not None else threading.main_thread().ident
        # The thread that wrote the last event, as its ThreadState: an OS ident can be reused
        # by a later thread (capture/core.py gives it output of unknown origin).
        self.current_ts: ThreadState | None = None
        # Counters (plain ints in the hot path; reported in metadata at the end).
        self.steps = 0
        self.calls = 0
        self.returns = 0
        self.values = 0
        self.io_events = 0
        self.scopes_skipped = 0
        self.redactions: dict[str, int] = {}
        self.drops: dict[str, int] = {}

        # Header (trace-format.md rule 3): Path, Function <toplevel>, Call, then the None type.
        self.toplevel_path = os.path.abspath(toplevel_path) if toplevel_path else "<toplevel>"
        self.paths[self.toplevel_path] = 0
        self.path_list.append(self.toplevel_path)
        sink.write_first('{"Path":%s}' % _escape(self.toplevel_path))
        self.functions[(self.toplevel_path, 1, "<toplevel>")] = 0
        self._define('{"Function":{"path_id":0,"line":1,"name":"<toplevel>"}}')
        self._define('{"Call":{"function_id":0,"args":[]}}')
        self.types = TypeTable(self._define)
        # The attribute rules in force are those of the frame being recorded (_attr_action);
        # the encoder keys what it shares between frames by them (read without a Python call).
        self.encoder = ValueEncoder(self.types, max_depth=max_depth, max_items=max_items,
                                    max_string=max_string, attr_action=self._attr_action,
                                    attr_scope=partial(getattr, self, "_attr_decision"))
        self._redacted_text = self.encoder.error("<redacted>")
        self._dropped_text = self.encoder.error("<dropped>")
        self.toplevel_open = True
        main = self.thread(self.main_tid)
        if threading.get_ident() == self.main_tid:
            main.claimed = True
            self.tls.state = main
        main.started = True
        self.current_ts = main
        self._define('{"ThreadStart":%d}' % main.number)
        self._core = None
        if speedups is not None:
            unchanged, stale_positions = accelerator.node_check(EMPTY)
            self.encoder.use_node_check(unchanged, stale_positions)
            self._core = speedups.Core(self, Recorder.line, EMPTY, FLUSH_EVERY, LARGE_FRAGMENT, FLUSH_CHARS, unchanged,
                                       Recorder.enter, Recorder.leave, ActiveFrame, self.encoder.encode(None),
                                       CodeInfo, ThreadState, HIDDEN_GLOBAL_TYPES)
            self.encoder.use_item_texts(self._core.item_texts)
            self.line = self._core.line
            self.enter = self._core.enter
            self.leave = self._core.leave

    # -- output --------------------------------------------------------------------------

    def _define(self, text: str) -> None:
        """Definitions and header events: appended as they are interned."""
        if text:
            self.buffer.append(text if text.startswith(",\n") else ",\n" + text)

    def _emit(self, ts: ThreadState, text: str) -> None:
        if self.io_pending:
            self.io_flush(ts)
        if ts is not self.current_ts:
            text = self._switch_text(ts) + text
        self.buffer.append(text)
        self.buffered_chars += len(text)
        if len(self.buffer) > FLUSH_EVERY or len(text) > LARGE_FRAGMENT or self.buffered_chars > FLUSH_CHARS:
            try:
                self.flush()
            except RecursionError:
                pass  # the event is in the buffer: the next flush writes it (see flush)

    def _switch_text(self, ts: ThreadState) -> str:
        """The ThreadStart or ThreadSwitch before an event of `ts`, which becomes the thread
        that wrote last."""
        self.current_ts = ts
        if not ts.started:
            ts.started = True
            return ',\n{"ThreadStart":%d}' % ts.number
        return ',\n{"ThreadSwitch":%d}' % ts.number

    def flush(self) -> None:
        pending = self.buffer
        self.buffer = []
        self.buffered_chars = 0
        if pending:
            try:
                self.sink.write("".join(pending))
            except RecursionError:
                # At the program's recursion limit the write could not start: its events
                # go back in front of what came since, for the next flush.
                self.buffer[:0] = pending
                raise

    # -- interning -----------------------------------------------------------------------

    def path_id(self, path: str) -> int:
        pid = self.paths.get(path)
        if pid is None:
            with self.lock:
                pid = self.paths.get(path)
                if pid is None:
                    # Written before it is known: an id is never handed out without its event.
                    pid = len(self.path_list)
                    self._define('{"Path":%s}' % _escape(path))
                    self.paths[path] = pid
                    self.path_list.append(path)
        return pid

    def function_id(self, path: str, line: int, name: str) -> int:
        key = (path, line, name)
        fid = self.functions.get(key)
        if fid is None:
            with self.lock:
                fid = self.functions.get(key)
                if fid is None:
                    pid = self.path_id(path)
                    fid = len(self.functions)
                    self._define('{"Function":{"path_id":%d,"line":%d,"name":%s}}' % (pid, line, _escape(name)))
                    self.functions[key] = fid
        return fid

    def variable_id(self, name: str) -> int:
        vid = self.variables.get(name)
        if vid is None:
            with self.lock:
                vid = self.variables.get(name)
                if vid is None:
                    vid = len(self.variables)
                    self._define('{"VariableName":%s}' % _escape(name))
                    self.variables[name] = vid
        return vid

    # -- per-code decisions ----------------------------------------------------------------

    def code_info(self, code: types.CodeType, frame: types.FrameType | None) -> CodeInfo:
        """Decide once per code object whether and how to record it."""
        info = self.code_infos.get(id(code))
        if info is not None:
            return info
        with self.lock:
            info = self.code_infos.get(id(code))
            if info is None:
                info = self._new_code_info(code, frame)
                self.code_infos[id(code)] = info
        return info

    def _new_code_info(self, code: types.CodeType, frame: types.FrameType | None) -> CodeInfo:
        filename = code.co_filename
        if not filename or filename.startswith("<"):
            # Synthetic code (<string>, <frozen ...>) has no file to show: never recorded.
            self.scopes_skipped += 1
            return CodeInfo(code, False)
        module = "?"
        if frame is not None:
            name = frame.f_globals.get("__name__")
            if isinstance(name, str):
                module = name
        qualname = qualname_of(code)
        path = os.path.abspath(filename)
        decision = self.chain.decide(module=module, qualname=qualname, filename=path)
        info = CodeInfo(code, decision.trace)
        if not decision.trace:
            self.scopes_skipped += 1
            return info
        info.decision = decision
        info.module = module
        info.is_module = not (code.co_flags & CO_OPTIMIZED)
        name = "<%s>" % module if code.co_name == "<module>" else qualname
        line = code.co_firstlineno
        info.name = name
        info.path_id = self.path_id(path)
        info.function_id = self.function_id(path, line, name)
        info.call_step = ',\n{"Step":{"path_id":%d,"line":%d}}' % (info.path_id, line)
        nargs = code.co_argcount + code.co_kwonlyargcount
        if code.co_flags & CO_VARARGS:
            nargs += 1
        if code.co_flags & CO_VARKEYWORDS:
            nargs += 1
        info.arg_names = code.co_varnames[:nargs]
        info.global_names = tuple(n for n in code.co_names if not _is_dunder(n)) if not info.is_module else ()
        info.local_entries = {}
        info.global_entries = {}
        info.step_texts = {}
        ret = decision.value_action("ret", "%s.%s" % (module, qualname))
        info.ret_mode = {"allow": ALLOW, "redact": REDACT}.get(ret, DROP)
        return info

    def _entry(self, info: CodeInfo, name: str, kind: str) -> tuple:
        """(mode, text, kind) for a variable of a code object: text is the Value prefix or
        the full redacted event."""
        if _is_dunder(name) or name[:1] == ".":
            # Dunders are module plumbing; ".0" is a comprehension's hidden iterator.
            return (HIDDEN, "", kind)
        action = info.decision.value_action(kind, name)
        if action == "drop":
            return (DROP, "", kind)
        vid = self.variable_id(name)
        if action == "redact":
            return (REDACT, ',\n{"Value":{"variable_id":%d,"value":%s}}' % (vid, self._redacted_text), kind)
        return (ALLOW, ',\n{"Value":{"variable_id":%d,"value":' % vid, kind)

    def _attr_action(self, name: str) -> str:
        # Struct fields are filtered with the decision of the frame being snapshotted.
        decision = self._attr_decision
        return decision.value_action("attr", name) if decision is not None else "allow"

    _attr_decision = None

    def thread(self, tid: int) -> ThreadState:
        """The state of the thread whose ident is `tid` (created on first use)."""
        ts = self.threads.get(tid)
        if ts is None:
            with self.lock:
                ts = self.threads.get(tid)
                if ts is None:
                    ts = self._new_thread_state(tid)
        return ts

    def current_thread_state(self) -> ThreadState:
        """The calling thread's state, kept in a thread-local: an OS thread ident can be
        reused by a later thread, which must still get a stack (and a number) of its own."""
        try:
            return self.tls.state
        except AttributeError:
            tid = get_ident()
            with self.lock:
                ts = self.threads.get(tid)
                if ts is None or ts.claimed:
                    ts = self._new_thread_state(tid)
                ts.claimed = True
                self.tls.state = ts
            return ts

    def _new_thread_state(self, tid: int) -> ThreadState:
        ts = ThreadState(tid, len(self.all_threads))
        self.threads[tid] = ts
        self.all_threads.append(ts)
        return ts

    # -- snapshots -----------------------------------------------------------------------

    def _snapshot(self, info: CodeInfo, active: ActiveFrame, parts: list) -> None:
        """Append the Value events of every visible variable (locals + named globals)."""
        frame = active.frame
        self._attr_decision = info.decision
        if info.is_module:
            local_names = None
            kept = self._values(info, info.global_entries, frame.f_locals.items(), "global", active, parts)
        else:
            local_names = frame.f_locals
            kept = self._values(info, info.local_entries, local_names.items(), None, active, parts)
            if info.global_names:
                module_globals = frame.f_globals
                # Imports, functions and classes are left out here already (_value_miss
                # would skip them): a recursive function names itself at every step.
                pairs = [(name, value) for name in info.global_names
                         if name in module_globals and type(value := module_globals[name]) not in HIDDEN_GLOBAL_TYPES
                         and name not in local_names]
                if pairs:
                    kept += self._values(info, info.global_entries, pairs, "global", active, parts)
        if kept != len(active.cache):
            self._forget_gone_names(active, local_names)

    def _values(self, info: CodeInfo, entries: dict, pairs, kind: str | None, active: ActiveFrame,
                parts: list) -> int:
        """Value events for (name, value) pairs; returns how many names the cache holds.

        The frame's cache keeps, per name, the last value, its event text and what that
        text depends on: an unchanged value costs an identity check instead of an encoding
        (and a value inside containers, a check of those containers at C speed).  Only the
        two common cases are handled here (the accelerator's snapshot loop handles exactly
        the same two); everything else goes through `_value_miss`.
        """
        append = parts.append
        cache = active.cache
        miss = self._value_miss
        int_suffix = self.encoder.int_value_suffix
        kept = 0
        for name, value in pairs:
            cached = cache.get(name)
            if cached is not None and cached[0] is value and cached[2] is EMPTY:
                # The same immutable value as at the last step.
                append(cached[1])
                kept += 1
            elif type(value) is int and I64_MIN <= value <= I64_MAX and (entry := entries.get(name)) is not None \
                    and entry[0] == ALLOW:
                text = entry[1] + '{"kind":"Int","i":' + int.__repr__(value) + int_suffix
                cache[name] = (value, text, EMPTY)
                append(text)
                kept += 1
            else:
                kept += miss(info, entries, name, value, kind, cached, cache, parts)
        return kept

    def _value_miss(self, info: CodeInfo, entries: dict, name: str, value: object, kind: str | None,
                    cached: tuple | None, cache: dict, parts: list) -> int:
        """The Value event of a variable whose last text cannot be reused as is; returns 1
        when the name is (still) in the cache, else 0."""
        value_type = type(value)
        if kind is not None and value_type in HIDDEN_GLOBAL_TYPES:
            return 0  # imports, functions and classes are not shown (nor redacted) as globals
        entry = entries.get(name)
        if entry is None:
            entry = entries[name] = self._entry(info, name, kind or ("arg" if name in info.arg_names else "local"))
        mode = entry[0]
        if mode == ALLOW:
            encoder = self.encoder
            # The same container or object as last time: only what changed in it is
            # re-encoded (the encoder returns the hint itself when nothing did).
            hint = cached[2] if cached is not None and cached[0] is value else None
            if hint is not None and encoder.unchanged(hint):
                parts.append(cached[1])  # the check alone, without entering the encoder
                return 1
            text, dep = encoder.encode_tracked(value, hint)
            if dep is hint and hint is not None:
                parts.append(cached[1])
                return 1
            text = entry[1] + text + "}}"
            cache[name] = (value, text, dep)
            parts.append(text)
            return 1
        if mode == REDACT:
            parts.append(entry[1])
            self.redactions[entry[2]] = self.redactions.get(entry[2], 0) + 1
        elif mode == DROP:
            self.drops[entry[2]] = self.drops.get(entry[2], 0) + 1
        return 0

    def _forget_gone_names(self, active: ActiveFrame, local_names) -> None:
        """A variable went away (`del`, or rebound to a value that is not shown): drop its
        cache entry now, so the cache never keeps a value alive for more than one step."""
        frame = active.frame
        visible = frame.f_locals if local_names is None else local_names
        module_globals = frame.f_globals
        kept = {}
        for name, cached in active.cache.items():
            value = visible.get(name, _MISSING)
            if value is _MISSING:
                value = module_globals.get(name, _MISSING)
            if value is cached[0]:
                kept[name] = cached
        active.cache = kept

    # -- events from the hooks -------------------------------------------------------------

    def enter(self, ts: ThreadState, info: CodeInfo, frame: types.FrameType) -> ActiveFrame:
        """A traced frame starts: Step at the definition line, then Call with the arguments.

        The argument encodings seed the new frame's cache, so its first step does not encode
        them again; an argument that a caller shows too (a method's `self`, an object passed
        down a chain of calls) is re-encoded from that caller's last encoding of it, when both
        frames filter values alike."""
        with self.lock:
            encode_tracked = self.encoder.encode_tracked
            int_text = self.encoder.int_text
            self._attr_decision = info.decision
            entries = info.local_entries
            stack = ts.stack
            active = ActiveFrame(info, frame)
            cache = active.cache
            args = []
            local_names = frame.f_locals
            for name in info.arg_names:
                value = local_names.get(name, _MISSING)
                if value is _MISSING:
                    continue
                entry = entries.get(name)
                if entry is None:
                    entry = entries[name] = self._entry(info, name, "arg")
                mode = entry[0]
                if mode == ALLOW:
                    if type(value) is int:  # without the encoder's dispatch and the callers' hints
                        text, dep = int_text(value), EMPTY
                    else:
                        text, dep = encode_tracked(value, _hint_from_callers(stack, info.decision, value))
                    args.append('{"variable_id":%d,"value":%s}' % (self.variables[name], text))
                    if dep is not None:
                        cache[name] = (value, entry[1] + text + "}}", dep)
                elif mode == REDACT:
                    args.append('{"variable_id":%d,"value":%s}' % (self.variables[name], self._redacted_text))
                    self.redactions["arg"] = self.redactions.get("arg", 0) + 1
                elif mode == DROP:
                    self.drops["arg"] = self.drops.get("arg", 0) + 1
            self._emit(ts, '%s,\n{"Call":{"function_id":%d,"args":[%s]}}'
                       % (info.call_step, info.function_id, ",".join(args)))
            ts.stack.append(active)
            self.calls += 1
            return active

    def resume(self, ts: ThreadState, info: CodeInfo, frame: types.FrameType,
               exception: BaseException | None = None, suspended_line: int | None = None) -> ActiveFrame:
        """A generator/coroutine resumes: a Call with no args (a throw carries `exception`)."""
        with self.lock:
            args = ""
            if exception is not None:
                vid = self.variable_id("exception")
                args = '{"variable_id":%d,"value":%s}' % (
                    vid, self.encoder.raw(exception_text(exception), type(exception).__name__))
            active = ActiveFrame(info, frame)
            # It goes on from the line it was suspended at: a step of that same line right
            # after resuming is not a new step (sys.monitoring does not report one).
            active.last_line = suspended_line if suspended_line is not None else suspended_line_of(info, frame)
            # Written last, then pushed at once: a Call is never written for a frame that is
            # not on the stack (see _return).
            self._emit(ts, '%s,\n{"Call":{"function_id":%d,"args":[%s]}}'
                       % (info.call_step, info.function_id, args))
            ts.stack.append(active)
            self.calls += 1
            return active

    def adopt(self, ts: ThreadState, info: CodeInfo, frame: types.FrameType) -> None:
        """A traced frame that was already running when recording started (the caller of
        `rewind.start()`, and its callers): a Call as if it started now, then a Step at the
        line it is at, so the trace shows where the program was and what it held."""
        active = self.enter(ts, info, frame)
        line = frame.f_lineno
        if line:  # None or 0 in artificial code
            self.line(ts, active, line)

    def line(self, ts: ThreadState, active: ActiveFrame, line: int) -> None:
        """One executed line: a Step, then the full snapshot of visible variables."""
        self._acquire()
        try:
            info = active.info
            step = info.step_texts.get(line)
            if step is None:
                if line is None or line < 1:
                    return  # artificial code (an empty module's implicit return) has line 0
                step = info.step_texts[line] = ',\n{"Step":{"path_id":%d,"line":%d}}' % (info.path_id, line)
            active.last_line = line
            if self.io_pending:
                self.io_flush(ts)  # output not yet written belongs to the thread's previous step
            parts = [step]
            self._snapshot(info, active, parts)
            self.steps += 1
            self.values += len(parts) - 1
            text = "".join(parts)
            if ts is not self.current_ts:
                text = self._switch_text(ts) + text
            buffer = self.buffer
            buffer.append(text)
            self.buffered_chars += len(text)
            if len(buffer) > FLUSH_EVERY or len(text) > LARGE_FRAGMENT or self.buffered_chars > FLUSH_CHARS:
                self.flush()
        finally:
            self._release()

    def leave(self, ts: ThreadState, value: object) -> None:
        """The innermost traced frame returns (or yields) `value`."""
        with self.lock:
            info = ts.stack[-1].info
            if info.ret_mode == ALLOW:
                self._attr_decision = info.decision
                # What a function returns is often shown by it or a caller too (`return
                # self.items`, a built object): re-encoded from that encoding.
                if type(value) is int:  # without the encoder's dispatch and the callers' hints
                    text = self.encoder.int_text(value)
                else:
                    text = self.encoder.encode_tracked(value, _hint_from_callers(ts.stack, info.decision, value))[0]
            else:
                text = self._filtered_return(info.ret_mode)
            self._return(ts, text)

    def leave_exception(self, ts: ThreadState, exc: BaseException) -> None:
        """The innermost traced frame is left by an exception (trace-format.md rule 6)."""
        with self.lock:
            mode = ts.stack[-1].info.ret_mode
            if mode == ALLOW:
                text = self.encoder.raw(exception_text(exc), type(exc).__name__)
            else:
                text = self._filtered_return(mode)
            self._return(ts, text)

    def _filtered_return(self, mode: int) -> str:
        """The text of a redacted or dropped return value (a dropped one stays a Return, so
        calls stay balanced), counted in the filter stats."""
        if mode == REDACT:
            self.redactions["ret"] = self.redactions.get("ret", 0) + 1
            return self._redacted_text
        self.drops["ret"] = self.drops.get("ret", 0) + 1
        return self._dropped_text

    def _return(self, ts: ThreadState, value_text: str) -> None:
        # Popped first: output still pending belongs to the frame returned to (_emit's
        # io_flush).  A Return that could not be written at the recursion limit puts the frame
        # back, so its Call stays open with it and the trace stays balanced.
        active = ts.stack.pop()
        try:
            self._emit(ts, ',\n{"Return":{"return_value":%s}}' % value_text)
        except RecursionError:
            ts.stack.append(active)
            raise
        self.returns += 1

    def current_location(self, tid: int) -> tuple[int, int, int] | None:
        """(path_id, line, stack depth) of the step thread `tid` is at, or None outside
        recorded code; IO capture uses it to attribute output to the line that wrote it."""
        ts = self.threads.get(tid)
        if ts is None or not ts.stack:
            return None
        active = ts.stack[-1]
        return (active.info.path_id, active.last_line, len(ts.stack))

    def io_event(self, ts: ThreadState, kind: int, metadata: str, content: str) -> None:
        with self.lock:
            self.io_events += 1
            self._emit(ts, ',\n{"Event":{"kind":%d,"metadata":%s,"content":%s}}'
                       % (kind, _escape(metadata), _escape(content)))

    # -- the end -------------------------------------------------------------------------

    def close_all(self, exit_code: int | None, error_traceback: str | None = None,
                  still_running: str = "<unfinished at exit>") -> None:
        """Close every open call on every thread, each returning `still_running`, then
        `<toplevel>` with the exit status."""
        with self.lock:
            main = self.all_threads[0]
            others = [ts for ts in self.all_threads if ts is not main]
            for ts in others:
                self._close_stack(ts, still_running)
                if ts.started:
                    self._emit(ts, ',\n{"ThreadExit":%d}' % ts.number)
            self._close_stack(main, still_running)
            if error_traceback:
                self.io_event(main, 11, "", error_traceback)
            if self.toplevel_open:
                self.toplevel_open = False
                if exit_code is None:
                    value = self.encoder.encode("<exit>")
                else:
                    value = self.encoder.encode(int(exit_code))
                self._emit(main, ',\n{"Return":{"return_value":%s}}' % value)
            self.flush()

    def _close_stack(self, ts: ThreadState, still_running: str) -> None:
        """Frames still open at the end (threads still running, os._exit, a failure, the
        functions around a `rewind.stop()`)."""
        if ts.stack:
            unfinished = self.encoder.raw(still_running, "<exit>")
            while ts.stack:
                self._return(ts, unfinished)

    def counts(self) -> tuple[int, int, int, int]:
        """(steps, values, calls, returns) written so far, by these methods and the C core
        (which counts its own in C)."""
        steps, values, calls, returns = self.steps, self.values, self.calls, self.returns
        if self._core is not None:
            c_steps, c_values, c_calls, c_returns = self._core.counts()
            return steps + c_steps, values + c_values, calls + c_calls, returns + c_returns
        return steps, values, calls, returns

    def events_written(self) -> int:
        """Events of the trace, definitions excluded (cheap: computed from counters)."""
        steps, values, calls, returns = self.counts()
        return steps + 2 * calls + returns + values + self.io_events + 2

    def stats(self) -> dict:
        """Counts that match what `rewind validate` / `summary` count in the trace."""
        steps, values, calls, returns = self.counts()
        return {
            # every non-toplevel Call comes right after its entry Step
            "steps": steps + calls,
            "calls": calls + 1,
            "returns": returns + (0 if self.toplevel_open else 1),
            "values": values,
            "io_events": self.io_events,
            "paths": len(self.path_list),
            "functions": len(self.functions),
            "types": len(self.types),
            "variable_names": len(self.variables),
        }

