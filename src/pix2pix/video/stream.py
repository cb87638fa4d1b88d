"""Translate a clip as a stream: decode ahead, translate in batches, stabilise, encode behind.

The shape of :mod:`pix2pix.inference.folders` (folder translation) for one ordered stream: a decode thread
reads frames ahead and computes their optical flow (OpenCV releases the GIL), the calling thread
runs the network on batches of consecutive frames and the (sequential) temporal filter and metric,
and an encode thread writes behind. Every queue is bounded, so memory is the same for 100 frames
or 100,000. Ctrl-C or a broken frame stops the stream cleanly: what was translated is encoded and
the file is closed, so it plays.
"""
from __future__ import annotations

import logging
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

import cv2
import numpy as np

from ..inference.tiling import auto_tile
from ..util.ranges import image_array
from ..util.signals import stop_on_signals
from .flow import (FLICKER_EVERY, FLICKER_SIZE, Motion, MotionTracker, WarpingError, check_sampling,
                   describe_flow)
from .io import Frame, VideoError, VideoReader, VideoWriter, check_frame_size, read_sequence, sequence_files
from .temporal import TemporalFilter

log = logging.getLogger(__name__)
_END = object()


@dataclass
class VideoStats:
    frames: int = 0
    total: Optional[int] = None
    seconds: float = 0.0
    inference_seconds: float = 0.0
    interrupted: bool = False
    encoder: str = ""
    output_error: WarpingError = field(default_factory=WarpingError)
    input_error: WarpingError = field(default_factory=WarpingError)
    # How the flicker metric sampled the clip (see pix2pix.video.flow): the flow's long side
    # (0: full resolution), one frame pair in `flicker_every`, and both in words.
    flicker_size: int = 0
    flicker_every: int = 1
    flicker_method: str = ""

    @property
    def fps(self) -> float:
        return self.frames / max(self.seconds, 1e-9)


class _Ahead:
    """Run ``produce(put)`` in a thread feeding a bounded queue; iterate to get its items in order.
    An exception in the thread is re-raised here after the items before it."""

    def __init__(self, produce: Callable[[Callable[[object], bool]], None], size: int, name: str) -> None:
        self.q: queue.Queue = queue.Queue(size)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(produce,), name=name, daemon=True)
        self.thread.start()

    def _put(self, item: object) -> bool:
        while not self.stop.is_set():
            try:
                self.q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, produce) -> None:
        try:
            produce(self._put)
            self._put(_END)
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            self._put(e)

    def __iter__(self) -> Iterator:
        while True:
            item = self.q.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


def translate_frames(translator, frames: Iterable[Frame], *, batch_size: int = 4,
                     flicker_size: Optional[int] = FLICKER_SIZE, flicker_every: int = FLICKER_EVERY,
                     tile: Optional[int] = None, overlap: Optional[int] = None,
                     temporal: Optional[TemporalFilter] = None, measure: bool = True,
                     stats: Optional[VideoStats] = None) -> Iterator[tuple[Frame, np.ndarray]]:
    """(input frame, output (H, W, C_out) float32 in [0, 1]) for each frame, in order, streaming.

    ``frames`` yields :class:`Frame` s ((H, W, 3) uint8) or (H, W[, C]) arrays: uint8, uint16 or
    float in [0, 1] (a float frame outside [0, 1] is a ValueError). With ``measure`` the
    warping error of the outputs and of the inputs accumulate in ``stats``; ``temporal`` filters
    the outputs along the input's optical flow. ``tile`` as for images (None: the automatic rule,
    :func:`pix2pix.inference.tiling.auto_tile`).
    The metric's flow has its long side at most ``flicker_size`` px (None or 0: full resolution)
    and covers one frame pair in ``flicker_every``; with ``temporal`` the flow is the blend's
    (full resolution, every pair). How it was measured: ``stats.flicker_method``.
    """
    if batch_size < 1:
        raise ValueError(f"batch size {batch_size} must be at least 1 (--batch-size)")
    stats = stats if stats is not None else VideoStats()
    need_motion = measure or temporal is not None
    # The blend needs motion at every pixel of every frame; the metric alone samples it.
    flow_size, flow_every = (0, 1) if temporal is not None else (flicker_size or 0, flicker_every)
    stats.flicker_size, stats.flicker_every = flow_size, flow_every
    tracker = MotionTracker(working_size=flow_size, every=flow_every) if need_motion else None

    def produce(put) -> None:
        size = None
        for i, f in enumerate(frames):
            if not isinstance(f, Frame):
                f = Frame(i, np.asarray(f), None, None)
            img = f.image
            arr = image_array(img, f"frame {f.index}")
            size = check_frame_size(size, arr.shape, f"frame {f.index}")
            motion = tracker(img if img.dtype == np.uint8 else arr) if tracker is not None else None
            if not put((f, arr, motion)):
                return

    # OpenCV's own thread pool (flow, warps) would fight the network for the cores it already
    # uses: one thread, overlapped with inference, cost 8-18% more CPU than inference alone
    # against 34-36% with OpenCV's default pool (256 px frames, 2 cores). Restored afterwards.
    cv_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    ahead = _Ahead(produce, 2 * batch_size + 2, "video-decode")
    prev_in = prev_out = None
    try:
        batch: list[tuple[Frame, np.ndarray, Optional[Motion]]] = []

        def finish(results: list[np.ndarray]) -> Iterator[tuple[Frame, np.ndarray]]:
            nonlocal prev_in, prev_out
            for (f, arr, motion), out in zip(batch, results):
                if temporal is not None:
                    out = temporal(arr, out, motion)
                if measure:
                    if not stats.flicker_method:
                        stats.flicker_method = describe_flow(arr.shape[:2], flow_size, flow_every)
                    stats.output_error.add(out, prev_out, motion)
                    stats.input_error.add(arr, prev_in, motion)
                prev_in, prev_out = arr, out
                yield f, out

        def run(items) -> list[np.ndarray]:
            t = time.perf_counter()
            h, w = items[0][1].shape[:2]
            use_tile = auto_tile(h, w, tile, device=translator.device)
            if use_tile:
                results = [translator.translate_array(a, tile=use_tile, overlap=overlap,
                                                      batch_size=batch_size) for _, a, _ in items]
            else:
                results = translator.translate_batch([a for _, a, _ in items])
            stats.inference_seconds += time.perf_counter() - t
            return results

        broken: Optional[Exception] = None
        items = iter(ahead)
        while True:
            try:
                item = next(items)
            except StopIteration:
                break
            except Exception as e:  # noqa: BLE001 - a broken frame (a clip's, a sequence's unreadable
                # file, one of another size): the ones decoded before it still go out, then it is raised
                broken = e
                break
            batch.append(item)
            if len(batch) == batch_size:
                yield from finish(run(batch))
                batch = []
        if batch:
            yield from finish(run(batch))
        if broken is not None:
            raise broken
    finally:
        ahead.close()
        cv2.setNumThreads(cv_threads)


def _to_uint8_rgb(out: np.ndarray) -> np.ndarray:
    img = (np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8)
    if img.ndim == 2 or img.shape[2] == 1:
        img = np.repeat(img.reshape(img.shape[0], img.shape[1], 1), 3, axis=2)
    return img[:, :, :3]


def _stream(translator, frames: Iterable[Frame], write: Callable[[Frame, np.ndarray], None],
            stats: VideoStats, on_frame: Optional[Callable[[int], None]], **kw) -> Optional[BaseException]:
    """Translate ``frames`` and ``write`` each result from an encode thread; returns the error that
    stopped the stream early (KeyboardInterrupt or a VideoError), after everything before it was
    written."""
    out_channels = translator.out_channels
    if out_channels not in (1, 3):
        raise ValueError(f"the model makes {out_channels}-channel images; a clip takes 1 or 3")
    t0 = time.perf_counter()
    encode: queue.Queue = queue.Queue(2 * kw.get("batch_size", 4) + 2)
    failed: list[BaseException] = []

    def encoder() -> None:
        while True:
            item = encode.get()
            if item is _END:
                return
            if failed:
                continue  # drain so the producer never blocks
            try:
                write(*item)
                stats.frames += 1
                if on_frame:
                    on_frame(1)
            except BaseException as e:  # noqa: BLE001 - re-raised in the calling thread
                failed.append(e)

    thread = threading.Thread(target=encoder, name="video-encode", daemon=True)
    thread.start()
    stopped: Optional[BaseException] = None
    try:
        # Ctrl-C and SIGTERM as a flag checked between frames (why not where they land: the helper).
        with stop_on_signals() as signals:
            for f, out in translate_frames(translator, frames, stats=stats, **kw):
                if failed:
                    break
                if signals:
                    raise KeyboardInterrupt
                encode.put((f, out))
    except (KeyboardInterrupt, VideoError) as e:
        stopped = e
        stats.interrupted = True
    finally:
        encode.put(_END)
        thread.join()
        stats.seconds = time.perf_counter() - t0
    if failed:
        raise failed[0]
    return stopped


def check_destination(src: str | Path, dst: str | Path) -> None:
    """Refuse to write a clip or frame folder over its own input (``--out`` the input's folder)."""
    if Path(dst).exists() and Path(src).exists() and os.path.samefile(src, dst):
        raise VideoError(f"{dst} is the input {src} itself: its translation would overwrite it; give "
                         f"another --out folder")


def _frames_kept(error: Exception, frames: int, where: Path) -> Exception:
    """``error`` named as it was, plus where the work already done is (when there is some)."""
    if frames and len(error.args) == 1 and isinstance(error.args[0], str):
        error.args = (f"{error.args[0]}; the {frames} frames before it are in {where}",)
    return error


def translate_video(translator, src: str | Path, dst: str | Path, *, codec: Optional[str] = None,
                    crf: Optional[int] = None, bitrate: Optional[int] = None, batch_size: int = 4,
                    tile: Optional[int] = None, overlap: Optional[int] = None,
                    temporal: Optional[TemporalFilter] = None, measure: bool = True, audio: bool = True,
                    on_start: Optional[Callable[[VideoStats], None]] = None,
                    on_frame: Optional[Callable[[int], None]] = None,
                    flicker_size: Optional[int] = FLICKER_SIZE, flicker_every: int = FLICKER_EVERY) -> VideoStats:
    """Translate clip ``src`` into ``dst`` (same frame count, timestamps, size, rotation; audio
    copied). Ctrl-C returns stats with ``interrupted`` set and a playable partial ``dst``; a broken
    frame raises UndecodableFrame after the frames before it were encoded and ``dst`` closed."""
    check_sampling(flicker_size, flicker_every)  # before any file is made
    check_destination(src, dst)
    stats = VideoStats()
    with VideoReader(src) as reader:
        writer = VideoWriter(dst, reader.info, codec=codec, crf=crf, bitrate=bitrate, audio=audio)
        stats.total, stats.encoder = reader.info.frames, writer.codec
        if on_start:
            on_start(stats)
        last = {"time": 0.0}

        def write(f: Frame, out: np.ndarray) -> None:
            writer.write(_to_uint8_rgb(out), f.pts)
            last["time"] = float(f.time or 0.0) + 1.0 / reader.info.fps

        try:
            stopped = _stream(translator, reader.frames(), write, stats, on_frame, batch_size=batch_size,
                              tile=tile, overlap=overlap, temporal=temporal, measure=measure,
                              flicker_size=flicker_size, flicker_every=flicker_every)
        finally:
            writer.close(audio_until=last["time"] if stats.interrupted else None)
    if isinstance(stopped, VideoError):
        raise _frames_kept(stopped, stats.frames, Path(dst))
    return stats


def translate_sequence(translator, folder: str | Path, out_dir: str | Path, *, batch_size: int = 4,
                       tile: Optional[int] = None, overlap: Optional[int] = None,
                       temporal: Optional[TemporalFilter] = None, measure: bool = True,
                       on_start: Optional[Callable[[VideoStats], None]] = None,
                       on_frame: Optional[Callable[[int], None]] = None,
                       flicker_size: Optional[int] = FLICKER_SIZE, flicker_every: int = FLICKER_EVERY) -> VideoStats:
    """Translate a folder of numbered frames in name order into ``out_dir`` (same names, PNG).
    A frame that cannot be read, or of another size, raises after the frames before it were
    written."""
    from ..util.imageio import save_image

    check_sampling(flicker_size, flicker_every)
    check_destination(folder, out_dir)
    files = sequence_files(folder)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stats = VideoStats(total=len(files), encoder="png")
    if on_start:
        on_start(stats)

    def write(f: Frame, out: np.ndarray) -> None:
        save_image(out, out_dir / Path(files[f.index].name).with_suffix(".png"))

    try:
        stopped = _stream(translator, read_sequence(files), write, stats, on_frame, batch_size=batch_size,
                          tile=tile, overlap=overlap, temporal=temporal, measure=measure,
                          flicker_size=flicker_size, flicker_every=flicker_every)
    except ValueError as e:  # an unreadable frame, or one of another size
        stopped = e
    if stopped is not None and not isinstance(stopped, KeyboardInterrupt):
        raise _frames_kept(stopped, stats.frames, out_dir)
    return stats


__all__ = ["translate_video", "translate_sequence", "translate_frames", "VideoStats", "check_destination"]
