"""A thread is a ThreadState, not an OS ident: a thread that starts after another one ended
often gets the same ident, and its events must still carry its own thread number.

Before, the recorder noticed a switch by comparing idents.  IO capture's reader could write an
output event for the thread that had ended (its last step) just as the new one started; the
new thread's next event then got no ThreadStart and sat in the old thread's stream (the full
suite showed it once in a few hundred runs of tests/iocapture/test_io_fd.py under load).
"""
from __future__ import annotations

import json
import sys
import threading

import pytest

from rewind.filters.chain import build_chain
from rewind.recorder import Recorder


class MemorySink:
    def __init__(self):
        self.texts: list[str] = []

    def write_first(self, text: str) -> None:
        self.texts.append(text)

    def write(self, text: str) -> None:
        self.texts.append(text)

    def events(self) -> list:
        return json.loads("[" + "".join(self.texts) + "]")


@pytest.mark.parametrize("core", ["python", "c"])
def test_a_reused_os_ident_is_still_another_thread(core, monkeypatch):
    monkeypatch.setenv("REWIND_CORE", core)
    if core == "c":
        from rewind import accelerator
        if not accelerator.available():
            pytest.skip("the C accelerator is not built here")
    sink = MemorySink()
    rec = Recorder(sink, build_chain(), toplevel_path="prog.py", main_thread_id=threading.get_ident())
    reused = threading.get_ident() + 1  # an ident no live thread has: two threads share it in turn
    ended = rec.thread(reused)          # the first thread with that ident (it has ended)
    rec.io_event(ended, 0, "{}", "last words\n")
    later = rec._new_thread_state(reused)  # the next thread with the same ident
    assert later is not ended and later.tid == ended.tid
    rec.io_event(ended, 0, "{}", "late output of the ended thread\n")  # IO capture's reader
    frame = started_frame()
    rec.enter(later, rec.code_info(frame.f_code, frame), frame)  # the C core's own path with "c"
    rec.flush()
    events = sink.events()
    threads = [(name, value) for event in events for name, value in event.items()
               if name in ("ThreadStart", "ThreadSwitch")]
    assert threads == [("ThreadStart", 0), ("ThreadStart", ended.number), ("ThreadStart", later.number)]
    assert later.number != ended.number
    # ... written before the new thread's call (its entry Step, then the Call)
    assert [next(iter(event)) for event in events[-3:]] == ["ThreadStart", "Step", "Call"]


def started_frame():
    """A frame of a function of this file (which the builtin filter records), as a new thread's
    first call would bring."""
    def work():
        return sys._getframe()
    return work()
