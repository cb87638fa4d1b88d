"""Translate many files with decoding, inference and encoding overlapped.

Decoding and encoding run in small thread pools (PIL and numpy release the GIL for the heavy
parts), inference runs in the calling thread on batches of consecutive images of equal size, and
at most a few batches are in flight, so memory stays bounded on folders of any length.
"""
from __future__ import annotations

import logging
import os
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

import numpy as np

from ..util.imageio import ImageReadError, read_image, save_image
from ..util.signals import stop_on_signals
from .tiling import auto_tile
from .translator import Translator

log = logging.getLogger(__name__)


@dataclass
class PipelineStats:
    images: int = 0  # translated and written
    seconds: float = 0.0
    inference_seconds: float = 0.0
    tiled: int = 0
    interrupted: bool = False  # Ctrl-C or SIGTERM: the images written before it are complete
    # (file, reason) for each file that could not be read, in input order.
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def images_per_second(self) -> float:
        return self.images / max(self.seconds, 1e-9)


def _decoded(files: Sequence[Path], pool: ThreadPoolExecutor,
             ahead: int) -> Iterator[tuple[int, np.ndarray | ImageReadError]]:
    """(index, image or the ImageReadError that names why it is unreadable) in order, decoding up
    to ``ahead`` files in advance."""
    pending: deque[tuple[int, Future]] = deque()
    nxt = 0
    while nxt < len(files) or pending:
        while nxt < len(files) and len(pending) < ahead:
            pending.append((nxt, pool.submit(read_image, files[nxt])))
            nxt += 1
        i, fut = pending.popleft()
        try:
            yield i, fut.result()
        except ImageReadError as e:
            yield i, e


def output_path(out_dir: Path, rel: Path, channels: int) -> Path:
    """PNG for 1 to 4 channels, .npy otherwise (any channel count survives)."""
    return out_dir / rel.with_suffix(".png" if channels <= 4 else ".npy")


def check_outputs(items: Sequence[tuple[Path, Path]], out_dir: str | Path) -> None:
    """Refuse an ``out_dir`` that is a file, and outputs that would overwrite their own input
    (``--out`` the input folder, with PNG inputs): both before anything is translated."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--out {out_dir} is a file; give a folder (it is made if missing)")
    for src, rel in items:
        for channels in (3, 5):  # the PNG and the .npy an output may become
            dst = output_path(out_dir, rel, channels)
            # samefile, not a comparison of names: links and case-insensitive disks included.
            if dst.exists() and src.exists() and os.path.samefile(dst, src):
                raise ValueError(f"{src} would be overwritten by its own translation ({dst}); give "
                                 f"another --out folder")


def check_pipeline(batch_size: int, workers: int) -> None:
    """The folder pipeline's own options, named as the command line names them."""
    if batch_size < 1:
        raise ValueError(f"batch size {batch_size} must be at least 1 (--batch-size)")
    if workers < 1:
        raise ValueError(f"--workers {workers} must be at least 1 (threads for decoding and for encoding)")


def translate_files(translator: Translator, items: Sequence[tuple[Path, Path]], out_dir: str | Path, *,
                    batch_size: int = 4, tile: Optional[int] = None, overlap: Optional[int] = None,
                    workers: int = 2, on_image: Optional[Callable[[int], None]] = None,
                    on_tile: Optional[Callable[[int, int], None]] = None,
                    strict: bool = False) -> PipelineStats:
    """Translate ``items`` (source path, output path relative to ``out_dir``); returns timings.

    A file that cannot be read (truncated, corrupt, not an image) is skipped and listed in
    ``stats.skipped`` with the reason, and the others are translated; ``strict`` raises its
    ImageReadError instead, after writing the images before it.
    ``tile`` 0 never tiles; None applies tiling.auto_tile.
    ``on_image(n)`` is called as images are written or skipped, ``on_tile(done, total)`` inside
    tiled images. Ctrl-C or SIGTERM stops at the next image (inside a tiled one, at its next batch
    of tiles): the images translated before it are written, and ``stats.interrupted`` is set.
    An ``out_dir`` that is a file, or an output that would overwrite its input, is a ValueError
    before anything is translated (:func:`check_outputs`).
    """
    check_pipeline(batch_size, workers)
    check_outputs(items, out_dir)
    out_dir = Path(out_dir)
    stats = PipelineStats()
    t0 = time.perf_counter()
    files = [src for src, _ in items]
    with ThreadPoolExecutor(workers, thread_name_prefix="decode") as decode_pool, \
            ThreadPoolExecutor(workers, thread_name_prefix="encode") as encode_pool, \
            stop_on_signals() as signals:
        # Ctrl-C and SIGTERM as a flag checked between images: raised where it lands, it would
        # leave a half-written file (SIGTERM's default) or a traceback instead of the summary.
        writes: deque[Future] = deque()

        def written() -> None:
            # .result() re-raises a failed write here, naming its file.
            writes.popleft().result()
            stats.images += 1
            if on_image:
                on_image(1)

        def write(i: int, result: np.ndarray) -> None:
            writes.append(encode_pool.submit(save_image, result,
                                             output_path(out_dir, items[i][1], result.shape[2])))
            while len(writes) > 2 * batch_size + workers:  # bound the encode queue
                written()

        def flush(batch: list[tuple[int, np.ndarray]]) -> None:
            t = time.perf_counter()
            results = translator.translate_batch([a for _, a in batch])
            stats.inference_seconds += time.perf_counter() - t
            for (i, _), result in zip(batch, results):
                write(i, result)

        def tile_progress(done: int, total: int) -> None:
            if signals:  # a tiled image takes minutes: stop inside it (it is not written)
                raise KeyboardInterrupt
            if on_tile:
                on_tile(done, total)

        batch: list[tuple[int, np.ndarray]] = []
        try:
            for i, arr in _decoded(files, decode_pool, ahead=2 * batch_size + workers):
                if signals:
                    raise KeyboardInterrupt
                if isinstance(arr, ImageReadError):
                    if strict:
                        flush(batch)  # the images before it are written
                        batch = []
                        while writes:
                            written()
                        raise arr
                    reason = str(arr).removeprefix(f"{files[i]}: ")
                    log.warning("skipped %s: %s", files[i], reason)
                    stats.skipped.append((files[i], reason))
                    if on_image:
                        on_image(1)
                    continue
                h, w = arr.shape[:2]
                use_tile = auto_tile(h, w, tile, device=translator.device)
                if use_tile:
                    if tile is None:
                        log.info("%s is %dx%d px: translating it in %d px tiles (--tile 0 to disable)",
                                 files[i], w, h, use_tile)
                    flush(batch)
                    batch = []
                    t = time.perf_counter()
                    write(i, translator.translate_array(arr, tile=use_tile, overlap=overlap,
                                                        batch_size=batch_size, progress=tile_progress))
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
        except KeyboardInterrupt:
            # The images of the unfinished batch were not translated; the ones before are written.
            stats.interrupted = True
        while writes:
            written()
    stats.seconds = time.perf_counter() - t0
    return stats


__all__ = ["translate_files", "check_outputs", "check_pipeline", "PipelineStats", "output_path"]
