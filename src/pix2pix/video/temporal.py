"""Temporal stabilisation of per-frame outputs with the input frames' optical flow.

A method is a ``TemporalFilter`` (the protocol the stream takes) made by a factory in the
``TEMPORAL_METHODS`` table; the CLI's and the API's choices and help texts read that table, so a
new method is one entry there + its class.

``blend``: where the motion from frame t-1 to t is reliable (forward-backward consistent, and the
input frame itself is what the warped previous input predicts), the output becomes
``(1 - s) * new + s * warp(previous output)``; elsewhere (occlusions, new content, scene cuts) it is
the new frame. The previous output is the *stabilised* one, so this is a recursive filter along
motion paths: the carried part decays by ``s`` per frame, so no error is carried for long.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Protocol

import numpy as np

from .flow import Motion, warp

# An input pixel whose warped predecessor differs by more than this (in [0, 1]) is new content
# (lighting change, motion blur, a flow mistake) and takes the new output.
PHOTOMETRIC_TOLERANCE = 0.08
# Below this share of reliable pixels the motion is not trusted at all (a cut): start afresh.
MIN_RELIABLE = 0.3


class TemporalFilter(Protocol):
    """Stateful: called once per frame, in order, with the input frame (H, W, C_in), the network's
    output (H, W, C_out), both float32 in [0, 1], and the motion from the previous input frame
    (None for the first frame or when not computed); returns the output to keep (H, W, C_out)."""

    def __call__(self, inp: np.ndarray, out: np.ndarray, motion: Optional[Motion]) -> np.ndarray: ...


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


@dataclass(frozen=True)
class TemporalMethod:
    # strength in [0, 1) -> a fresh filter for one clip (None: the outputs are kept as they are).
    factory: Callable[[float], Optional[TemporalFilter]]
    description: str


TEMPORAL_METHODS: dict[str, TemporalMethod] = {
    "none": TemporalMethod(lambda strength: None, "each frame as the network made it"),
    "blend": TemporalMethod(TemporalBlend, "carry the warped previous output over where the "
                                           "input's optical flow is reliable"),
}


def describe_methods() -> str:
    """'none (...); blend (...)' for help texts and the API schema."""
    return "; ".join(f"{name} ({m.description})" for name, m in TEMPORAL_METHODS.items())


def make_temporal(method: str, strength: float) -> Optional[TemporalFilter]:
    """A fresh filter of ``method`` for one clip (None for "none")."""
    if method not in TEMPORAL_METHODS:
        raise ValueError(f"temporal method {method!r} is not one of {', '.join(TEMPORAL_METHODS)} "
                         f"(--temporal)")
    return TEMPORAL_METHODS[method].factory(strength)


__all__ = ["TemporalFilter", "TemporalBlend", "TemporalMethod", "TEMPORAL_METHODS", "make_temporal",
           "describe_methods"]
