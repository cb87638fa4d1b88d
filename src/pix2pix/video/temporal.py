"""Temporal stabilisation of per-frame outputs with the input frames' optical flow.

``blend``: where the motion from frame t-1 to t is reliable (forward-backward consistent, and the
input frame itself is what the warped previous input predicts), the output becomes
``(1 - s) * new + s * warp(previous output)``; elsewhere (occlusions, new content, scene cuts) it is
the new frame. The previous output is the *stabilised* one, so this is a recursive filter along
motion paths: the carried part decays by ``s`` per frame, so no error is carried for long.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .flow import Motion, warp

TEMPORAL_METHODS = ("none", "blend")
# An input pixel whose warped predecessor differs by more than this (in [0, 1]) is new content
# (lighting change, motion blur, a flow mistake) and takes the new output.
PHOTOMETRIC_TOLERANCE = 0.08
# Below this share of reliable pixels the motion is not trusted at all (a cut): start afresh.
MIN_RELIABLE = 0.3


class TemporalBlend:
    """Stateful: call once per frame, in order, with that frame's input, new output and motion."""

    def __init__(self, strength: float = 0.5) -> None:
        if not 0.0 <= strength < 1.0:
            raise ValueError(f"temporal strength {strength} must be in [0, 1) (--temporal-strength)")
        self.strength = strength
        self.prev_in: Optional[np.ndarray] = None
        self.prev_out: Optional[np.ndarray] = None

    def __call__(self, inp: np.ndarray, out: np.ndarray, motion: Optional[Motion]) -> np.ndarray:
        """(H, W, C_in) input and (H, W, C_out) output in [0, 1] -> stabilised (H, W, C_out)."""
        result = out
        if (motion is not None and self.prev_out is not None and motion.reliable >= MIN_RELIABLE
                and self.prev_out.shape == out.shape):
            predicted = warp(self.prev_in, motion.backward)
            photometric = np.abs(inp - predicted)
            photometric = photometric.mean(-1) if photometric.ndim == 3 else photometric
            weight = (motion.mask & (photometric < PHOTOMETRIC_TOLERANCE)).astype(np.float32)
            weight *= self.strength
            carried = warp(self.prev_out, motion.backward)
            if carried.ndim == 2:
                carried = carried[..., None]
            result = out + weight[..., None] * (carried - out)
        self.prev_in, self.prev_out = inp, result
        return result


def make_temporal(method: str, strength: float) -> Optional[TemporalBlend]:
    if method == "none":
        return None
    if method == "blend":
        return TemporalBlend(strength)
    raise ValueError(f"temporal method {method!r} is not one of {', '.join(TEMPORAL_METHODS)} (--temporal)")


__all__ = ["TemporalBlend", "make_temporal", "TEMPORAL_METHODS"]
