"""`IoCapture`: turns what the stream proxies (and the fd tee) see into trace events.

Placement.  An Event attaches to the most recent Step of the trace, so output must be
written into the event stream while the step that produced it is still the latest one of
its thread.  Text is kept per thread in a small pending buffer and written out as an
Event

- at a newline (everything up to the last newline of the write),
- at an explicit flush() (or close()) of the stream,
- when the thread reaches its next Step, Call or Return: the recorder checks
  `recorder.io_pending` (a plain attribute, False unless something is pending) and calls
  `recorder.io_flush(ts)` first, so a partial line written at step N is an Event of step N,
- when the same thread writes from another frame or line, or to another stream, with no
  Step in between (a call or return through unrecorded code),
- when a line reaches CHUNK characters (a long line becomes several events),
- at uninstall: partial lines are never lost at exit.

Metadata of every event is a JSON object `{"stream", "thread", "path_id", "line",
"flags"}`: `thread` is the trace's thread number (ThreadStart/ThreadSwitch), `path_id` and
`line` the writing frame's current step, both null (flag `detached`) when the thread was in
no recorded frame.  Flags: newline, flush, close, step_boundary, split, exit (what ended
the event), input (stdin), binary (written or read through `.buffer`), mirror (seen on the
file descriptor only, `proxies+fd`).

Locking.  All bookkeeping happens under the recorder's lock (an RLock), which the hooks
hold while they emit, so a thread's output never lands inside another event fragment and
the recorder's callback needs no second lock.  The real stream is written before, outside
that lock.
"""
from __future__ import annotations

import builtins
import codecs
import logging
import os
import re
import sys
from threading import get_ident

log = logging.getLogger("rewind.capture")

STREAMS = ("stdout", "stderr", "stdin")
KINDS = {"stdout": 0, "stderr": 2, "stdin": 3}
CHUNK = 64 * 1024  # characters per Event at most; longer output is split

_SURROGATES = re.compile("[\ud800-\udfff]")
_META_CACHE_LIMIT = 4096


def select_streams(mode: str, io_settings: dict | None) -> tuple[frozenset, bool]:
    """(streams to capture, fd capture on?) from the policy's io_capture and the filter
    chain's `[io]` section.  The policy is the master switch (`off` records nothing); a
    filter with `capture = false` turns capture off, `capture = true` keeps only its
    `streams`."""
    if mode == "off":
        return frozenset(), False
    streams = set(STREAMS)
    if io_settings is not None:
        if not io_settings.get("capture"):
            return frozenset(), False
        streams &= set(io_settings.get("streams") or ())
    return frozenset(streams), mode == "proxies+fd"


def clean_text(text: str) -> str:
    """Text the trace can hold: lone surrogates (surrogateescape data) become U+FFFD."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATES.sub("\ufffd", text)
    return text


def _merge(flags: tuple, more: tuple) -> tuple:
    return flags + tuple(f for f in more if f not in flags) if more else flags


class _Pending:
    """A thread's output not yet written as an Event (fewer than CHUNK characters after
    each write, so memory stays bounded whatever the program writes)."""

    __slots__ = ("stream", "ts", "active", "line", "location", "parts", "size", "flags")

    def __init__(self, stream: str, ts, active, line, location: tuple, flags: tuple):
        self.stream = stream
        self.ts = ts              # the writing thread's ThreadState
        self.active = active      # the ActiveFrame that wrote (compared by identity), or None
        self.line = line
        self.location = location  # (thread number, path_id or None, line or None)
        self.parts: list[str] = []
        self.size = 0
        self.flags = flags


class IoCapture:
    """One session's IO capture.  Build it with `install()`."""

    def __init__(self, recorder, streams: frozenset, fd: bool, guard=None):
        self.rec = recorder
        self.lock = recorder.lock
        self.streams = streams
        self.fd_requested = fd
        self.guard = guard
        self.active = False
        self.installed = False
        self.pending: dict[int, _Pending] = {}   # thread ident -> its pending output
        self.proxies: dict[str, object] = {}     # stream -> proxy installed in sys
        self.originals: dict[str, object] = {}   # stream -> what sys held before
        self.dunders: list[str] = []             # streams whose sys.__<stream>__ we replaced
        self.decoders: dict[str, codecs.IncrementalDecoder] = {}
        self.fdtee = None
        self.poll_fds = False                    # fd mode: look at the pipes before every event
        self._step_poll = None
        self.step_where: dict[int, tuple] = {}   # fd mode: tid -> where it was at its last event
        self._meta: dict[tuple, str] = {}
        current = getattr(recorder, "current_thread_state", None)
        self._current_ts = current if current is not None else (lambda: recorder.thread(get_ident()))
        self._input_wrapper = None
        self._original_input = None
        self._pid = os.getpid()

    # -- install / uninstall ---------------------------------------------------------------

    def install(self) -> None:
        from .proxies import InputProxy, OutputProxy

        fd_streams = self._install_fd() if self.fd_requested else ()
        for stream in ("stdout", "stderr"):
            original = getattr(sys, stream)
            if stream not in self.streams or original is None:
                continue
            target, record = original, True
            if stream in fd_streams:
                target, record = self.fdtee.proxy_target(stream, original)
            self.originals[stream] = original
            self.proxies[stream] = OutputProxy(target, self if record else None, stream, original)
        if "stdin" in self.streams and sys.stdin is not None:
            self.originals["stdin"] = sys.stdin
            self.proxies["stdin"] = InputProxy(sys.stdin, self, "stdin", sys.stdin)
            if _terminal_input():
                self._wrap_input()
        self.rec.io_flush = self._flush_before
        if self.fdtee is not None:
            self.poll_fds = True
            self._step_poll = self.fdtee.step_poll
        self.rec.io_pending = self.poll_fds
        self.active = True
        self.installed = True
        for stream, proxy in self.proxies.items():
            # sys.__stdout__ too when it is the same object, so that a program restoring
            # `sys.stdout = sys.__stdout__` is still recorded and `sys.stdout is
            # sys.__stdout__` keeps its answer.
            dunder = "__%s__" % stream
            if getattr(sys, dunder, None) is self.originals[stream]:
                setattr(sys, dunder, proxy)
                self.dunders.append(stream)
            setattr(sys, stream, proxy)
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._after_fork_in_child)

    def _install_fd(self) -> tuple:
        from .fdtee import FdTee

        wanted = [s for s in ("stdout", "stderr") if s in self.streams]
        if not wanted:
            return ()
        if os.name != "posix":
            log.warning("io_capture proxies+fd needs a POSIX system; capturing through the proxies only")
            return ()
        tee = FdTee(self, wanted)
        try:
            streams = tee.install()
        except Exception as exc:  # noqa: BLE001 - fd capture is best effort; the proxies still work
            log.warning("file-descriptor capture is not available (%s); capturing through the proxies only", exc)
            return ()
        if streams:
            self.fdtee = tee
        return streams

    def _wrap_input(self) -> None:
        """input() on a terminal reads through readline, not sys.stdin: record it here
        (installed only when stdin and stdout are a terminal)."""
        original = builtins.input
        capture = self

        def input(*args):  # noqa: A001 - stands in for the builtin
            if not capture.active or not _terminal_input():
                return original(*args)
            line = original(*args)
            if args and "stdout" in capture.streams:
                capture.write_text("stdout", str(args[0]))
            capture.read_text("stdin", line + "\n")
            return line

        input.__doc__ = original.__doc__
        input.__wrapped__ = original
        self._original_input = original
        self._input_wrapper = input
        builtins.input = input

    def uninstall(self) -> None:
        """Write everything still pending into the trace and restore the streams."""
        if not self.installed:
            return
        self.installed = False
        try:
            with self.lock:
                for stream in list(self.decoders):
                    self._flush_decoder(stream)
                self._flush_all("exit")
                self.poll_fds = False
                self.rec.io_pending = bool(self.pending)
            if self.fdtee is not None:
                self.fdtee.uninstall()  # what is left in the pipes becomes events too
                for proxy in self.proxies.values():
                    if proxy._rw_target is not proxy._rw_original:
                        self.fdtee.hand_over(proxy._rw_target, proxy._rw_original)
            with self.lock:
                self._flush_all("exit")
        finally:
            self.active = False
            with self.lock:
                self.pending.clear()
                self.rec.io_pending = False
                self.rec.io_flush = None
            for stream, proxy in self.proxies.items():
                proxy._rw_detach()
                if getattr(sys, stream) is proxy:
                    setattr(sys, stream, self.originals[stream])
                dunder = "__%s__" % stream
                if stream in self.dunders and getattr(sys, dunder, None) is proxy:
                    setattr(sys, dunder, self.originals[stream])
            if self._input_wrapper is not None and builtins.input is self._input_wrapper:
                builtins.input = self._original_input

    def _after_fork_in_child(self) -> None:
        # A forked child writes to the inherited streams as it would unrecorded and records
        # nothing (its output on inherited descriptors still reaches the parent's fd tee).
        if not self.active or os.getpid() == self._pid:
            return
        self.active = False
        self.installed = False
        self.pending = {}
        if self.fdtee is not None:
            self.fdtee.after_fork_in_child()

    # -- from the proxies ------------------------------------------------------------------

    def write_text(self, stream: str, text: str, flags: tuple = ()) -> None:
        """`text` was written to `stream` (stdout/stderr) by the current thread."""
        if not self.active:
            return
        try:
            if self.fdtee is not None and ("\n" in text or get_ident() not in self.pending):
                # Bytes written to the descriptor before this go first (checked when a
                # piece of output starts and when it ends: one poll(2) each).
                self.fdtee.sync()
            with self.lock:
                if self.active and not self.rec.encoder.in_repr:
                    # (a __repr__ the recorder calls is not the program's doing)
                    self._add(get_ident(), stream, text, flags)
        except Exception as exc:  # noqa: BLE001 - the session's guard decides
            self._failed(exc)

    def write_bytes(self, stream: str, data: bytes) -> None:
        """Bytes written to `stream`'s binary buffer: decoded with the stream's encoding,
        undecodable bytes as U+FFFD (a character split across writes is kept whole)."""
        try:
            with self.lock:
                text = self._decoder(stream).decode(data)
        except Exception as exc:  # noqa: BLE001
            self._failed(exc)
            return
        if text:
            self.write_text(stream, text, ("binary",))

    def flushed(self, stream: str, reason: str = "flush") -> None:
        """The program flushed (or closed) `stream`: pending output of it becomes an Event."""
        try:
            with self.lock:
                if reason == "close":
                    self._flush_decoder(stream)
                    for tid, p in list(self.pending.items()):
                        if p.stream == stream:
                            self._flush_thread(tid, reason)
                    return
                p = self.pending.get(get_ident())
                if p is not None and p.stream == stream:
                    self._flush_thread(get_ident(), reason)
        except Exception as exc:  # noqa: BLE001
            self._failed(exc)

    def read_text(self, stream: str, text: str, flags: tuple = ("input",)) -> None:
        """The program read `text` from stdin: one Event (several for a very long read),
        after the thread's pending output (the prompt written before reading)."""
        try:
            with self.lock:
                if not self.active or self.rec.encoder.in_repr:
                    return
                tid = get_ident()
                self._flush_thread(tid, "flush")
                ts, active, line = self._here(tid)
                self._emit(ts, stream, self._location(ts, active, line), text, flags)
        except Exception as exc:  # noqa: BLE001
            self._failed(exc)

    def read_bytes(self, stream: str, data: bytes) -> None:
        try:
            with self.lock:
                text = self._decoder(stream).decode(data)
        except Exception as exc:  # noqa: BLE001
            self._failed(exc)
            return
        if text:
            self.read_text(stream, text, ("input", "binary"))

    # -- from the fd tee -------------------------------------------------------------------

    def mirror(self, stream: str, text: str, tid: int | None, where: tuple | None = None) -> None:
        """Bytes that reached descriptor 1/2 without passing through a proxy.  The tee took
        them at thread `tid`'s step boundary (`where`: its step that just ended), at one of
        its proxy writes (its current step), or in the reader thread (tid None: they are
        given to the thread that recorded last, at its current step)."""
        try:
            with self.lock:
                if not self.installed and not self.active:
                    return
                if tid is None or tid not in self.rec.threads:
                    tid = self.rec.current_ts.tid
                    where = None
                self._add(tid, stream, text, ("mirror",), where)
        except Exception as exc:  # noqa: BLE001
            self._failed(exc)

    # -- the recorder's callback -----------------------------------------------------------

    def _flush_before(self, ts) -> None:
        """Called by the recorder, under its lock, while io_pending is set, before any
        Step/Call/Return of thread `ts`: its partial output belongs to the step it was
        written in.  In fd mode io_pending stays set, and this also takes what reached the
        descriptors since the thread's last event (one poll(2)) as output of that step."""
        tid = ts.tid
        if tid in self.pending:
            self._flush_thread(tid, "step_boundary")
        if self.poll_fds:
            tee = self.fdtee
            if tee.paused:
                tee.resume_reader()  # stopped for a fork
            # Bytes move pipe -> reader (holding tee.lock) -> tee.queue; look in that order.
            # Looking at the queue before the lock misses bytes the reader queues and lets
            # go of between the two looks: they would go to the thread's next step.
            if self._step_poll(0) or tee.lock.locked() or tee.queue:
                tee.poll_step(tid, self.step_where.get(tid))
            stack = ts.stack
            if stack:
                active = stack[-1]
                self.step_where[tid] = (ts, active, active.last_line)
            else:
                self.step_where[tid] = (ts, None, None)

    # -- internals (under self.lock) --------------------------------------------------------

    def _here(self, tid: int) -> tuple:
        """(ThreadState, ActiveFrame or None, line) of thread `tid` now."""
        ts = self._current_ts() if tid == get_ident() else self.rec.thread(tid)
        stack = ts.stack
        if not stack:
            return ts, None, None
        active = stack[-1]
        return ts, active, active.last_line

    @staticmethod
    def _location(ts, active, line) -> tuple:
        if active is None:
            return (ts.number, None, None)
        if line is None or line < 1:
            line = active.info.code.co_firstlineno  # entered, no line yet: its call step
        return (ts.number, active.info.path_id, line)

    def _add(self, tid: int, stream: str, text: str, flags: tuple = (), here: tuple | None = None) -> None:
        ts, active, line = here if here is not None else self._here(tid)
        pending = self.pending
        p = pending.get(tid)
        if p is not None and (p.active is not active or p.line != line or p.stream != stream):
            # Same thread, another frame, line or stream, with no event of it in between.
            self._flush_thread(tid, "step_boundary")
            p = None
        newline = text.rfind("\n")
        if newline >= 0:
            head = text[:newline + 1]
            text = text[newline + 1:]
            if p is not None:
                del pending[tid]
                head = "".join(p.parts) + head
                location, head_flags = p.location, _merge(p.flags, flags)
                p = None
            else:
                location, head_flags = self._location(ts, active, line), flags
            self._emit(ts, stream, location, head, head_flags + ("newline",))
            if not text:
                self.rec.io_pending = self.poll_fds or bool(pending)
                return
        if p is None:
            p = pending[tid] = _Pending(stream, ts, active, line, self._location(ts, active, line), flags)
            self.rec.io_pending = True
        elif flags and flags != p.flags:
            p.flags = _merge(p.flags, flags)
        p.parts.append(text)
        p.size += len(text)
        if p.size >= CHUNK:
            del pending[tid]  # (emitting runs the recorder's callback, which must not see it)
            whole = "".join(p.parts)
            cut = len(whole) - len(whole) % CHUNK
            self._emit(ts, stream, p.location, whole[:cut], p.flags + ("split",))
            whole = whole[cut:]
            if whole:
                p.parts = [whole]
                p.size = len(whole)
                pending[tid] = p
            self.rec.io_pending = self.poll_fds or bool(pending)

    def _flush_thread(self, tid: int, reason: str) -> None:
        p = self.pending.pop(tid, None)
        if p is None:
            return
        self.rec.io_pending = self.poll_fds or bool(self.pending)
        if p.size:
            self._emit(p.ts, p.stream, p.location, "".join(p.parts), p.flags + (reason,))

    def _flush_all(self, reason: str) -> None:
        for tid in list(self.pending):
            self._flush_thread(tid, reason)

    def _emit(self, ts, stream: str, location: tuple, text: str, flags: tuple) -> None:
        """The Event(s) of `text`: one, or CHUNK-sized pieces flagged split."""
        if len(text) > CHUNK:
            split = tuple(f for f in flags if f != "newline") + ("split",)
            last = len(text) - CHUNK
            for start in range(0, len(text), CHUNK):
                self._emit(ts, stream, location, text[start:start + CHUNK], flags if start >= last else split)
            return
        key = (stream, location, flags)
        meta = self._meta.get(key)
        if meta is None:
            if len(self._meta) > _META_CACHE_LIMIT:
                self._meta.clear()
            meta = self._meta[key] = _metadata(stream, location, flags)
        self.rec.io_event(ts, KINDS[stream], meta, clean_text(text))

    def _decoder(self, stream: str):
        decoder = self.decoders.get(stream)
        if decoder is None:
            encoding = getattr(self.originals.get(stream), "encoding", None) or "utf-8"
            try:
                factory = codecs.getincrementaldecoder(encoding)
            except (LookupError, TypeError):
                factory = codecs.getincrementaldecoder("utf-8")
            decoder = self.decoders[stream] = factory(errors="replace")
        return decoder

    def _flush_decoder(self, stream: str) -> None:
        """The end of a binary stream: an incomplete character becomes U+FFFD."""
        decoder = self.decoders.get(stream)
        text = decoder.decode(b"", final=True) if decoder is not None else ""
        if not text:
            return
        tid = get_ident()
        if stream == "stdin":
            ts, active, line = self._here(tid)
            self._emit(ts, stream, self._location(ts, active, line), text, ("input", "binary"))
        else:
            self._add(tid, stream, text, ("binary",))

    def _failed(self, exc: BaseException) -> None:
        """An internal failure while recording IO: the session's guard decides (abort raises
        it in the program, disable detaches the recorder, which uninstalls this capture)."""
        if self.guard is None:
            raise exc
        self.guard(exc)


def _metadata(stream: str, location: tuple, flags: tuple) -> str:
    number, path_id, line = location
    if path_id is None:
        flags = flags + ("detached",)
        where = '"path_id":null,"line":null'
    else:
        where = '"path_id":%d,"line":%d' % (path_id, line)
    return '{"stream":"%s","thread":%d,%s,"flags":[%s]}' % (
        stream, number, where, ",".join('"%s"' % f for f in flags))


def _terminal_input() -> bool:
    """True when input() will read through readline (CPython's condition): sys.stdin and
    sys.stdout are the process's terminal descriptors 0 and 1."""
    try:
        return (sys.stdin.fileno() == 0 and os.isatty(0)
                and sys.stdout.fileno() == 1 and os.isatty(1))
    except Exception:  # noqa: BLE001 - no fileno, closed: input() takes the other path too
        return False


def install(recorder, mode: str, io_settings: dict | None, guard=None) -> IoCapture | None:
    """Install IO capture for a session; None when nothing is captured."""
    streams, fd = select_streams(mode, io_settings)
    if not streams:
        return None
    capture = IoCapture(recorder, streams, fd, guard)
    capture.install()
    return capture
