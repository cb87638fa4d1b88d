"""Checkpoint writes off the training's critical path: snapshot in memory, write in a thread.

Writing a unet_256 checkpoint (weights, optimiser moments: ~1.2 GB) takes 1-2 s of CPU but 10-15 s
of wall-clock on a busy disk, all of it time the training would otherwise stall. The snapshot
(copies of the tensors) takes a fraction of a second; the thread then does the file I/O, which
releases the GIL, while training goes on. One write at a time: a new one first waits for the last.
The files themselves are written as before (temporary folder, then rename), so a crash mid-write
leaves the previous checkpoint as the latest.
"""
from __future__ import annotations

import contextlib
import copy
import logging
import threading
from typing import Any, Callable, Iterator, Optional

log = logging.getLogger(__name__)



def snapshot(obj: Any) -> Any:
    """A copy of a module or a (nested) state dict whose tensors training can no longer change
    (on CPU a module's state dict shares storage with the live weights)."""
    return copy.deepcopy(obj)


class BackgroundWriter:
    """Runs one write function at a time in a daemon thread; errors surface at the next call."""

    def __init__(self) -> None:
        self._thread: Optional[threading.Thread] = None
        self._error: Optional[BaseException] = None
        self._result: Any = None

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Wait for the previous write, then start ``fn(*args, **kwargs)`` in the background."""
        self.wait()

        def work() -> None:
            try:
                self._result = fn(*args, **kwargs)
            except BaseException as e:  # noqa: BLE001 - re-raised in the training thread
                self._error = e

        self._thread = threading.Thread(target=work, name="pix2pix-checkpoint", daemon=True)
        self._thread.start()

    def wait(self) -> Any:
        """Block until the current write is done; re-raise its error; return its result."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        return self._result

    @contextlib.contextmanager
    def joined(self) -> Iterator["BackgroundWriter"]:
        """On leaving (also by an exception), wait for the write in flight; an error it had is
        raised when the block itself succeeded, else logged (the block's error comes first)."""
        try:
            yield self
        except BaseException:
            try:
                self.wait()
            except BaseException as e:  # noqa: BLE001
                log.error("a background checkpoint write failed as well: %s", e)
            raise
        self.wait()
