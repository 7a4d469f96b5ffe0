"""Before each event in fd mode, the capture looks for bytes that reached descriptors 1/2
during the thread's step that is ending.  The reader thread moves those bytes from the pipe
into its queue at any moment, so whatever moment it moves them, the look must still find
them; otherwise they are recorded at the thread's next step (a CI run on 3.13 once showed a
child process's output on the line after the `subprocess.run` that ran it).  And when the reader
holds them longer than a step waits for it (a loaded machine), they still go to that step."""
from __future__ import annotations

import itertools

import pytest

from rewind.capture.core import IoCapture
from rewind.capture.fdtee import FdTee

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


# -- a reader that holds the bytes longer than a step waits for it ------------------------------

class _Capture:
    def __init__(self):
        self.mirrored = []

    def mirror(self, stream, text, tid, where):
        self.mirrored.append((text, tid, where))


def _tee() -> FdTee:
    tee = FdTee(_Capture(), ())
    tee.active = True  # no pipes: only the hand-over between the reader and the steps is used
    return tee


def test_bytes_the_reader_holds_past_the_wait_go_to_the_step_that_ended():
    tee = _tee()
    tee.lock.acquire()  # the reader, half-way through a read on a loaded machine
    tee.poll_step(7, "line 3")  # the step of line 3 ends: waits LOCK_WAIT, then goes on
    assert tee.capture.mirrored == []
    tee.queue.append(("stdout", "fd line\n", None, None))  # the reader queues what it read
    tee.queued += 8
    tee.lock.release()
    tee.poll_step(7, "line 4")  # the next step ends
    assert tee.capture.mirrored == [("fd line\n", 7, "line 3")]
    # owed once: what the reader takes later goes to the step it is found at
    tee.queue.append(("stdout", "later\n", None, None))
    tee.queued += 6
    tee.poll_step(7, "line 5")
    assert tee.capture.mirrored[-1] == ("later\n", 7, "line 5")
