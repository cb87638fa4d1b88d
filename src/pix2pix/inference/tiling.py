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
from typing import TYPE_CHECKING, Callable, Optional

import numpy as np

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

TileFn = Callable[[np.ndarray], np.ndarray]
Progress = Callable[[int, int], None]

# The one rule for when a large image is tiled (folders, video, the server), unless told otherwise:
# when translating it whole would need more memory than the device's budget.
#
# WHOLE_BYTES_PER_PIXEL: peak memory of one whole-image translation per input pixel, measured on
# CPU in fp32, batch 1, with `python benchmarks/tiling.py --memory-only` (peak RSS over the
# resident size before the call; memory does not depend on load). Measured 2026-12-05:
# unet_256 0.52 KB/px at 512x512, 0.47 at 1 and 3 Mpx, 0.50 at 6 Mpx (3000x2000: 2.9 GB);
# unet_128 0.50 KB/px at 1 Mpx and 0.45 at 3 Mpx. The first, full-resolution layers dominate, so
# every U-Net depth needs about the same (the small students less). Rounded up to 512 B/px so
# the estimate errs towards tiling.
WHOLE_BYTES_PER_PIXEL = 512
# CPU budget for one whole image: 1 GiB, i.e. whole up to ~2.1 Mpx (1080p video frames stay whole,
# a 3000 x 2000 photo is tiled). Tiles of AUTO_TILE px peak at about 0.5 GB whatever the image.
CPU_WHOLE_BUDGET = 1 << 30
# On a GPU the budget is this fraction of the memory free right now (torch.cuda.mem_get_info):
# the rest is left to the allocator's fragmentation, cuDNN workspaces and other processes.
GPU_FREE_FRACTION = 0.5
AUTO_TILE = 1024


def whole_image_bytes(height: int, width: int) -> int:
    """Estimated peak memory of translating a ``height`` x ``width`` image whole (batch 1)."""
    return height * width * WHOLE_BYTES_PER_PIXEL


def whole_image_budget(device: "str | torch.device | None" = None) -> int:
    """Bytes one whole-image translation may use on ``device`` (None: CPU) before it is tiled."""
    if device is not None and str(device).startswith("cuda"):
        import torch

        free, _total = torch.cuda.mem_get_info(torch.device(device))
        return int(free * GPU_FREE_FRACTION)
    return CPU_WHOLE_BUDGET


def auto_tile(height: int, width: int, tile: Optional[int] = None, *,
              device: "str | torch.device | None" = None) -> int:
    """The tile size to use for an image of ``height`` x ``width`` px on ``device``; 0 means whole.

    ``tile`` None applies the automatic rule: AUTO_TILE px tiles when the whole image's estimated
    memory (:func:`whole_image_bytes`) exceeds the device's budget (:func:`whole_image_budget`:
    1 GiB on CPU, half the free memory on a GPU). An explicit ``tile`` is kept, and 0 never tiles.
    An image no larger than the tile is never tiled.
    """
    if tile is None:
        tile = AUTO_TILE if whole_image_bytes(height, width) > whole_image_budget(device) else 0
    return tile if tile and (height > tile or width > tile) else 0


def statistics_scale(height: int, width: int, *, device: "str | torch.device | None" = None) -> float:
    """The scale (<= 1) at which a ``height`` x ``width`` image fits one whole-image pass on
    ``device``: where tiles take their per-image statistics from (the whole image when it fits)."""
    return min(1.0, (whole_image_budget(device) / whole_image_bytes(height, width)) ** 0.5)


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


__all__ = ["AUTO_TILE", "WHOLE_BYTES_PER_PIXEL", "CPU_WHOLE_BUDGET", "GPU_FREE_FRACTION", "auto_tile",
           "statistics_scale",
           "whole_image_bytes", "whole_image_budget", "tile_starts", "edge_ramp", "check_tiling",
           "translate_tiled"]
