"""The objects that stand in for `sys.stdout`, `sys.stderr` and `sys.stdin` while recording.

Every call goes to the real stream first, unchanged (same bytes, buffering, errors and
return value), and only then is what it wrote or read handed to the capture.  Everything
the proxies do not intercept (encoding, errors, fileno, isatty, reconfigure, mode, name,
newlines, line_buffering, seek...) is the real stream's own attribute.  `__class__`
reports the real stream's class, so `isinstance(sys.stdout, io.TextIOWrapper)` still
holds.  Once the capture is uninstalled a proxy the program kept is a plain pass-through.
"""
from __future__ import annotations

_BINARY = (bytes, bytearray, memoryview)


def _as_bytes(data) -> bytes:
    try:
        return memoryview(data).tobytes()
    except TypeError:
        return b""


class _Proxy:
    """Attribute access, special methods and identity tricks shared by all proxies."""

    def __init__(self, target, capture, stream: str, original):
        object.__setattr__(self, "_rw_target", target)      # where calls go
        object.__setattr__(self, "_rw_capture", capture)    # IoCapture, or None: pass-through
        object.__setattr__(self, "_rw_stream", stream)      # "stdout" | "stderr" | "stdin"
        object.__setattr__(self, "_rw_original", original)  # what sys held before
        object.__setattr__(self, "_rw_buffer", None)        # (real buffer, its proxy)

    # Everything else is the real stream's.
    def __getattr__(self, name):
        return getattr(self._rw_target, name)

    def __setattr__(self, name, value):
        if name.startswith("_rw_"):
            object.__setattr__(self, name, value)
        else:
            setattr(self._rw_target, name, value)

    def __delattr__(self, name):
        delattr(self._rw_target, name)

    @property
    def __class__(self):  # noqa: D105 - isinstance() checks see the real stream's class
        return type(self._rw_target)

    def __repr__(self):
        return repr(self._rw_target)

    def __dir__(self):
        return dir(self._rw_target)

    def __enter__(self):
        self._rw_target.__enter__()
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __iter__(self):
        iter(self._rw_target)  # the real stream's checks (closed, not readable)
        return self

    def __next__(self):
        data = next(self._rw_target)
        self._rw_read(data)
        return data

    # -- recording ---------------------------------------------------------------------------

    def _rw_live(self):
        capture = self._rw_capture
        if capture is not None and capture.active:
            return capture
        return None

    def _rw_read(self, data) -> None:
        capture = self._rw_live()
        if capture is None or not data:
            return
        if isinstance(data, str):
            capture.read_text(self._rw_stream, data)
        elif isinstance(data, _BINARY):
            capture.read_bytes(self._rw_stream, _as_bytes(data))
        elif isinstance(data, list):  # readlines()
            for item in data:
                self._rw_read(item)

    def _rw_wrote(self, data) -> None:
        capture = self._rw_live()
        if capture is None or not data:
            return
        if isinstance(data, str):
            capture.write_text(self._rw_stream, data)
        elif isinstance(data, _BINARY):
            capture.write_bytes(self._rw_stream, _as_bytes(data))

    def _rw_buffer_proxy(self, real):
        cached = self._rw_buffer
        if cached is not None and cached[0] is real:
            return cached[1]
        proxy = BufferProxy(real, self._rw_capture, self._rw_stream, real)
        self._rw_buffer = (real, proxy)
        return proxy

    def _rw_detach(self) -> None:
        """After uninstall: a pure pass-through to the stream sys held before."""
        self._rw_capture = None
        self._rw_target = self._rw_original

    # -- shared stream methods -------------------------------------------------------------

    def flush(self):
        result = self._rw_target.flush()
        capture = self._rw_live()
        if capture is not None:
            capture.flushed(self._rw_stream)
        return result

    def close(self):
        capture = self._rw_live()
        if capture is not None:
            capture.flushed(self._rw_stream, "close")
        result = self._rw_target.close()
        if self._rw_target is not self._rw_original:
            # fd mode: our own stream object stands in front of the original one; closing
            # closes both, as closing the original alone would have (its descriptor too).
            self._rw_original.close()
        return result

    @property
    def buffer(self):
        real = self._rw_target.buffer
        if self._rw_capture is None:
            return real
        return self._rw_buffer_proxy(real)

    def detach(self):
        real = self._rw_target.detach()
        if self._rw_live() is None:
            return real
        return self._rw_buffer_proxy(real)


class OutputProxy(_Proxy):
    """sys.stdout / sys.stderr."""

    def write(self, s):
        written = self._rw_target.write(s)
        capture = self._rw_capture
        if capture is not None and capture.active and s:
            if type(s) is str:
                capture.write_text(self._rw_stream, s)
            else:
                self._rw_wrote(s)
        return written

    def writelines(self, lines):
        if self._rw_live() is None:
            return self._rw_target.writelines(lines)
        if getattr(self._rw_target, "closed", False):
            raise ValueError("I/O operation on closed file.")
        for line in lines:
            self.write(line)
        return None


class InputProxy(_Proxy):
    """sys.stdin: what read(), readline(), readlines(), iteration and input() return."""

    def read(self, *args, **kwargs):
        data = self._rw_target.read(*args, **kwargs)
        self._rw_read(data)
        return data

    def readline(self, *args, **kwargs):
        data = self._rw_target.readline(*args, **kwargs)
        self._rw_read(data)
        return data

    def readlines(self, *args, **kwargs):
        data = self._rw_target.readlines(*args, **kwargs)
        self._rw_read(data)
        return data


class BufferProxy(_Proxy):
    """The binary layer (`sys.stdout.buffer`, `sys.stdin.buffer`)."""

    def write(self, b):
        written = self._rw_target.write(b)
        if self._rw_live() is not None:
            data = _as_bytes(b)
            if isinstance(written, int) and 0 <= written < len(data):
                data = data[:written]
            self._rw_wrote(data)
        return written

    def writelines(self, lines):
        if self._rw_live() is None:
            return self._rw_target.writelines(lines)
        if getattr(self._rw_target, "closed", False):
            raise ValueError("I/O operation on closed file.")
        for line in lines:
            self.write(line)
        return None

    def read(self, *args, **kwargs):
        data = self._rw_target.read(*args, **kwargs)
        self._rw_read(data)
        return data

    def read1(self, *args, **kwargs):
        data = self._rw_target.read1(*args, **kwargs)
        self._rw_read(data)
        return data

    def readline(self, *args, **kwargs):
        data = self._rw_target.readline(*args, **kwargs)
        self._rw_read(data)
        return data

    def readlines(self, *args, **kwargs):
        data = self._rw_target.readlines(*args, **kwargs)
        self._rw_read(data)
        return data

    def readinto(self, b):
        n = self._rw_target.readinto(b)
        if n and self._rw_live() is not None:
            self._rw_read(_as_bytes(b)[:n])
        return n

    def readinto1(self, b):
        n = self._rw_target.readinto1(b)
        if n and self._rw_live() is not None:
            self._rw_read(_as_bytes(b)[:n])
        return n

    @property
    def buffer(self):  # a binary stream has no .buffer
        return self._rw_target.buffer

    def detach(self):
        return self._rw_target.detach()
