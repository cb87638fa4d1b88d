"""Find the colour palette of label-map inputs, so the studio can offer exactly those colours.

A label map (facades, cityscapes labels, a binary edge map) is made of flat regions of a few
colours, with mixtures only along the edges between them (anti-aliasing, JPEG ringing: the standard
pix2pix datasets are JPEGs). A photo has texture and noise almost everywhere. So ``find_palette``
first checks that each image is mostly flat and that its flat regions use few colours, then reads
the palette from all pixels, leaving out colours that are mixtures of two palette colours.
"""
from __future__ import annotations

import logging
from typing import Iterable, Iterator, Optional

import numpy as np

from ..util.imageio import read_image
from .dataset import PairedDataset, load_pair

log = logging.getLogger(__name__)

# A pixel is flat when its right and lower neighbours are within this many levels (0..255) per
# channel: exact for PNG label maps, and loose enough for JPEG's small errors inside flat blocks.
FLAT_TOLERANCE = 4


def _to_levels(image: np.ndarray) -> np.ndarray:
    """(H, W, C) in [0, 1], C in 1, 3, 4 -> (H, W, 3) int32 levels 0..255."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ValueError(f"find_palette takes (H, W, C) images with C in 1, 3, 4; got shape {image.shape}")
    rgb = image[:, :, :3] if image.shape[2] != 1 else np.repeat(image, 3, axis=2)
    if image.shape[2] == 4:
        # Transparent areas count as white, as the Translator composites them.
        alpha = image[:, :, 3:]
        rgb = rgb * alpha + (1.0 - alpha)
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.int32)


def _flat_mask(levels: np.ndarray) -> np.ndarray:
    """(H-1, W-1) bool: the pixel equals its right and lower neighbours within FLAT_TOLERANCE."""
    core = levels[:-1, :-1]
    right = np.abs(levels[:-1, 1:] - core).max(axis=2) <= FLAT_TOLERANCE
    down = np.abs(levels[1:, :-1] - core).max(axis=2) <= FLAT_TOLERANCE
    return right & down


def _counts(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3) levels -> (unique packed 0xRRGGBB codes, counts)."""
    codes = (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]
    return np.unique(codes, return_counts=True)


def _unpack(codes: np.ndarray) -> np.ndarray:
    return np.stack([(codes >> 16) & 255, (codes >> 8) & 255, codes & 255], axis=1)


def _flat_colour_count(codes: np.ndarray, counts: np.ndarray, tolerance: int, coverage: float,
                       limit: int) -> int:
    """How many greedy clusters (most frequent first, ``tolerance`` levels wide) cover ``coverage``
    of the pixels; ``limit + 1`` when more than ``limit`` would be needed."""
    order = np.argsort(-counts, kind="stable")
    rgb, weight = _unpack(codes[order]), counts[order].astype(np.float64)
    uncovered = np.ones(len(rgb), dtype=bool)
    covered, n = 0.0, 0
    while covered < coverage * weight.sum():
        if n == limit:
            return limit + 1
        first = int(np.argmax(uncovered))
        near = uncovered & (np.abs(rgb - rgb[first]).max(axis=1) <= tolerance)
        covered += weight[near].sum()
        uncovered &= ~near
        n += 1
    return n


def _is_mixture(colour: np.ndarray, palette: list[np.ndarray], tolerance: float) -> bool:
    """True when ``colour`` lies within ``tolerance`` of the segment between two palette colours
    (an edge pixel blending two regions, not a label of its own)."""
    for i in range(len(palette)):
        for j in range(i + 1, len(palette)):
            a, b = palette[i].astype(np.float64), palette[j].astype(np.float64)
            ab = b - a
            t = np.clip(np.dot(colour - a, ab) / max(np.dot(ab, ab), 1e-9), 0.0, 1.0)
            if np.abs(colour - (a + t * ab)).max() <= tolerance:
                return True
    return False


def find_palette(images: Iterable[np.ndarray], *, max_colours: int = 32, tolerance: int = 12,
                 min_flat: float = 0.3, min_share: float = 0.005) -> Optional[list[list[int]]]:
    """The label colours of training inputs, or None when they are photos.

    images: (H, W, C) float arrays in [0, 1], C in 1 (gray), 3 (RGB) or 4 (RGBA, composited on
    white). A few hundred images are plenty; a photo dataset is usually recognised from its first
    image, so passing all of it costs little.

    Every image must look like a label map: at least ``min_flat`` of its pixels flat, and the flat
    pixels' colours covered (95%) by at most ``max_colours`` colours a few levels wide. (An image
    that is all one flat colour, such as open sea, passes: the other images of a set decide.)
    The palette is then the colours of all pixels, most frequent first, each covering at least
    ``min_share`` of them with its neighbours within ``tolerance``, leaving out mixtures of two
    palette colours. Returns [[r, g, b], ...] in 0..255 (at most ``max_colours``), or None.
    """
    if not 1 <= max_colours <= 1024:
        raise ValueError(f"max_colours must be in 1..1024, got {max_colours}")
    if not 0 <= tolerance < 128:
        raise ValueError(f"tolerance must be in 0..127 levels, got {tolerance}")
    all_codes, all_counts = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    n = 0
    for image in images:
        levels = _to_levels(image)
        if min(levels.shape[:2]) >= 2:
            flat = _flat_mask(levels)
            flat_share = float(flat.mean())
            # Flat regions of a label map hold their colour exactly (JPEG: within a few levels);
            # a smooth photo (sky, sea) drifts, and needs many narrow clusters to be covered.
            flat_colours = (_flat_colour_count(*_counts(levels[:-1, :-1][flat]), FLAT_TOLERANCE,
                                               0.95, max_colours) if flat.any() else max_colours + 1)
            if flat_share < min_flat or flat_colours > max_colours:
                # Each image of a label-map set is itself a label map: stop at the first that is not.
                log.debug("input %d is not a label map (%.0f%% flat, %s flat colours): no palette",
                          n, 100 * flat_share, flat_colours if flat_colours <= max_colours else "too many")
                return None
        codes, counts = _counts(levels.reshape(-1, 3))
        merged, inverse = np.unique(np.concatenate([all_codes, codes]), return_inverse=True)
        all_counts = np.bincount(inverse, weights=np.concatenate([all_counts, counts]),
                                 minlength=len(merged)).astype(np.int64)
        all_codes = merged
        n += 1
    if n == 0:
        return None

    order = np.argsort(-all_counts, kind="stable")
    rgb, weight = _unpack(all_codes[order]), all_counts[order].astype(np.float64)
    total = weight.sum()
    uncovered = np.ones(len(rgb), dtype=bool)
    palette: list[np.ndarray] = []
    while uncovered.any() and len(palette) < max_colours:
        first = int(np.argmax(uncovered))  # the most frequent colour not yet accounted for
        near = uncovered & (np.abs(rgb - rgb[first]).max(axis=1) <= tolerance)
        uncovered &= ~near
        if weight[near].sum() / total < min_share:
            break  # colours come in frequency order: every later one is rarer still
        if not _is_mixture(rgb[first].astype(np.float64), palette, tolerance):
            palette.append(rgb[first])
    log.debug("palette of %d input(s): %d colours", n, len(palette))
    return [[int(v) for v in c] for c in palette]


def dataset_palette(train_set: PairedDataset, limit: int = 64) -> Optional[list]:
    """The input colours of a label-map dataset (saved for the studio's palette), else None."""
    if train_set.in_channels not in (1, 3, 4):
        return None

    def inputs() -> Iterator:
        for pair in train_set.pairs[:limit]:
            if pair.b is None:  # side by side: the input is one half of the file
                a, b = load_pair(pair)
                yield b if train_set.direction == "BtoA" else a
            else:  # two files: decode only the input one
                yield read_image(pair.b if train_set.direction == "BtoA" else pair.a)

    return find_palette(inputs())
