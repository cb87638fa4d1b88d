"""Translate many files with decoding, inference and encoding overlapped.

Decoding and encoding run in small thread pools (PIL and numpy release the GIL for the heavy
parts), inference runs in the calling thread on batches of consecutive images of equal size, and
at most a few batches are in flight, so memory stays bounded on folders of any length.
"""
from __future__ import annotations

import logging
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

import numpy as np

from ..util.imageio import read_image, save_image
from .tiling import auto_tile
from .translator import Translator

log = logging.getLogger(__name__)

@dataclass
class PipelineStats:
    images: int = 0
    seconds: float = 0.0
    inference_seconds: float = 0.0
    tiled: int = 0

    @property
    def images_per_second(self) -> float:
        return self.images / max(self.seconds, 1e-9)


def _decoded(files: Sequence[Path], pool: ThreadPoolExecutor, ahead: int) -> Iterator[tuple[int, np.ndarray]]:
    """(index, image) in order, decoding up to ``ahead`` files in advance."""
    pending: deque[tuple[int, Future]] = deque()
    nxt = 0
    while nxt < len(files) or pending:
        while nxt < len(files) and len(pending) < ahead:
            pending.append((nxt, pool.submit(read_image, files[nxt])))
            nxt += 1
        i, fut = pending.popleft()
        yield i, fut.result()


def output_path(out_dir: Path, rel: Path, channels: int) -> Path:
    """PNG for 1 to 4 channels, .npy otherwise (any channel count survives)."""
    return out_dir / rel.with_suffix(".png" if channels <= 4 else ".npy")


def translate_files(translator: Translator, items: Sequence[tuple[Path, Path]], out_dir: str | Path, *,
                    batch_size: int = 4, tile: Optional[int] = None, overlap: Optional[int] = None,
                    workers: int = 2, on_image: Optional[Callable[[int], None]] = None,
                    on_tile: Optional[Callable[[int, int], None]] = None) -> PipelineStats:
    """Translate ``items`` (source path, output path relative to ``out_dir``); returns timings.

    ``tile`` 0 never tiles; None applies tiling.auto_tile.
    ``on_image(n)`` is called as images are written, ``on_tile(done, total)`` inside tiled images.
    """
    if batch_size < 1:
        raise ValueError(f"batch size {batch_size} must be at least 1")
    out_dir = Path(out_dir)
    stats = PipelineStats()
    t0 = time.perf_counter()
    files = [src for src, _ in items]
    with ThreadPoolExecutor(workers, thread_name_prefix="decode") as decode_pool, \
            ThreadPoolExecutor(workers, thread_name_prefix="encode") as encode_pool:
        writes: deque[Future] = deque()

        def write(i: int, result: np.ndarray) -> None:
            writes.append(encode_pool.submit(save_image, result,
                                             output_path(out_dir, items[i][1], result.shape[2])))
            # Bound the encode queue; .result() re-raises a failed write here, naming its file.
            while len(writes) > 2 * batch_size + workers:
                writes.popleft().result()
                if on_image:
                    on_image(1)

        def flush(batch: list[tuple[int, np.ndarray]]) -> None:
            t = time.perf_counter()
            results = translator.translate_batch([a for _, a in batch])
            stats.inference_seconds += time.perf_counter() - t
            for (i, _), result in zip(batch, results):
                write(i, result)

        batch: list[tuple[int, np.ndarray]] = []
        for i, arr in _decoded(files, decode_pool, ahead=2 * batch_size + workers):
            h, w = arr.shape[:2]
            use_tile = auto_tile(h, w, tile)
            if use_tile:
                if tile is None:
                    log.info("%s is %dx%d px: translating it in %d px tiles (--tile 0 to disable)",
                             files[i], w, h, use_tile)
                flush(batch)
                batch = []
                t = time.perf_counter()
                write(i, translator.translate_array(arr, tile=use_tile, overlap=overlap,
                                                    batch_size=batch_size, progress=on_tile))
                stats.inference_seconds += time.perf_counter() - t
                stats.tiled += 1
                continue
            if batch and batch[0][1].shape != arr.shape:
                flush(batch)
                batch = []
            batch.append((i, arr))
            if len(batch) == batch_size:
                flush(batch)
                batch = []
        if batch:
            flush(batch)
        while writes:
            writes.popleft().result()
            if on_image:
                on_image(1)
    stats.images = len(items)
    stats.seconds = time.perf_counter() - t0
    return stats


__all__ = ["translate_files", "PipelineStats", "output_path"]
