"""The C core's RecorderLock behaves as the threading.RLock it replaces: re-entrant for its
holder, a wait for every other thread (without the GIL, so the holder can finish its event),
and a wait that a signal handler can interrupt, so Ctrl-C still reaches a program whose thread
waits for the recorder."""
from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from rewind import accelerator

needs_c = pytest.mark.skipif(not accelerator.available() and os.environ.get("REWIND_REQUIRE_ACCELERATOR") != "1",
                             reason="the C accelerator is not built here (setup.py could not compile it)")


@pytest.fixture
def lock():
    from rewind.accelerator import _speedups
    return _speedups.RecorderLock()


@needs_c
def test_the_holder_takes_it_again_and_gives_it_back_as_often(lock):
    assert lock.acquire() is True
    assert lock.acquire() is True
    lock.release()
    assert lock._is_owned()
    lock.release()
    assert not lock._is_owned()
    with pytest.raises(RuntimeError, match="un-acquired"):
        lock.release()


@needs_c
def test_with_gives_it_back_when_the_body_raises(lock):
    with pytest.raises(KeyError), lock:
        assert lock._is_owned()
        raise KeyError("x")
    assert not lock._is_owned()


@needs_c
def test_another_thread_waits_for_the_holder_and_cannot_release_it(lock):
    got_it = threading.Event()
    errors: list[BaseException] = []

    def other() -> None:
        try:
            lock.release()
        except RuntimeError as exc:
            errors.append(exc)
        with lock:
            got_it.set()

    lock.acquire()
    thread = threading.Thread(target=other)
    thread.start()
    # The waiting thread does not hold the GIL: this thread keeps running Python code.
    deadline = time.monotonic() + 0.3
    spins = 0
    while time.monotonic() < deadline:
        spins += 1
    assert spins > 1000
    assert not got_it.is_set()
    lock.release()
    thread.join(10)
    assert got_it.is_set()
    assert len(errors) == 1 and "un-acquired" in str(errors[0])
    assert not lock._is_owned()


class _Interrupted(Exception):
    pass


@needs_c
@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs signal.setitimer")
def test_a_signal_handler_interrupts_the_wait(lock):
    holder_has_it = threading.Event()
    done = threading.Event()

    def holder() -> None:
        with lock:
            holder_has_it.set()
            done.wait(10)

    def on_alarm(signum, frame):
        raise _Interrupted

    thread = threading.Thread(target=holder)
    thread.start()
    holder_has_it.wait(10)
    previous = signal.signal(signal.SIGALRM, on_alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        started = time.monotonic()
        with pytest.raises(_Interrupted):
            lock.acquire()
        assert time.monotonic() - started < 5
        assert not lock._is_owned()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        done.set()
        thread.join(10)
    with lock:  # the holder gave it back; nothing is left held
        assert lock._is_owned()


@needs_c
def test_it_takes_no_arguments():
    from rewind.accelerator import _speedups
    with pytest.raises(TypeError):
        _speedups.RecorderLock(1)


@needs_c
def test_threads_that_give_up_the_gil_while_holding_it_never_overlap(lock):
    # Like the encoder's Python code between a take and a give: the GIL goes to other
    # threads (sleep(0)), which must wait until the holder gives the lock back.
    inside: list[int] = []
    overlaps: list[tuple[int, ...]] = []
    rounds = 300

    def worker(number: int) -> None:
        for _ in range(rounds):
            with lock:
                inside.append(number)
                time.sleep(0)
                with lock:  # re-entry while others wait
                    if len(inside) != 1:
                        overlaps.append(tuple(inside))
                inside.remove(number)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)
    assert overlaps == []
    assert inside == [] and not lock._is_owned()
