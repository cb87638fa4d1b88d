"""Optical flow between input frames, its reliability, and the temporal warping error.

Flow is always computed on the *input* frames (OpenCV's DIS; no weights, no downloads), so the same
motion judges the input clip and every output made from it. ``backward[y, x]`` points from pixel
(x, y) of frame t to where that point was in frame t-1: ``prev(x + backward) ~ cur(x)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import cv2
import numpy as np

from ..util.imageio import LUMA

# Forward-backward consistency thresholds of Sundaram et al. (ECCV 2010), as used by Ruder et al.
# (artistic style transfer for videos) and Lai et al. (the warping-error metric, ECCV 2018).
CONSISTENCY_ALPHA = 0.01
CONSISTENCY_BETA = 0.5
# DIS "fast": 1.6 ms per 256 px flow on one core against 6.8 ms for "medium", and the warping error
# it gives on the camera-pan test clip is within 4% of the exact flow's (medium: 1%).
DIS_PRESET = cv2.DISOPTICAL_FLOW_PRESET_FAST


def to_gray(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 or [0, 1] float -> (H, W) uint8 luma, what DIS takes."""
    if image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)  # the same weights, 20x faster
    img = image.astype(np.float32) / (255.0 if image.dtype == np.uint8 else 1.0)
    gray = img[..., :3] @ LUMA if img.ndim == 3 and img.shape[2] >= 3 else img.reshape(img.shape[:2])
    return (np.clip(gray, 0, 1) * 255 + 0.5).astype(np.uint8)


class FlowEstimator:
    """DIS optical flow (OpenCV), one instance per stream (it is not thread-safe)."""

    def __init__(self, preset: int = DIS_PRESET) -> None:
        self.dis = cv2.DISOpticalFlow_create(preset)

    def __call__(self, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        """(H, W) uint8 ``src`` and ``dst`` -> (H, W, 2) float32 flow with dst(x + f) ~ src(x)."""
        return self.dis.calc(src, dst, None)


def grid(h: int, w: int) -> np.ndarray:
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.stack([xs, ys], axis=-1)


def warp(image: np.ndarray, flow: np.ndarray, base: Optional[np.ndarray] = None) -> np.ndarray:
    """Sample ``image`` (H, W[, C]) at x + flow(x): with the backward flow of frame t, frame t-1's
    content moved to where it is in frame t. Bilinear; border pixels repeat."""
    base = grid(*flow.shape[:2]) if base is None else base
    m = base + flow
    return cv2.remap(image, m[..., 0], m[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def consistent(backward: np.ndarray, forward: np.ndarray, base: Optional[np.ndarray] = None) -> np.ndarray:
    """(H, W) bool: pixels of frame t whose backward flow the forward flow of t-1 undoes (not
    occluded, not mismatched) and whose source lies inside frame t-1."""
    h, w = backward.shape[:2]
    base = grid(h, w) if base is None else base
    fwd_at = warp(forward, backward, base)
    diff = ((backward + fwd_at) ** 2).sum(-1)
    bound = CONSISTENCY_ALPHA * ((backward ** 2).sum(-1) + (fwd_at ** 2).sum(-1)) + CONSISTENCY_BETA
    src = base + backward
    inside = (src[..., 0] >= 0) & (src[..., 0] <= w - 1) & (src[..., 1] >= 0) & (src[..., 1] <= h - 1)
    return (diff <= bound) & inside


@dataclass
class Motion:
    """The motion from frame t-1 to frame t: backward flow and its reliable pixels."""
    backward: np.ndarray  # (H, W, 2) float32
    mask: np.ndarray      # (H, W) bool

    @property
    def reliable(self) -> float:
        return float(self.mask.mean())


class MotionTracker:
    """Feed input frames in order; returns each frame's :class:`Motion` from the one before."""

    def __init__(self, preset: int = DIS_PRESET) -> None:
        self.flow = FlowEstimator(preset)
        self.prev: Optional[np.ndarray] = None
        self.base: Optional[np.ndarray] = None

    def __call__(self, image: np.ndarray) -> Optional[Motion]:
        gray = to_gray(image)
        prev, self.prev = self.prev, gray
        if prev is None or prev.shape != gray.shape:
            return None
        if self.base is None or self.base.shape[:2] != gray.shape:
            self.base = grid(*gray.shape)
        backward = self.flow(gray, prev)
        forward = self.flow(prev, gray)
        return Motion(backward, consistent(backward, forward, self.base))


def warping_error(cur: np.ndarray, prev: np.ndarray, motion: Motion) -> Optional[float]:
    """mean |cur - warp(prev)| over the reliable pixels and all channels, images in [0, 1];
    None when no pixel is reliable."""
    if not motion.mask.any():
        return None
    warped = warp(prev, motion.backward)
    diff = np.abs(cur.astype(np.float32) - warped.astype(np.float32))
    if diff.ndim == 3:
        diff = diff.mean(-1)
    return float(diff[motion.mask].mean())


@dataclass
class WarpingError:
    """Running mean of the warping error of one clip (frames 1..N-1)."""
    total: float = 0.0
    count: int = 0
    per_frame: list = field(default_factory=list)

    def add(self, cur: np.ndarray, prev: Optional[np.ndarray], motion: Optional[Motion]) -> None:
        if prev is None or motion is None:
            return
        e = warping_error(cur, prev, motion)
        if e is not None:
            self.total += e
            self.count += 1
            self.per_frame.append(e)

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else float("nan")

    def __repr__(self) -> str:
        # The per-frame values stay in .per_frame: printing a clip's stats must not dump them all.
        return f"WarpingError(mean={self.mean:.5g}, frames={self.count})"


__all__ = ["FlowEstimator", "MotionTracker", "Motion", "warp", "consistent", "warping_error",
           "WarpingError", "to_gray", "grid"]
