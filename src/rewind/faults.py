"""Test-only fault injection: ``CODETRACER_TEST_INJECT_FAILURE`` (contract section 5).

The variable is read once, when a session starts.  Unset (the normal case) nothing is
wrapped and recording pays nothing for this module.  Set, it makes one failure happen on
the path no real fault reaches easily:

=============  ===========================================================================
value          what fails
=============  ===========================================================================
``start``      ``Session.start``, before the target runs (an internal error)
``line``       the recorder's ``line`` on the Nth executed line, inside a hook callback
``write``      the trace sink's Nth ``write`` (``OSError`` EIO -> ``ERR_IO``)
``disk-full``  the sink's Nth ``write``: half of the text reaches the file, then
               ``OSError`` ENOSPC (-> ``ERR_DISK_FULL``), like a disk filling up mid-write
``finish``     ``Session.stop``, before the trace is finished (an internal error)
=============  ===========================================================================

``NAME:N`` makes the Nth hit fail (default 1): ``line:50``, ``write:2``.  The recorder
writes to the sink every few thousand events and at the end, so ``write``/``disk-full``
hit mid-run only in a program that runs long enough; otherwise they hit while finishing.
Only the session's own recorder and sink instances are wrapped.
"""
from __future__ import annotations

import errno
import os
from collections.abc import Mapping
from typing import NamedTuple

from . import errors

ENV_VAR = "CODETRACER_TEST_INJECT_FAILURE"
POINTS = ("start", "line", "write", "finish", "disk-full")


class InjectedFailure(RuntimeError):
    """What an injected ``start``/``line``/``finish`` failure raises (classified as internal)."""


class Fault(NamedTuple):
    point: str
    nth: int = 1  # the Nth hit fails


def from_env(environ: Mapping[str, str] | None = None) -> Fault | None:
    """The fault the environment asks for, or None; a bad value is a usage error."""
    value = (os.environ if environ is None else environ).get(ENV_VAR, "").strip()
    if not value:
        return None
    point, _, count = value.partition(":")
    point = point.strip().lower()
    nth = 1
    if count:
        try:
            nth = int(count)
        except ValueError:
            nth = 0
    if point not in POINTS or nth < 1:
        raise errors.usage(errors.ERR_INVALID_POLICY_VALUE,
                           "invalid value %r for %s" % (value, ENV_VAR),
                           name=ENV_VAR, value=repr(value),
                           allowed=", ".join(POINTS) + " (optionally NAME:N, N >= 1)")
    return Fault(point, nth)


def fire(fault: Fault | None, point: str) -> None:
    """Raise the injected failure if ``fault`` is at ``point`` (for ``start`` and ``finish``)."""
    if fault is not None and fault.point == point:
        raise InjectedFailure("injected failure (%s=%s)" % (ENV_VAR, point))


def arm_sink(fault: Fault | None, sink) -> None:
    """Wrap this sink's ``write`` for ``write``/``disk-full``; nothing otherwise."""
    if fault is None or fault.point not in ("write", "disk-full"):
        return
    original = sink.write
    hits = [0]

    def write(text: str) -> None:
        hits[0] += 1
        if hits[0] != fault.nth:
            original(text)
            return
        if fault.point == "write":
            raise OSError(errno.EIO, os.strerror(errno.EIO) + " (injected)")
        # A disk filling up: part of the text lands on disk, the rest fails.
        original(text[:len(text) // 2])
        sink.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC) + " (injected)")

    sink.write = write


def arm_recorder(fault: Fault | None, recorder) -> None:
    """Wrap this recorder's ``line`` for ``line``; nothing otherwise."""
    if fault is None or fault.point != "line":
        return
    original = recorder.line
    hits = [0]

    def line(ts, active, lineno):
        hits[0] += 1
        if hits[0] == fault.nth:
            raise InjectedFailure("injected failure (%s=line) at line %s" % (ENV_VAR, lineno))
        return original(ts, active, lineno)

    recorder.line = line
