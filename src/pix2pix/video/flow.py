"""Optical flow between input frames, its reliability, and the temporal warping error.

Flow is always computed on the *input* frames (OpenCV's DIS; no weights, no downloads), so the same
motion judges the input clip and every output made from it. ``backward[y, x]`` points from pixel
(x, y) of frame t to where that point was in frame t-1: ``prev(x + backward) ~ cur(x)``.

The flow may be computed at a reduced *working size* (the frames shrunk with INTER_AREA so that
their long side is at most ``working_size``, DIS's patches kept as dense in full-resolution pixels),
and on a sample of the frame pairs (``every``): the consistency check then runs on the small grid.
The warping error stays a full-resolution measure: it compares the full-resolution frames at one
random pixel per working-grid cell, with the previous frame sampled at that pixel plus the flow
scaled back to full-resolution pixels; on the test clips it is within 2% of the error with
full-resolution flow at every pixel of every pair (tests/video/test_flicker_metric.py;
docs/video-metric.md). A temporal filter needs motion at every pixel: :meth:`Motion.full`
upsamples it (the stream gives the blend full-resolution flow instead).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Optional

import cv2
import numpy as np

from ..util.imageio import LUMA

# Forward-backward consistency thresholds of Sundaram et al. (ECCV 2010), as used by Ruder et al.
# (artistic style transfer for videos) and Lai et al. (the warping-error metric, ECCV 2018).
# Applied in working-size pixels: beta is the flow's precision at the resolution it was estimated.
CONSISTENCY_ALPHA = 0.01
CONSISTENCY_BETA = 0.5
# DIS "fast": 1.6 ms per 256 px flow on one core against 6.8 ms for "medium", and the warping error
# it gives on the camera-pan test clip is within 4% of the exact flow's (medium: 1%).
DIS_PRESET = cv2.DISOPTICAL_FLOW_PRESET_FAST
# Default long side of the flicker metric's flow (`--flicker-size`): the consistency check and the
# error run on a 4x (256²) or 16x (512²) smaller grid, DIS skips the full-size pyramid levels, and
# the value stays within 2% of the full-resolution metric on the test clips. None or 0: full size.
FLICKER_SIZE = 128
# Default share of frame pairs the flicker metric measures (`--flicker-every`): the first pair,
# then one at random in each run of k; the mean over a clip of any length is then 1/k of the work.
FLICKER_EVERY = 4


def to_gray(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 or [0, 1] float -> (H, W) uint8 luma, what DIS takes."""
    if image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)  # the same weights, 20x faster
    img = image.astype(np.float32) / (255.0 if image.dtype == np.uint8 else 1.0)
    gray = img[..., :3] @ LUMA if img.ndim == 3 and img.shape[2] >= 3 else img.reshape(img.shape[:2])
    return (np.clip(gray, 0, 1) * 255 + 0.5).astype(np.uint8)


def working_shape(h: int, w: int, working_size: Optional[int]) -> tuple[int, int]:
    """(h', w') of an (h, w) frame shrunk so that its long side is at most ``working_size``
    (aspect kept, at least 8 px a side; None or 0: (h, w) itself)."""
    if not working_size or max(h, w) <= working_size:
        return h, w
    k = working_size / max(h, w)
    return max(min(h, 8), round(h * k)), max(min(w, 8), round(w * k))


class FlowEstimator:
    """DIS optical flow (OpenCV), one instance per stream (it is not thread-safe).

    ``finest_scale``: the finest pyramid level DIS refines its patches on (the preset's own when
    None); "fast" stops at level 2 (a quarter of the frame's resolution)."""

    def __init__(self, preset: int = DIS_PRESET, finest_scale: Optional[int] = None) -> None:
        self.dis = cv2.DISOpticalFlow_create(preset)
        if finest_scale is not None:
            self.dis.setFinestScale(finest_scale)

    def __call__(self, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        """(H, W) uint8 ``src`` and ``dst`` -> (H, W, 2) float32 flow with dst(x + f) ~ src(x)."""
        return self.dis.calc(src, dst, None)


def finest_scale_for(preset: int, shrink: float) -> int:
    """DIS's finest level on frames shrunk ``shrink`` times that keeps the patches as dense, in
    full-resolution pixels, as ``preset`` on the full frames: the flow's precision is the patch
    grid's (on the 512² pan, "fast" on 128² frames at its own level 2 is 20% off the full-resolution
    metric; at level 0, 0.3%)."""
    own = cv2.DISOpticalFlow_create(preset).getFinestScale()
    return max(0, int(round(own - np.log2(shrink))))


@lru_cache(maxsize=8)
def grid(h: int, w: int) -> np.ndarray:
    """(h, w, 2) float32 pixel coordinates (x, y); cached (a stream asks for it every frame), so
    read-only."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    g = np.stack([xs, ys], axis=-1)
    g.setflags(write=False)
    return g


def warp(image: np.ndarray, flow: np.ndarray, base: Optional[np.ndarray] = None) -> np.ndarray:
    """Sample ``image`` (H, W[, C]) at x + flow(x): with the backward flow of frame t, frame t-1's
    content moved to where it is in frame t. Bilinear; border pixels repeat."""
    base = grid(*flow.shape[:2]) if base is None else base
    m = base + flow
    return cv2.remap(image, m[..., 0], m[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _sq(v: np.ndarray) -> np.ndarray:
    """|v|² of (H, W, 2) vectors; two slices, not ``(v ** 2).sum(-1)``, whose reduction over a
    2-long axis took a third of the metric's time (cProfile, benchmarks/video_metric_profile.py)."""
    return v[..., 0] * v[..., 0] + v[..., 1] * v[..., 1]


def consistent(backward: np.ndarray, forward: np.ndarray, base: Optional[np.ndarray] = None) -> np.ndarray:
    """(H, W) bool: pixels of frame t whose backward flow the forward flow of t-1 undoes (not
    occluded, not mismatched) and whose source lies inside frame t-1."""
    h, w = backward.shape[:2]
    base = grid(h, w) if base is None else base
    src = base + backward
    fwd_at = cv2.remap(forward, src[..., 0], src[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    diff = _sq(backward + fwd_at)
    bound = CONSISTENCY_ALPHA * (_sq(backward) + _sq(fwd_at)) + CONSISTENCY_BETA
    inside = (src[..., 0] >= 0) & (src[..., 0] <= w - 1) & (src[..., 1] >= 0) & (src[..., 1] <= h - 1)
    return (diff <= bound) & inside


@dataclass
class Motion:
    """The motion from frame t-1 to frame t: backward flow and its reliable pixels, at the working
    size (h', w') of frames of ``frame_shape`` (h, w); flow values in working-size pixels.
    ``pixels``: for a reduced motion, the (h', w') full-resolution rows and columns the warping
    error samples, one per working-grid cell (random within it, so that no pattern of the frames
    with the grid's period, such as a generator's checkerboard, biases the mean)."""
    backward: np.ndarray  # (h', w', 2) float32
    mask: np.ndarray      # (h', w') bool
    frame_shape: Optional[tuple[int, int]] = None  # (h, w) of the frames; None: the flow's own
    pixels: Optional[tuple[np.ndarray, np.ndarray]] = None  # (rows, cols), (h', w') float32 of integers

    @property
    def reliable(self) -> float:
        return float(self.mask.mean())

    @property
    def reduced(self) -> bool:
        return self.frame_shape is not None and tuple(self.frame_shape) != self.backward.shape[:2]

    def _scale(self) -> tuple[float, float]:
        (h, w), (hw, ww) = self.frame_shape, self.backward.shape[:2]
        return w / ww, h / hw

    def full(self) -> "Motion":
        """The same motion at every pixel of the frames: flow upsampled bilinearly and scaled to
        full-resolution pixels, mask by nearest neighbour. Itself when not reduced."""
        if not self.reduced:
            return self
        (h, w), (sx, sy) = self.frame_shape, self._scale()
        b = cv2.resize(self.backward, (w, h), interpolation=cv2.INTER_LINEAR)
        b *= np.array([sx, sy], np.float32)
        m = cv2.resize(self.mask.view(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)
        return Motion(b, m)

    def samples(self) -> tuple[Optional[tuple[np.ndarray, np.ndarray]], np.ndarray, np.ndarray]:
        """(the sampled (rows, cols) of frame t, None for all of them; the (h', w') float32 maps
        (x, y) where frame t-1 is sampled, in full-resolution pixels)."""
        hw, ww = self.backward.shape[:2]
        if not self.reduced:
            base = grid(hw, ww)
            return None, base[..., 0] + self.backward[..., 0], base[..., 1] + self.backward[..., 1]
        (h, w), (sx, sy) = self.frame_shape, self._scale()
        if self.pixels is None:  # the pixel nearest each cell's centre
            ys = np.minimum(np.floor((np.arange(hw) + 0.5) * sy), h - 1).astype(np.float32)
            xs = np.minimum(np.floor((np.arange(ww) + 0.5) * sx), w - 1).astype(np.float32)
            self.pixels = (np.ascontiguousarray(np.broadcast_to(ys[:, None], (hw, ww))),
                           np.ascontiguousarray(np.broadcast_to(xs[None, :], (hw, ww))))
        ys, xs = self.pixels
        return self.pixels, xs + self.backward[..., 0] * np.float32(sx), ys + self.backward[..., 1] * np.float32(sy)


def cell_pixels(frame_shape: tuple[int, int], working: tuple[int, int],
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One random full-resolution pixel (rows, cols; each (h', w') float32 holding integers, as
    cv2.remap takes them) in each cell of the working grid ``working`` (h', w') laid over frames
    of ``frame_shape`` (h, w)."""
    (h, w), (hw, ww) = frame_shape, working
    y0 = np.floor(np.arange(hw + 1) * (h / hw)).astype(np.float32)
    x0 = np.floor(np.arange(ww + 1) * (w / ww)).astype(np.float32)
    u = rng.random((2, hw, ww), dtype=np.float32)
    ys = np.floor(y0[:-1, None] + u[0] * (y0[1:] - y0[:-1])[:, None])
    xs = np.floor(x0[None, :-1] + u[1] * (x0[1:] - x0[:-1])[None, :])
    return np.minimum(ys, h - 1), np.minimum(xs, w - 1)


def check_sampling(working_size: Optional[int], every: int) -> None:
    """ValueError naming the option when the metric's flow size or pair sampling is impossible."""
    if working_size is not None and not 0 <= working_size != 1:
        raise ValueError(f"--flicker-size {working_size}: the flow's long side must be at least 2 px, "
                         f"or 0 for full resolution")
    if every < 1:
        raise ValueError(f"--flicker-every {every}: the metric measures one frame pair in K, K at least 1 "
                         f"(1: every pair)")


class MotionTracker:
    """Feed input frames in order; returns each frame's :class:`Motion` from the one before (None
    for the first frame, after a change of size, and for pairs not sampled).

    ``working_size``: the flow is computed on frames shrunk (INTER_AREA) so that their long side is
    at most this many pixels, with DIS's patches kept as dense in full-resolution pixels
    (:func:`finest_scale_for`); None or 0: full size. ``every``: the motion of one frame pair in
    each run of ``every`` is computed, the first pair always and then one at random in each run
    (random, not every k-th, so that no periodic pattern, such as the encoder's frame types,
    biases the mean); 1: every pair, as the temporal blend needs. ``seed`` makes the choices of
    pairs and pixels repeatable."""

    def __init__(self, preset: int = DIS_PRESET, working_size: Optional[int] = None, every: int = 1,
                 seed: int = 0) -> None:
        check_sampling(working_size, every)
        self.preset, self.working_size, self.every = preset, working_size, every
        self.rng = np.random.default_rng(seed)
        self.flow: Optional[FlowEstimator] = None
        self.flow_key: Optional[tuple] = None
        self.prev: Optional[np.ndarray] = None
        self.base: Optional[np.ndarray] = None
        self.frame_shape: Optional[tuple[int, int]] = None
        self.index = -1  # of the last frame fed
        self.target = 1  # the next pair measured is (target - 1, target)

    def __call__(self, image: np.ndarray) -> Optional[Motion]:
        self.index += 1
        shape = image.shape[:2]
        same = self.frame_shape == shape
        self.frame_shape = shape
        while self.target < self.index:  # a pair skipped (a change of size): on to the next run
            self._next_target()
        if self.index not in (self.target - 1, self.target):
            self.prev = None
            return None
        gray = to_gray(image)
        hw, ww = working_shape(*shape, self.working_size)
        if (hw, ww) != shape:
            gray = cv2.resize(gray, (ww, hw), interpolation=cv2.INTER_AREA)
        prev, self.prev = self.prev, gray
        if self.index != self.target:
            return None
        self._next_target()
        if prev is None or not same:
            return None
        key = (shape, (hw, ww))
        if self.flow_key != key:
            shrink = max(shape) / max(hw, ww)
            self.flow = FlowEstimator(self.preset, finest_scale_for(self.preset, shrink) if shrink > 1 else None)
            self.flow_key, self.base = key, grid(hw, ww)
        backward = self.flow(gray, prev)
        forward = self.flow(prev, gray)
        pixels = cell_pixels(shape, (hw, ww), self.rng) if (hw, ww) != shape else None
        return Motion(backward, consistent(backward, forward, self.base), shape, pixels)

    def _next_target(self) -> None:
        # Runs of `every` later frames: 1..every (its first, always), every+1..2 every, ...
        run = (self.target - 1) // self.every + 1
        self.target = 1 + run * self.every + (int(self.rng.integers(self.every)) if self.every > 1 else 0)


def warping_error(cur: np.ndarray, prev: np.ndarray, motion: Motion) -> Optional[float]:
    """mean |cur - warp(prev)| over the reliable pixels and all channels, images (H, W[, C]) in
    [0, 1] at full resolution; with a reduced ``motion``, over its sampled pixels (see
    :meth:`Motion.samples`). None when no pixel is reliable."""
    if not motion.mask.any():
        return None
    pixels, mx, my = motion.samples()
    warped = cv2.remap(prev.astype(np.float32, copy=False), mx, my, cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REPLICATE)
    at = cur.astype(np.float32, copy=False)
    if pixels is not None:  # a gather in OpenCV: numpy's fancy indexing took 3x as long
        at = cv2.remap(at, pixels[1], pixels[0], cv2.INTER_NEAREST)
    at = np.ascontiguousarray(at.reshape(warped.shape))  # (H, W, 1) frames come back (H, W)
    diff = cv2.absdiff(at, warped)
    channels = 1 if diff.ndim == 2 else diff.shape[2]
    if channels > 4:  # beyond what cv2.mean takes
        return float(diff[motion.mask].mean())
    # Every reliable pixel has all its channels: the mean over them is the mean of channel means.
    return float(np.mean(cv2.mean(diff, mask=np.ascontiguousarray(motion.mask).view(np.uint8))[:channels]))


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


def describe_flow(frame_shape: Optional[tuple[int, int]], working_size: Optional[int], every: int = 1) -> str:
    """How the metric measured frames of ``frame_shape`` (h, w), for the CLI and VideoStats."""
    pairs = "every frame pair" if every == 1 else f"one frame pair in {every}"
    if frame_shape is None:
        return pairs
    h, w = frame_shape
    hw, ww = working_shape(h, w, working_size)
    if (hw, ww) == (h, w):
        return f"{pairs}, flow at full resolution {w}x{h}"
    return (f"{pairs}, flow at {ww}x{hw}, error at full resolution on one random pixel in "
            f"{w * h / (ww * hw):.3g}")


__all__ = ["FlowEstimator", "MotionTracker", "Motion", "warp", "consistent", "warping_error",
           "WarpingError", "to_gray", "grid", "working_shape", "describe_flow", "finest_scale_for", "check_sampling", "cell_pixels",
           "FLICKER_SIZE", "FLICKER_EVERY"]
