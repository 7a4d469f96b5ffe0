"""IO capture: what the program writes to stdout/stderr and reads from stdin, recorded as
`Event` records (trace-format.md: kind 0 stdout, 2 stderr, 3 stdin) placed right after the
Step that produced them.

- proxies.py: the objects that replace `sys.stdout`, `sys.stderr`, `sys.stdin` while
  recording; everything passes through to the real stream first.
- core.py: `IoCapture`, which turns what the proxies see into events: per-thread pending
  text, split on newlines, flushes and step boundaries, attributed to the writing thread's
  current step.
- fdtee.py (`proxies+fd`, POSIX): file descriptors 1 and 2 become pipes that a reader
  thread copies to the original destination, so bytes written straight to the descriptors
  (os.write, C code, child processes) are recorded too, without duplicating what the
  proxies saw.

Session.start() calls `install()` after the interpreter hook; Session._detach() (and so
stop(), before the trace is closed) calls `IoCapture.uninstall()`.
"""
from __future__ import annotations

from .core import STREAMS, IoCapture, install, select_streams

__all__ = ["STREAMS", "IoCapture", "install", "select_streams"]
