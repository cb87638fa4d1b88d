"""The one pair of value-range conversions: images are [0, 1], the networks see [-1, 1].

Both work on torch tensors and numpy arrays of any shape; ``inplace=True`` reuses the input's
memory (for outputs the size of a whole, possibly huge, image).
"""
from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

Values = TypeVar("Values", torch.Tensor, np.ndarray)


def to_signed(x: Values, *, inplace: bool = False) -> Values:
    """[0, 1] -> [-1, 1] (image -> network input)."""
    if inplace:
        x *= 2.0
        x -= 1.0
        return x
    return x * 2.0 - 1.0


def to_unit(x: Values, *, inplace: bool = False) -> Values:
    """[-1, 1] -> [0, 1] (network output -> image); clamp afterwards where values may overshoot."""
    if inplace:
        x += 1.0
        x *= 0.5
        return x
    return (x + 1.0) * 0.5


def to_tensor(arr: np.ndarray) -> torch.Tensor:
    """(H, W, C) image in [0, 1] -> (C, H, W) network input in [-1, 1]."""
    return to_signed(torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1))))


# Float images may overshoot [0, 1] by rounding (a resize, a colour conversion); more than this is
# another range (0..255, [-1, 1]) and would give a silently wrong picture.
FLOAT_TOLERANCE = 1e-3


def image_array(arr: np.ndarray, source: str = "image array") -> np.ndarray:
    """The one rule for images handed over as arrays: (H, W[, C]) -> (H, W, C) float32 in [0, 1].

    uint8 is divided by 255 and uint16 by 65535 (they are what they say); bool is 0/1; a float
    array must already lie in [0, 1] (within FLOAT_TOLERANCE, then clipped), else ValueError
    naming its range and what to do. Other dtypes are refused.
    """
    arr = np.asarray(arr)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3:
        raise ValueError(f"{source} has shape {arr.shape}; pass (H, W) or (H, W, C)")
    if arr.shape[0] == 0 or arr.shape[1] == 0:  # else it fails deep in the network, naming neither
        raise ValueError(f"{source} is {arr.shape[1]}x{arr.shape[0]} px: it has no pixels to translate")
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / np.float32(255.0)
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / np.float32(65535.0)
    if arr.dtype == np.bool_:
        return arr.astype(np.float32)
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"{source} has dtype {arr.dtype}; pass uint8 (0..255), uint16 (0..65535) or "
                         f"float in [0, 1]")
    out = arr.astype(np.float32, copy=arr.dtype != np.float32)
    if out.size:
        lo, hi = float(out.min()), float(out.max())
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise ValueError(f"{source} holds NaN or infinite values; float images must lie in [0, 1]")
        if lo < -FLOAT_TOLERANCE or hi > 1.0 + FLOAT_TOLERANCE:
            hint = ("it looks like 0..255: pass it as uint8 (arr.astype(np.uint8)) or divide by 255"
                    if hi <= 255.0 + FLOAT_TOLERANCE and lo >= -FLOAT_TOLERANCE else
                    "it looks like [-1, 1]: map it with (arr + 1) / 2" if lo >= -1.0 - FLOAT_TOLERANCE
                    and hi <= 1.0 + FLOAT_TOLERANCE else "rescale it to [0, 1]")
            raise ValueError(f"{source} is float with values from {lo:.4g} to {hi:.4g}, but float "
                             f"images must lie in [0, 1]; {hint}")
        if lo < 0.0 or hi > 1.0:
            out = np.clip(out, 0.0, 1.0, out=out if out is not arr else None)
    return out
