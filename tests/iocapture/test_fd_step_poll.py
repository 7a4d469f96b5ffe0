"""Before each event in fd mode, the capture looks for bytes that reached descriptors 1/2
during the thread's step that is ending.  The reader thread moves those bytes from the pipe
into its queue at any moment, so whatever moment it moves them, the look must still find
them; otherwise they are recorded at the thread's next step (a CI run on 3.13 once showed a
child process's output on the line after the `subprocess.run` that ran it)."""
from __future__ import annotations

import itertools

import pytest

from rewind.capture.core import IoCapture

STAGES = ("pipe", "reader", "queue")  # where the bytes are: in the pipe, read by the reader
#                                       (which holds tee.lock until it has queued them), queued


class _Bytes:
    """The bytes in transit: they move one stage on after each look listed in `moves`."""

    def __init__(self, stage: str, moves: set[int]):
        self.stage = STAGES.index(stage)
        self.moves = moves
        self.looks = 0

    def look(self, stage: str) -> bool:
        here = self.stage == STAGES.index(stage)
        self.looks += 1
        if self.looks in self.moves and self.stage < len(STAGES) - 1:
            self.stage += 1
        return here


class _Lock:
    def __init__(self, data: _Bytes):
        self.data = data

    def locked(self) -> bool:
        return self.data.look("reader")


class _Queue:
    def __init__(self, data: _Bytes):
        self.data = data

    def __bool__(self) -> bool:
        return self.data.look("queue")

    __len__ = __bool__


class _Tee:
    paused = False

    def __init__(self, data: _Bytes):
        self.lock = _Lock(data)
        self.queue = _Queue(data)
        self.polled = []

    def poll_step(self, tid, where) -> None:
        self.polled.append((tid, where))


class _Thread:
    tid = 7
    stack = ()


def _capture_for(tee: _Tee, data: _Bytes) -> IoCapture:
    capture = IoCapture.__new__(IoCapture)
    capture.pending = {}
    capture.poll_fds = True
    capture.fdtee = tee
    capture._step_poll = lambda timeout: data.look("pipe")
    capture.step_where = {_Thread.tid: ("ts", "frame", 12)}
    return capture


MOVES = [set(c) for n in range(3) for c in itertools.combinations((1, 2), n)]


@pytest.mark.parametrize("moves", MOVES, ids=lambda m: "moves-after-" + ("-".join(map(str, sorted(m))) or "none"))
@pytest.mark.parametrize("stage", STAGES)
def test_bytes_in_transit_are_taken_as_output_of_the_step_that_ends(stage, moves):
    data = _Bytes(stage, moves)
    tee = _Tee(data)
    _capture_for(tee, data)._flush_before(_Thread())
    assert tee.polled == [(_Thread.tid, ("ts", "frame", 12))]


def test_nothing_in_transit_costs_no_poll():
    data = _Bytes("queue", set())
    data.stage = len(STAGES)  # delivered already: nowhere to be found
    tee = _Tee(data)
    _capture_for(tee, data)._flush_before(_Thread())
    assert tee.polled == []
