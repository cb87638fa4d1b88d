"""Images as uint8 where that is exact: what the data cache stores and the loader hands to the
device-side jitter (a quarter of float32's bytes)."""
from __future__ import annotations

from pathlib import Path

import numpy as np


class CacheUnsupported(ValueError):
    """An image that uint8 cannot hold exactly (16-bit or float data); the message names it."""


def to_uint8(arr: np.ndarray, source: Path | str) -> np.ndarray:
    """(H, W, C) float32 in [0, 1] -> uint8 that decodes back to exactly ``arr`` (as ``u8 / 255``),
    or CacheUnsupported naming ``source``."""
    u8 = np.rint(arr * 255.0).astype(np.uint8)
    if not np.array_equal(from_uint8(u8), arr):
        raise CacheUnsupported(f"{source} has more than 8 bits per channel (16-bit or float data); "
                               f"uint8 would change its values, so this split is read from the "
                               f"files and jittered on the CPU")
    return u8


def from_uint8(u8: np.ndarray) -> np.ndarray:
    """uint8 (H, W, C) -> float32 in [0, 1], bit-identical to what ``read_image`` returns."""
    return u8.astype(np.float32) / 255.0


__all__ = ["CacheUnsupported", "from_uint8", "to_uint8"]
