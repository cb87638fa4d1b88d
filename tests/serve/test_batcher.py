"""The inference worker: batching of waiting requests, answers routed to their own requests."""
from __future__ import annotations

import asyncio

import numpy as np
import pytest
import torch

from pix2pix import Translator
from pix2pix.serve import ApiError, InferenceQueue, ServedModel

from .serve_support import random_image


@pytest.fixture(scope="module")
def served(model_dirs) -> dict[str, ServedModel]:
    return {name: ServedModel(name, Translator.from_pretrained(path, device="cpu"), path)
            for name, path in model_dirs.items() if name != "gray"}


def _submit_all(queue: InferenceQueue, jobs) -> list:
    """Queue every job while the worker is stopped, then start it: what it finds waiting is
    deterministic, so the batches it forms are too."""

    async def main():
        tasks = []
        for model, image in jobs:
            x, alpha = model.translator.prepare(image)
            tasks.append(asyncio.create_task(queue.translate(model, x, alpha)))
        await asyncio.sleep(0)  # let every task enqueue
        assert queue.pending == len(jobs)
        queue.start()
        try:
            return await asyncio.gather(*tasks)
        finally:
            queue.stop()

    return asyncio.run(main())


def test_waiting_requests_are_batched_and_each_gets_its_own_answer(served):
    edges, labels = served["edges"], served["labels"]
    images = [random_image(128, 128, seed=i) / 255.0 for i in range(10)]
    odd = random_image(96, 200, seed=99) / 255.0
    # 7 for edges, one odd size among them, 3 for labels, interleaved.
    jobs = [(edges, images[0]), (labels, images[1]), (edges, images[2]), (edges, odd),
            (edges, images[3]), (labels, images[4]), (edges, images[5]), (edges, images[6]),
            (labels, images[7]), (edges, images[8])]
    queue = InferenceQueue(max_batch=4)
    results = _submit_all(queue, jobs)
    # Oldest first, with the queued requests of the same model and size: edges x4 (0, 2, 4, 6),
    # labels x3 (1, 5, 8), the odd size alone, then the last two edges (7, 9).
    assert [r.batch_size for r in results] == [4, 3, 4, 1, 4, 3, 4, 2, 3, 2]
    assert queue.batches == 4 and queue.images == 10
    for (model, image), result in zip(jobs, results):
        alone = model.translator.translate_array(image)
        assert result.array.shape == alone.shape
        # Same numbers as translating alone (batching must not mix images up or change them).
        assert np.abs(result.array - alone).max() < 1e-5
        assert result.forward_ms > 0 and result.queue_ms >= 0
    # And the answers really differ between inputs: a mix-up would be caught above.
    assert np.abs(results[0].array - results[2].array).mean() > 0.05


def test_full_queue_answers_503(served):
    queue = InferenceQueue(max_batch=2, max_pending=3)
    x, _ = served["edges"].translator.prepare(random_image(64, 64, 0) / 255.0)

    async def main():
        tasks = [asyncio.create_task(queue.translate(served["edges"], x)) for _ in range(3)]
        await asyncio.sleep(0)
        with pytest.raises(ApiError) as err:
            await queue.translate(served["edges"], x)
        assert err.value.status == 503 and err.value.headers["Retry-After"] == "1"
        queue.start()
        try:
            done = await asyncio.gather(*tasks)
        finally:
            queue.stop()
        return done

    done = asyncio.run(main())
    assert [r.batch_size for r in done] == [2, 2, 1]


def test_a_failing_batch_fails_only_its_requests(served):
    """An error inside the forward pass reaches the waiting requests; the worker goes on."""
    edges = served["edges"]
    queue = InferenceQueue()
    good, _ = edges.translator.prepare(random_image(64, 64, 0) / 255.0)
    bad = torch.zeros(5, 64, 64)  # 5 channels: translate_tensor refuses it

    async def main():
        queue.start()
        try:
            with pytest.raises(ValueError, match="expected a"):
                await queue.translate(edges, bad)
            return await queue.translate(edges, good)
        finally:
            queue.stop()

    assert asyncio.run(main()).array.shape == (64, 64, 3)
