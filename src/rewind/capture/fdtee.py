"""File-descriptor capture for `io_capture = proxies+fd` (POSIX).

Descriptors 1 and 2 are pointed at pipes while recording.  Whatever reaches them
(os.write, C extensions, child processes that inherited them, `sys.__stdout__`) is read
back and copied, byte for byte and in order, to a saved duplicate of the original
descriptor, and recorded as an Event flagged `mirror`.

No duplicates: `sys.stdout`/`sys.stderr` themselves must not go through the pipe, or what
the proxies already recorded would be recorded again.  So the proxy writes through a
stream object of our own, built like the interpreter's (same encoding, errors, buffer
size, line buffering, write-through: the same bytes reach the destination at the same
moments), whose raw layer (`_TapRaw`) writes straight to the saved descriptor -- after
first copying out everything already waiting in the pipes, so the order the user sees is
the order the program wrote in.  Its `fileno()` is still 1 (or 2) and `isatty()` answers
for the original destination.

The pipes are read by one reader thread (started with `_thread`, so it is not in
`threading.enumerate()`), and synchronously by every proxy write, which keeps the trace's
order close to the program's.  Recording happens outside the tee's lock.

Limits: while recording, `os.isatty(1)` is False for the program and its children (the
descriptor is a pipe); a process that still holds the pipe when recording stops keeps
being forwarded (without recording) until it closes it or this process exits.
"""
from __future__ import annotations

import _thread
import codecs
import io
import os
import select
import sys
import time
from collections import deque

from .. import diagnostics

FDS = {"stdout": 1, "stderr": 2}
READ_SIZE = 65536
LOCK_WAIT = 0.05  # seconds a recording thread waits for the reader to finish a read
QUEUE_LIMIT = 1 << 20  # characters the reader holds for the next event before recording them itself


def _write_all(fd: int, data) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            select.select([], [fd], [])
            continue
        view = view[n:]


def _identity(fd: int):
    st = os.fstat(fd)
    return (st.st_dev, st.st_ino)


class _Entry:
    """One teed descriptor."""

    __slots__ = ("stream", "fd", "saved", "r", "pipe_id", "isatty", "decoder", "eof", "broken")

    def __init__(self, stream: str, fd: int, saved: int, r: int, pipe_id, isatty: bool, encoding: str):
        self.stream = stream
        self.fd = fd
        self.saved = saved
        self.r = r
        self.pipe_id = pipe_id
        self.isatty = isatty
        try:
            factory = codecs.getincrementaldecoder(encoding)
        except (LookupError, TypeError):
            factory = codecs.getincrementaldecoder("utf-8")
        self.decoder = factory(errors="replace")
        self.eof = False
        self.broken = False


class _TapRaw(io.RawIOBase):
    """Raw layer of the stream objects the proxies write through in fd mode."""

    def __init__(self, tee, fd: int, name, isatty: bool):
        super().__init__()
        self._tee = tee
        self._fd = fd
        self._isatty = isatty
        self.name = name
        self.collect = None  # a list while hand_over() takes what the stream object buffers

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def isatty(self) -> bool:
        if self.closed:
            raise ValueError("I/O operation on closed file")
        if self._tee is None:
            return os.isatty(self._fd)
        return self._isatty

    def write(self, b) -> int:
        if self.closed:
            raise ValueError("write to closed file")
        if self.collect is not None:
            data = bytes(b)
            self.collect.append(data)
            return len(data)
        tee = self._tee
        if tee is not None and tee.active:
            return tee.write_direct(self._fd, b)
        return os.write(self._fd, b)  # after recording (or in a forked child): the descriptor

    # close(): only marks this object closed; the proxy closes the original stream, which
    # owns the descriptor.


class FdTee:
    def __init__(self, capture, streams):
        self.capture = capture
        self.wanted = tuple(streams)
        self.entries: dict[str, _Entry] = {}
        self.by_fd: dict[int, _Entry] = {}  # 1/2 -> entry
        self.lock = _thread.allocate_lock()       # reading the pipes, writing the saved fds
        self.emit_lock = _thread.allocate_lock()  # handing texts to the capture, in order
        self.queue: deque = deque()   # (stream, text, tid or None, where or None)
        self.queued = 0               # characters in the queue
        # (tid, where) of a step that ended while the reader held bytes longer than LOCK_WAIT:
        # the reader's next texts were written during that step (see poll_step).
        self.owed = None
        self.taps: list[_TapRaw] = []
        self.active = False
        self.stopping = False
        self.reader_done = None
        self.reader_ident = None
        self.reader_native = None
        self.pausing = False  # the reader stops for a fork (see _before_fork)
        self.paused = False
        self.wake_r = self.wake_w = None
        self.diag_stream = None
        self.diag_previous = None
        self._poll = None       # for sync(), under self.lock
        self._step_poll = None  # for poll_step(), under the recorder's lock
        self.step_poll = None   # its bound poll(): the capture's per-event check

    # -- install / uninstall ---------------------------------------------------------------

    def install(self) -> tuple:
        """Tee the wanted descriptors; returns the streams that are teed.  Raises OSError
        (after undoing what it did) when the pipes cannot be set up."""
        for obj in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
            try:
                if obj is not None:
                    obj.flush()
            except Exception:  # noqa: BLE001, S110 - a closed stream has nothing to flush
                pass
        try:
            for stream in self.wanted:
                self._tee(stream)
            if not self.entries:
                return ()
            self._poll = select.poll()
            self._step_poll = select.poll()
            for entry in self.entries.values():
                self._poll.register(entry.r, select.POLLIN)
                self._step_poll.register(entry.r, select.POLLIN)
            self.step_poll = self._step_poll.poll
            self.wake_r, self.wake_w = os.pipe()
            if "stderr" in self.entries:
                # rewind's own log lines go to the real stderr, never into the pipe.
                self.diag_stream = open(os.dup(self.entries["stderr"].saved), "w", buffering=1,
                                        encoding="utf-8", errors="backslashreplace")
                self.diag_previous = diagnostics.use_stream(self.diag_stream)
            self.active = True
            self._warm_up()
            self._start_reader()
            if hasattr(os, "register_at_fork"):
                os.register_at_fork(before=self._before_fork, after_in_parent=self._after_fork_in_parent)
        except BaseException:
            self.active = False
            self._rollback()
            raise
        return tuple(self.entries)

    def _tee(self, stream: str) -> None:
        fd = FDS[stream]
        try:
            os.fstat(fd)
        except OSError:
            return  # the descriptor is closed: nothing can write to it
        saved = os.dup(fd)
        try:
            r, w = os.pipe()
        except OSError:
            os.close(saved)
            raise
        original = getattr(sys, stream, None)
        encoding = getattr(original, "encoding", None) or "utf-8"
        entry = _Entry(stream, fd, saved, r, None, os.isatty(saved), encoding)
        self.entries[stream] = entry
        self.by_fd[fd] = entry
        os.set_blocking(r, False)
        try:
            os.dup2(w, fd)
        finally:
            os.close(w)
        entry.pipe_id = _identity(fd)

    def _rollback(self) -> None:
        if self.diag_stream is not None:
            diagnostics.use_stream(self.diag_previous)
            try:
                self.diag_stream.close()
            except OSError:
                pass
            self.diag_stream = None
        for fd in (self.wake_r, self.wake_w):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.wake_r = self.wake_w = None
        for entry in self.entries.values():
            if entry.pipe_id is not None:
                try:
                    os.dup2(entry.saved, entry.fd)
                except OSError:
                    pass
            for fd in (entry.r, entry.saved):
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.entries.clear()
        self.by_fd.clear()

    def proxy_target(self, stream: str, original):
        """(object the proxy writes through, record in the proxy?) for a teed stream."""
        entry = self.entries[stream]
        chain = self._own_stream(original, entry)
        if chain is not None:
            return chain, True
        try:
            same_fd = original.fileno() == entry.fd
        except Exception:  # noqa: BLE001 - StringIO & co: they never reach the descriptor
            same_fd = False
        # A stream we cannot stand in for that writes to the descriptor anyway: its output
        # is recorded from the pipe only, so nothing is recorded twice.
        return original, not same_fd

    def _own_stream(self, original, entry: _Entry):
        if type(original) is not io.TextIOWrapper:
            return None
        try:
            if original.fileno() != entry.fd or original.closed:
                return None
            buffer = original.buffer
        except Exception:  # noqa: BLE001
            return None
        tap = _TapRaw(self, entry.fd, getattr(original, "name", entry.fd), entry.isatty)
        if type(buffer) is io.BufferedWriter:
            blksize = getattr(buffer.raw, "_blksize", 0)
            buffered = io.BufferedWriter(tap, buffer_size=blksize if blksize > 1 else io.DEFAULT_BUFFER_SIZE)
        elif type(buffer) is io.FileIO:  # python -u: no binary buffer
            buffered = tap
        else:
            return None
        chain = io.TextIOWrapper(buffered, encoding=original.encoding, errors=original.errors, newline="\n",
                                 line_buffering=original.line_buffering, write_through=original.write_through)
        try:
            chain._CHUNK_SIZE = original._CHUNK_SIZE
            chain.mode = original.mode
        except (AttributeError, ValueError):
            pass
        self.taps.append(tap)
        chain._rw_tap = tap
        return chain

    def uninstall(self) -> None:
        if not self.active:
            return
        # 1. The descriptors point at the real destinations again (unless the program
        #    closed or replaced them: then they stay as it left them).
        for entry in self.entries.values():
            try:
                ours = _identity(entry.fd) == entry.pipe_id
            except OSError:
                ours = False
            if ours:
                try:
                    os.dup2(entry.saved, entry.fd)
                except OSError:
                    pass
        # 2. Stop the reader, then take what is left in the pipes.
        self.stopping = True
        try:
            os.write(self.wake_w, b"x")
        except OSError:
            pass
        if self.reader_ident != _thread.get_ident():
            self.reader_done.acquire(timeout=5)
        # (with a timeout: a signal handler finishing the trace may have interrupted this
        # very thread while it held the lock)
        if self.lock.acquire(timeout=2):
            try:
                self._drain_locked(None)
            finally:
                self.lock.release()
        self._deliver()
        self.active = False
        for tap in self.taps:
            tap._tee = None
        # 3. Our diagnostics stream goes back to the original stderr.
        if self.diag_stream is not None:
            diagnostics.use_stream(self.diag_previous)
            try:
                self.diag_stream.close()
            except OSError:
                pass
        # 4. A pipe another process still holds keeps being forwarded until it is closed.
        for entry in self.entries.values():
            if entry.r is None:
                os.close(entry.saved)
            elif entry.eof or entry.broken or self._hung_up(entry.r, entry.saved):
                os.close(entry.r)
                os.close(entry.saved)
            else:
                _thread.start_new_thread(_forward_until_eof, (entry.r, entry.saved))
            entry.r = None
        for fd in (self.wake_r, self.wake_w):
            try:
                os.close(fd)
            except OSError:
                pass

    @staticmethod
    def hand_over(chain, original) -> None:
        """After recording: what our stream object still buffers moves into the original
        stream's buffer, to be written when the original would have written it (at exit,
        or never if the program ends with os._exit) -- not earlier than without rewind."""
        tap = getattr(chain, "_rw_tap", None)
        if tap is None:
            return
        tap.collect = []
        try:
            chain.flush()
        except (OSError, ValueError):
            pass
        data = b"".join(tap.collect)
        tap.collect = None
        if not data:
            return
        try:
            original.buffer.write(data)
        except (OSError, ValueError, AttributeError):
            try:
                _write_all(tap._fd, data)
            except OSError:
                pass

    @staticmethod
    def _hung_up(r: int, saved: int) -> bool:
        """True when no process holds the pipe's write end any more (what it still holds
        is copied out first)."""
        poller = select.poll()
        poller.register(r, select.POLLIN)
        for _fd, event in poller.poll(0):
            if event & select.POLLHUP:
                try:
                    while True:
                        data = os.read(r, READ_SIZE)
                        if not data:
                            return True
                        _write_all(saved, data)
                except OSError:
                    return True
        return False

    def _warm_up(self) -> None:
        """Run once, here, what the reader runs while holding self.lock: with sys.monitoring
        the first call of a code object goes through the recorder (under its lock) to be
        decided, which the reader must not need while it holds ours."""
        with self.lock:
            self._drain_locked(None)
            for entry in self.entries.values():
                _write_all(entry.saved, b"")
                entry.decoder.decode(b"")
            self._wake()  # (the reader starts by reading this byte)
        self._deliver()

    def _start_reader(self) -> None:
        self.reader_done = _thread.allocate_lock()
        self.reader_done.acquire()
        self.pausing = False
        _thread.start_new_thread(self._run, ())

    def _before_fork(self) -> None:
        # os.fork() in a process with more than one thread warns (3.12+) and is a deadlock
        # risk for the child: the reader thread stops for the moment of the fork.
        if self.active and not self.stopping and self.reader_done is not None:
            self.pausing = True
            self._wake()
            if self.reader_ident != _thread.get_ident() and self.reader_done.acquire(timeout=1):
                self.reader_done.release()
                self.paused = True
                _wait_until_gone(self.reader_native)

    def _after_fork_in_parent(self) -> None:
        # 3.13 counts the threads after the after-fork callbacks: there the reader comes
        # back at the next event or write (resume_reader), before any wait could need it.
        if self.paused and sys.version_info < (3, 13):
            self.resume_reader()

    def resume_reader(self) -> None:
        if self.paused:
            self.paused = False
            if self.active and not self.stopping:
                self._start_reader()

    def after_fork_in_child(self) -> None:
        # No reader in the child: its stream objects write to the (inherited) pipe, which
        # the parent keeps reading and recording.
        self.active = False
        for tap in self.taps:
            tap._tee = None

    # -- data path -----------------------------------------------------------------------

    def write_direct(self, fd: int, b) -> int:
        """_TapRaw.write: the pipes' pending bytes first, then `b`, to the real destination."""
        data = memoryview(b).cast("B") if not isinstance(b, bytes) else b
        entry = self.by_fd[fd]
        tid = _thread.get_ident()
        locked = self.lock.acquire(timeout=LOCK_WAIT)  # (bounded: see poll_step)
        try:
            if locked:
                self._drain_locked(tid)
            _write_all(entry.saved, data)
        finally:
            if locked:
                self.lock.release()
        self._deliver(tid)
        return len(data)

    def sync(self) -> None:
        """A proxy write is about to be recorded: what reached the descriptors before it is
        recorded first, as output of the writing thread's current step."""
        if not self.active:
            return
        if self.paused:
            self.resume_reader()
        tid = _thread.get_ident()
        if self.lock.acquire(timeout=LOCK_WAIT):  # (bounded: see poll_step)
            try:
                if self._poll.poll(0):
                    self._drain_locked(tid)
            finally:
                self.lock.release()
        if self.queue:
            self._deliver(tid)

    def poll_step(self, tid: int, where) -> None:
        """Before an event of thread `tid` (recorder lock held), when the pipes hold data or
        the reader left some: it was most likely written during that thread's step that is
        ending (`where`), or by a child process it was waiting for."""
        if not self.active:
            return
        # Waiting: if the reader is half-way through a read, what it read is queued when it
        # lets go.  Bounded: the reader may itself wait for the recorder's lock, which the
        # caller holds (the interpreter hook's first callback for a code object it runs).
        if self.lock.acquire(timeout=LOCK_WAIT):
            try:
                self._drain_locked(tid, where)
            finally:
                self.lock.release()
        else:
            # A loaded machine: the reader holds bytes that reached the pipes during the
            # step that ends here; they are recorded as its output once it queues them.
            self.owed = (tid, where)
        self._deliver(tid, where)

    def _drain_locked(self, tid, where=None) -> None:
        for entry in self.entries.values():
            r = entry.r
            if r is None or entry.eof or entry.broken:
                continue
            for _ in range(64):
                try:
                    data = os.read(r, READ_SIZE)
                except BlockingIOError:
                    break
                except OSError:
                    entry.eof = True
                    break
                if not data:
                    entry.eof = True
                    break
                try:
                    _write_all(entry.saved, data)
                except OSError:
                    # The destination is gone (a closed pipe): stop reading, so writers
                    # get the same EPIPE they would have got without us.
                    entry.broken = True
                    self._wake()
                    break
                text = entry.decoder.decode(data)
                if text:
                    self.queue.append((entry.stream, text, tid, where))
                    self.queued += len(text)

    def _deliver(self, tid=None, where=None) -> None:
        """Hand queued text to the capture, in order.  Text the reader thread took (no
        thread of its own) goes to the step it is owed to (see poll_step), else to `tid` at
        `where`, or, with no tid, to the thread that recorded last."""
        queue = self.queue
        while queue:
            if not self.emit_lock.acquire(blocking=False):
                return  # whoever holds it delivers ours too (it loops until the queue is empty)
            try:
                while queue:
                    stream, text, owner, owner_where = queue.popleft()
                    self.queued -= len(text)
                    if owner is None:
                        owner, owner_where = self.owed or (tid, where)
                    self.capture.mirror(stream, text, owner, owner_where)
                if self.owed is not None and not self.lock.locked():
                    self.owed = None  # the reader holds nothing more: what it owed is recorded
            finally:
                self.emit_lock.release()

    def _wake(self) -> None:
        try:
            os.write(self.wake_w, b"x")
        except (OSError, TypeError):
            pass

    def _run(self) -> None:
        self.reader_ident = _thread.get_ident()
        self.reader_native = _thread.get_native_id() if hasattr(_thread, "get_native_id") else None
        try:
            sys.settrace(None)
            poller = select.poll()
            registered = set()
            for entry in self.entries.values():
                if entry.r is not None and not entry.eof and not entry.broken:
                    poller.register(entry.r, select.POLLIN)
                    registered.add(entry.r)
            poller.register(self.wake_r, select.POLLIN)
            while not self.stopping and not self.pausing and registered:
                events = poller.poll()
                if self.stopping or self.pausing:
                    break
                with self.lock:
                    self._drain_locked(None)  # copied out now; recorded at the next event
                    for entry in self.entries.values():
                        if entry.r in registered and (entry.eof or entry.broken):
                            poller.unregister(entry.r)
                            registered.discard(entry.r)
                            if entry.broken:
                                os.close(entry.r)
                                entry.r = None
                    for fd, event in events:
                        if fd == self.wake_r:
                            try:
                                os.read(self.wake_r, 64)
                            except OSError:
                                pass
                        elif event & select.POLLNVAL and fd in registered:
                            poller.unregister(fd)
                            registered.discard(fd)
                if self.queued > QUEUE_LIMIT:
                    # Nothing records for a while (the program waits on a child that
                    # writes a lot): record it now rather than hold it in memory.
                    try:
                        self._deliver()
                    except BaseException:  # noqa: BLE001 - an abort raised for the program; not here
                        pass
        except BaseException:  # noqa: BLE001 - the reader must never take the process down
            pass
        finally:
            self.reader_done.release()


def _wait_until_gone(native_id) -> None:
    """Wait (briefly) until the OS has removed an exited thread: the interpreter counts the
    process's threads (/proc/self/stat on Linux) when it forks."""
    if native_id is None:
        return
    task = "/proc/self/task/%d" % native_id
    for _ in range(200):
        if not os.path.exists(task):
            return
        time.sleep(0.0005)


def _forward_until_eof(r: int, saved: int) -> None:
    """After recording: copy a pipe still held by another process until it is closed."""
    try:
        os.set_blocking(r, True)
        while True:
            data = os.read(r, READ_SIZE)
            if not data:
                break
            _write_all(saved, data)
    except OSError:
        pass
    finally:
        for fd in (r, saved):
            try:
                os.close(fd)
            except OSError:
                pass
