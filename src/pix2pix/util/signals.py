"""Ctrl-C and SIGTERM as a flag a long job checks between units of work (the training loop after
each step, so it saves first; a clip between frames, so what was encoded stays playable)."""
from __future__ import annotations

import contextlib
import signal
from typing import Iterator


@contextlib.contextmanager
def stop_on_signals() -> Iterator[list[int]]:
    """Turn SIGINT/SIGTERM into a flag (the list of signals received) that the caller checks.

    A flag, not an exception: Python raises KeyboardInterrupt wherever the main thread happens to
    be, also inside a ``queue.Queue`` call between taking its lock and releasing it, which can
    leave the lock held and the job's other threads waiting on it forever."""
    received: list[int] = []

    def handler(signum, _frame):
        if received:  # a second Ctrl-C means "now"
            raise KeyboardInterrupt
        received.append(signum)

    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread: leave signals alone
            pass
    try:
        yield received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
