"""Score a clip: its flicker (warping error along the input's optical flow) and, given a target
clip, per-frame L1 and PSNR against it. Streams: one frame of each clip in memory at a time."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from .flow import MotionTracker, WarpingError
from .io import Frame, VideoReader, read_sequence, sequence_files


def open_frames(path: str | Path) -> Iterator[Frame]:
    """Frames of a clip file or of a folder of numbered frames."""
    path = Path(path)
    if path.is_dir():
        yield from read_sequence(sequence_files(path))
        return
    with VideoReader(path) as reader:
        yield from reader.frames()


@dataclass
class ClipScore:
    frames: int = 0
    warping_error: WarpingError = field(default_factory=WarpingError)
    flow_warping_error: WarpingError = field(default_factory=WarpingError)  # of the flow source
    l1: list = field(default_factory=list)
    psnr: list = field(default_factory=list)

    def summary(self) -> dict:
        out = {"frames": self.frames, "warping_error": self.warping_error.mean,
               "flow_source_warping_error": self.flow_warping_error.mean}
        if self.l1:
            out.update(l1=float(np.mean(self.l1)), psnr=float(np.mean(self.psnr)),
                       worst_l1_frame=int(np.argmax(self.l1)), worst_l1=float(np.max(self.l1)))
        return out


def _unit(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float32) / 255.0 if img.dtype == np.uint8 else img.astype(np.float32)


def evaluate_clip(clip: str | Path, *, flow_from: Optional[str | Path] = None,
                  target: Optional[str | Path] = None) -> ClipScore:
    """Warping error of ``clip`` with flow from ``flow_from`` (the input it was made from; default
    the clip itself), and per-frame L1/PSNR (images in [0, 1]) against ``target`` when given.
    Clips must have equal frame counts and sizes; a mismatch names both files."""
    score = ClipScore()
    tracker = MotionTracker()
    sources = {"clip": open_frames(clip)}
    if flow_from is not None:
        sources["flow"] = open_frames(flow_from)
    if target is not None:
        sources["target"] = open_frames(target)
    prev = prev_flow = None
    names = {"clip": clip, "flow": flow_from, "target": target}
    while True:
        got = {k: next(it, None) for k, it in sources.items()}
        ended = [k for k, f in got.items() if f is None]
        if len(ended) == len(got):
            break
        if ended:
            raise ValueError(f"{names[ended[0]]} ends after {score.frames} frames but "
                             f"{names[next(k for k in got if got[k] is not None)]} goes on; "
                             f"the clips must have the same frames")
        cur = _unit(got["clip"].image)
        for k, f in got.items():
            if f.image.shape[:2] != cur.shape[:2]:
                raise ValueError(f"{names[k]} frames are {f.image.shape[1]}x{f.image.shape[0]} px but "
                                 f"{clip} frames are {cur.shape[1]}x{cur.shape[0]}")
        flow_img = _unit(got["flow"].image) if "flow" in got else cur
        motion = tracker(flow_img)
        score.warping_error.add(cur, prev, motion)
        if "flow" in got:
            score.flow_warping_error.add(flow_img, prev_flow, motion)
        if "target" in got:
            t = _unit(got["target"].image)
            if t.shape != cur.shape:
                raise ValueError(f"{target} has {t.shape[2]} channels, {clip} has {cur.shape[2]}")
            mse = float(((cur - t) ** 2).mean())
            score.l1.append(float(np.abs(cur - t).mean()))
            score.psnr.append(10 * math.log10(1.0 / max(mse, 1e-10)))
        prev, prev_flow = cur, flow_img
        score.frames += 1
    if score.frames == 0:
        raise ValueError(f"{clip} has no frames")
    return score


__all__ = ["evaluate_clip", "ClipScore", "open_frames"]
