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
