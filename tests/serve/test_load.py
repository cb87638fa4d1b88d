"""Bounded load test: 8 concurrent clients x 25 requests against the real server."""
from __future__ import annotations

import threading
import time
from collections import Counter

import httpx
import numpy as np
import torch

from pix2pix import Translator

from .serve_support import decode, png_bytes, random_image

CLIENTS, REQUESTS = 8, 25


def test_concurrent_clients_each_get_their_own_correct_answer(server, model_dirs, capsys):
    translators = {n: Translator.from_pretrained(model_dirs[n], device="cpu") for n in ("edges", "labels")}
    # Every request a different image (two sizes), half of the clients on each model. The expected
    # answers are computed on one thread: on a busy 2-core machine, two OpenMP threads beside the
    # server process can spin-wait 50x slower.
    plan = {}
    threads_before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for c in range(CLIENTS):
            model = "edges" if c % 2 == 0 else "labels"
            for i in range(REQUESTS):
                size = (128, 128) if i % 3 else (96, 160)
                img = random_image(*size, seed=1000 * c + i)
                want = translators[model].translate_array(img / 255.0)
                plan[c, i] = (model, png_bytes(img), (np.clip(want, 0, 1) * 255 + 0.5).astype(np.uint8))
    finally:
        torch.set_num_threads(threads_before)

    latencies, errors, batches, mismatches = [], [], Counter(), []
    lock = threading.Lock()
    stop = threading.Event()
    health_ms = []

    def client(c: int) -> None:
        with httpx.Client(base_url=server, timeout=60) as http:
            for i in range(REQUESTS):
                model, data, want = plan[c, i]
                t = time.perf_counter()
                try:
                    resp = http.post("/api/translate", params={"model": model}, content=data)
                except httpx.HTTPError as e:
                    with lock:
                        errors.append(f"client {c} request {i}: {e!r}")
                    continue
                dt = time.perf_counter() - t
                with lock:
                    if resp.status_code != 200:
                        errors.append(f"client {c} request {i}: {resp.status_code} {resp.text[:200]}")
                        continue
                    latencies.append(dt)
                    batches[int(resp.headers["x-batch-size"])] += 1
                    got = decode(resp.content)
                    if got.shape != want.shape or np.abs(got.astype(int) - want).max() > 1:
                        mismatches.append((c, i, got.shape, want.shape))

    def poll_health() -> None:
        with httpx.Client(base_url=server, timeout=30) as http:
            for _ in range(2000):  # bounded; ends with the load
                if stop.is_set():
                    return
                t = time.perf_counter()
                assert http.get("/health").status_code == 200
                health_ms.append((time.perf_counter() - t) * 1000)
                time.sleep(0.05)

    poller = threading.Thread(target=poll_health)
    threads = [threading.Thread(target=client, args=(c,)) for c in range(CLIENTS)]
    t0 = time.perf_counter()
    poller.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    wall = time.perf_counter() - t0
    stop.set()
    poller.join(timeout=30)

    assert not errors, errors[:5]
    assert not mismatches, mismatches[:5]
    assert len(latencies) == CLIENTS * REQUESTS
    ms = np.array(latencies) * 1000
    p50, p95 = np.percentile(ms, 50), np.percentile(ms, 95)
    with capsys.disabled():
        print(f"\nload: {CLIENTS} clients x {REQUESTS} requests, 0 errors, {len(ms) / wall:.0f} req/s; "
              f"latency p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {ms.max():.1f} ms; "
              f"batch sizes {dict(sorted(batches.items()))}; /health during load p50 "
              f"{np.percentile(health_ms, 50):.1f} ms, max {max(health_ms):.1f} ms ({len(health_ms)} polls)")
    # The event loop stays free while the worker computes: /health never waits for a batch.
    assert health_ms and np.percentile(health_ms, 50) < 250
