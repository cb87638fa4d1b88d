"""Tiled translation of images too large for one forward pass, blended so no seam shows.

Tiles of ``tile`` x ``tile`` px overlap by at least ``overlap`` px. Each tile's output is weighted
by a window that is 1 in its middle and falls smoothly (raised cosine) towards every edge it shares
with a neighbour, and the weighted sum is divided by the summed weights. Near its own border a
tile's output is least reliable (the convolutions saw padding, not image), and that is exactly
where the neighbour's weight takes over, so the result changes continuously across tile borders.

Network memory is bounded by ``batch_size`` tiles whatever the image size; what grows with the
image is only the input, the output and one float32 weight per pixel.
"""
from __future__ import annotations

import logging
import math
from typing import Callable, Optional

import numpy as np

log = logging.getLogger(__name__)

TileFn = Callable[[np.ndarray], np.ndarray]
Progress = Callable[[int, int], None]

# The one rule for when a large image is tiled (folders, video, the server): above this many pixels
# unless told otherwise. The whole-image activations of unet_256 take about 0.8 KB per pixel
# (a 4096 x 4096 image needs ~13 GB).
AUTO_TILE_PIXELS = 4096 * 4096
AUTO_TILE = 1024


def auto_tile(height: int, width: int, tile: Optional[int] = None) -> int:
    """The tile size to use for an image of ``height`` x ``width`` px; 0 means whole.

    ``tile`` None applies the automatic rule (AUTO_TILE px tiles above AUTO_TILE_PIXELS); an
    explicit ``tile`` is kept, and 0 never tiles. An image no larger than the tile is never tiled.
    """
    use = tile if tile is not None else (AUTO_TILE if height * width > AUTO_TILE_PIXELS else 0)
    return use if use and (height > use or width > use) else 0


def tile_starts(length: int, tile: int, overlap: int, align: int = 1) -> list[int]:
    """Offsets of tiles of ``tile`` px covering [0, length), neighbours overlapping by >= ``overlap``.

    With ``align`` > 1 (the generator's size multiple) every offset is a multiple of it, so each
    tile sees the pixel grid in the same phase as the whole image does: a strided network's output
    depends on that phase. The last tile may then run past ``length``; the caller pads it.
    Without alignment (or when ``tile - overlap < align``) tiles are spread evenly, the last
    ending at ``length``.
    """
    if length <= tile:
        return [0]
    if align > 1 and tile - overlap >= align:
        stride = (tile - overlap) // align * align
        last = -(-(length - tile) // align) * align  # smallest aligned offset whose tile reaches the end
        n = -(-last // stride) + 1
        return [min(i * stride, last) for i in range(n)]
    n = math.ceil((length - tile) / (tile - overlap)) + 1
    return [round(i * (length - tile) / (n - 1)) for i in range(n)]


def edge_ramp(length: int, ramp: int, *, start: bool, end: bool) -> np.ndarray:
    """(length,) float32 weights: 1 inside, a raised-cosine rise over ``ramp`` px at each chosen edge.

    Never exactly 0, so every pixel keeps a positive total weight.
    """
    w = np.ones(length, np.float32)
    ramp = min(ramp, length // 2)
    if ramp > 0:
        rise = np.sin(0.5 * np.pi * (np.arange(ramp, dtype=np.float32) + 0.5) / ramp) ** 2
        if start:
            w[:ramp] = rise
        if end:
            w[length - ramp:] = rise[::-1]
    return w


def check_tiling(tile: int, overlap: int, multiple: int) -> None:
    """Raise ValueError with a suggestion if ``tile``/``overlap`` cannot work for this generator."""
    if tile <= 0 or tile % multiple:
        suggestion = max(multiple, round(tile / multiple) * multiple)
        raise ValueError(f"tile {tile} must be a positive multiple of {multiple} (the generator's "
                         f"size multiple); try --tile {suggestion}")
    if not 0 <= overlap <= tile // 2:
        raise ValueError(f"overlap {overlap} must be between 0 and half the tile ({tile // 2}); "
                         f"try --overlap {tile // 4}")


def _crop(image: np.ndarray, top: int, left: int, th: int, tw: int) -> np.ndarray:
    """image[top:top+th, left:left+tw], reflected past the bottom/right edge like the Translator pads."""
    part = image[top:top + th, left:left + tw]
    ph, pw = th - part.shape[0], tw - part.shape[1]
    if ph or pw:
        mode = "reflect" if ph < part.shape[0] and pw < part.shape[1] else "edge"
        part = np.pad(part, ((0, ph), (0, pw), (0, 0)), mode=mode)
    return part


def translate_tiled(image: np.ndarray, fn: TileFn, *, tile: int, overlap: int, out_channels: int,
                    align: int = 1, batch_size: int = 1, progress: Optional[Progress] = None) -> np.ndarray:
    """Translate (H, W, C_in) ``image`` tile by tile with ``fn``; returns (H, W, C_out) float32.

    ``fn`` maps a stack (B, th, tw, C_in) to (B, th, tw, C_out), values in whatever range the
    caller uses (the blend is linear). ``align``: see :func:`tile_starts`. ``progress(done, total)``
    is called after every batch.
    """
    h, w = image.shape[:2]
    th, tw = min(tile, h), min(tile, w)
    tops, lefts = tile_starts(h, th, overlap, align), tile_starts(w, tw, overlap, align)
    boxes = [(t, l) for t in tops for l in lefts]
    total = len(boxes)
    log.info("tiling %dx%d px into %d tile(s) of %dx%d px (overlap >= %d px)", w, h, total, tw, th, overlap)
    out = np.zeros((h, w, out_channels), np.float32)
    weight = np.zeros((h, w, 1), np.float32)
    # Ramps only towards neighbours: at the image border a tile's output is all there is.
    rows = {t: edge_ramp(th, overlap, start=t > 0, end=t + th < h) for t in tops}
    cols = {l: edge_ramp(tw, overlap, start=l > 0, end=l + tw < w) for l in lefts}
    done = 0
    for i in range(0, total, batch_size):
        batch = boxes[i:i + batch_size]
        result = fn(np.stack([_crop(image, t, l, th, tw) for t, l in batch]))
        if result.shape != (len(batch), th, tw, out_channels):
            raise AssertionError(f"tile function returned {result.shape}, expected "
                                 f"{(len(batch), th, tw, out_channels)}")
        for (t, l), y in zip(batch, result):
            vh, vw = min(th, h - t), min(tw, w - l)  # the part inside the image
            win = (rows[t][:vh, None] * cols[l][None, :vw])[:, :, None]
            out[t:t + vh, l:l + vw] += y[:vh, :vw] * win
            weight[t:t + vh, l:l + vw] += win
        done += len(batch)
        if progress is not None:
            progress(done, total)
    out /= weight
    return out


__all__ = ["AUTO_TILE", "AUTO_TILE_PIXELS", "auto_tile", "tile_starts", "edge_ramp", "check_tiling",
           "translate_tiled"]
