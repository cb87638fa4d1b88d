"""Every forward pass runs on one worker thread, fed by a queue; waiting requests are batched.

Why one thread: on a CPU, two forward passes at once only split the same cores between them (each
finishes later than if they had taken turns), and on a GPU they would contend for memory. Why
batching: a U-Net's inner layers are tiny, so a batch of 4 costs far less than 4 single passes on
a CPU (measured 2x per image for unet_256). The worker never waits to fill a batch: when it is
free it takes the oldest request plus every queued one of the same model and size (up to
``max_batch``), so an idle server adds no delay and a busy one gets faster per image.

The event loop only awaits an asyncio future; results come back through ``call_soon_threadsafe``,
each to the request that sent it.

Work that is not one image (a clip's frames, the tiles of a large image) runs its forward passes
here too, through :meth:`InferenceQueue.translator_for`: a Translator whose every forward pass is
a job of this queue, taking its turn between the batches of images. So however requests arrive,
one forward pass runs at a time, on this worker.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import copy
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional, TypeVar

import numpy as np
import torch

from .errors import ApiError
from ..inference.translator import Translator
from .models import ServedModel

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Result:
    """One translated image and how it was made."""

    array: np.ndarray        # (H, W, C_out[+alpha]) in [0, 1]
    queue_ms: float          # from submit to the start of its forward pass
    forward_ms: float        # the forward pass of its whole batch
    batch_size: int


@dataclass
class _Job:
    model: ServedModel
    x: torch.Tensor                     # (C_in, H, W) in [-1, 1]
    alpha: Optional[np.ndarray]
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    submitted: float = field(default_factory=time.perf_counter)

    @property
    def key(self) -> tuple:
        return (self.model.name, tuple(self.x.shape))


@dataclass
class _Call:
    """A forward pass asked for by a thread (a clip, a tiled image): run alone, never batched."""

    fn: Callable[[], Any]
    future: concurrent.futures.Future
    submitted: float = field(default_factory=time.perf_counter)

    @property
    def key(self) -> tuple:
        return ("call", id(self))


def _shutting_down() -> ApiError:
    return ApiError(503, "shutting_down", "the server is shutting down and takes no new translations",
                    headers={"Retry-After": "5"})


def _deliver(future: asyncio.Future, value: object, error: Optional[BaseException]) -> None:
    if future.done():  # the client went away and its request was cancelled
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


class InferenceQueue:
    """A bounded queue of translation requests served by one worker thread."""

    def __init__(self, *, max_batch: int = 4, max_pending: int = 64) -> None:
        if max_batch < 1 or max_pending < 1:
            raise ValueError(f"max_batch and max_pending must be >= 1, got {max_batch}, {max_pending}")
        self.max_batch, self.max_pending = max_batch, max_pending
        self._jobs: deque[_Job] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: Optional[threading.Thread] = None
        self._admitted = 0  # requests between admit() and their answer (reading, decoding, queued)
        self.batches = 0
        self.images = 0

    @property
    def pending(self) -> int:
        return len(self._jobs)

    @property
    def admitted(self) -> int:
        return self._admitted

    def start(self) -> None:
        """Start the worker; a second call while one runs does nothing (never two workers)."""
        with self._cond:
            if self._thread is not None and self._thread.is_alive():
                if self._stopping:
                    raise RuntimeError("the inference worker is still finishing after stop(); "
                                       "call start() again once stop() has returned")
                return
            self._stopping = False
            self._thread = threading.Thread(target=self._work, name="pix2pix-inference", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the queued requests, then end the worker; later translate() calls fail at once."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if not thread.is_alive():
                self._thread = None
            else:  # kept, so that start() cannot add a second worker beside this one
                log.warning("the inference worker did not finish within %.0f s", timeout)

    @contextlib.contextmanager
    def admit(self) -> Iterator[None]:
        """Hold one of ``max_pending`` places from before a request's body is read until it is
        answered; ApiError 503 at once when all are taken. So a flood of uploads costs at most
        ``max_pending`` bodies of memory: the others are refused before a byte is read."""
        with self._cond:
            if self._stopping:
                raise _shutting_down()
            if self._admitted >= self.max_pending:
                raise ApiError(503, "busy", f"{self._admitted} translations are already in progress; "
                                            f"retry in a moment", headers={"Retry-After": "1"})
            self._admitted += 1
        try:
            yield
        finally:
            with self._cond:
                self._admitted -= 1

    async def translate(self, model: ServedModel, x: torch.Tensor,
                        alpha: Optional[np.ndarray] = None) -> Result:
        """Translate one image prepared by ``model.translator.prepare`` ((C_in, H, W) in
        [-1, 1], and its alpha or None); ApiError 503 when ``max_pending`` are already waiting."""
        loop = asyncio.get_running_loop()
        job = _Job(model, x, alpha, loop.create_future(), loop)
        with self._cond:
            if self._stopping:  # the worker is gone or going: waiting would hang forever
                raise _shutting_down()
            if len(self._jobs) >= self.max_pending:
                raise ApiError(503, "busy", f"{len(self._jobs)} translations are already waiting; "
                                            f"retry in a moment", headers={"Retry-After": "1"})
            self._jobs.append(job)
            self._cond.notify()
        return await job.future

    def run(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` (one forward pass) on the worker between batches, and return its result;
        blocks the calling thread, which must not be the event loop's. ApiError 503 once stopping.
        Not bounded by ``max_pending``: its callers (one clip at a time, an admitted image's
        tiles) wait for one pass at a time."""
        call = _Call(fn, concurrent.futures.Future())
        with self._cond:
            if self._stopping:
                raise _shutting_down()
            self._jobs.append(call)  # type: ignore[arg-type]
            self._cond.notify()
        return call.future.result()

    def translator_for(self, model: ServedModel) -> Translator:
        """``model``'s Translator whose forward passes (``translate_tensor``, which its tiled,
        batch and video paths all call) run on this queue's worker; the rest of its work (decoding,
        tiling, blending, flow) stays on the calling thread."""
        translator = model.translator
        queued = copy.copy(translator)  # shares the generator and backend; only the entry differs

        def translate_tensor(x: torch.Tensor) -> torch.Tensor:
            return self.run(lambda: translator.translate_tensor(x))

        queued.translate_tensor = translate_tensor  # type: ignore[method-assign]
        return queued

    def _take_batch(self) -> Optional[list[_Job]]:
        """The oldest job and the queued jobs that can share its forward pass (same model and
        size), in arrival order; the others keep their places. None when stopping and empty."""
        with self._cond:
            while not self._jobs and not self._stopping:
                self._cond.wait()
            if not self._jobs:
                return None
            first = self._jobs.popleft()
            batch, rest = [first], deque()
            while self._jobs:
                job = self._jobs.popleft()
                (batch if len(batch) < self.max_batch and job.key == first.key else rest).append(job)
            self._jobs = rest
            return batch

    @staticmethod
    def _call(call: _Call) -> None:
        if not call.future.set_running_or_notify_cancel():
            return
        try:
            call.future.set_result(call.fn())
        except BaseException as e:  # noqa: BLE001 - raised again in the calling thread
            call.future.set_exception(e)

    def _work(self) -> None:
        while (batch := self._take_batch()) is not None:
            if isinstance(batch[0], _Call):
                self._call(batch[0])
                continue
            batch = [j for j in batch if not j.future.done()]  # skip requests already abandoned
            if not batch:
                continue
            translator = batch[0].model.translator
            start = time.perf_counter()
            try:
                y = translator.translate_tensor(torch.stack([j.x for j in batch]))
                outputs = [translator.finish(y[i], j.alpha) for i, j in enumerate(batch)]
                error: Optional[BaseException] = None
            except Exception as e:  # noqa: BLE001 - delivered to every waiting request, then logged
                log.exception("translation with %s failed", batch[0].model.name)
                outputs, error = [None] * len(batch), e
            forward_ms = (time.perf_counter() - start) * 1000
            self.batches += 1
            self.images += len(batch)
            for job, out in zip(batch, outputs):
                result = None if error else Result(out, (start - job.submitted) * 1000, forward_ms,
                                                   len(batch))
                job.loop.call_soon_threadsafe(_deliver, job.future, result, error)
