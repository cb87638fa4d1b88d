"""Paired jitter: one random draw (resize, crop, flip) applied identically to input and target."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Jitter:
    preprocess: str = "resize_crop"  # resize_crop | crop | resize | none
    image_size: int = 256
    load_size: int = 286
    flip: bool = True


@dataclass(frozen=True)
class JitterParams:
    resize: Optional[tuple[int, int]]  # (H, W) to resize to first, or None
    crop: Optional[tuple[int, int, int]]  # (top, left, size), or None
    flip: bool


def draw_params(height: int, width: int, jitter: Jitter, gen: torch.Generator,
                train: bool = True) -> JitterParams:
    """Draw one set of parameters for an image pair of size (height, width).

    At evaluation (``train=False``) the crop is centred and there is no flip.
    """
    size = jitter.image_size
    resize: Optional[tuple[int, int]] = None
    if jitter.preprocess == "resize_crop":
        resize = (jitter.load_size, jitter.load_size)
    elif jitter.preprocess == "resize":
        resize = (size, size)
    elif jitter.preprocess == "crop" and (height < size or width < size):
        raise ValueError(f"preprocess 'crop' needs images of at least {size}x{size}, got "
                         f"{width}x{height}; use --preprocess resize_crop or a smaller --image-size")
    crop = None
    if jitter.preprocess in ("resize_crop", "crop"):
        h, w = resize or (height, width)
        if train:
            top = int(torch.randint(0, h - size + 1, (1,), generator=gen))
            left = int(torch.randint(0, w - size + 1, (1,), generator=gen))
        else:
            top, left = (h - size) // 2, (w - size) // 2
        crop = (top, left, size)
    flip = bool(jitter.flip and train and torch.rand((), generator=gen) < 0.5)
    return JitterParams(resize=resize, crop=crop, flip=flip)


def apply_params(image: torch.Tensor, params: JitterParams) -> torch.Tensor:
    """(C, H, W) tensor -> jittered (C, H', W') tensor in the same value range."""
    if params.resize is not None and tuple(image.shape[-2:]) != params.resize:
        lo, hi = float(image.min()), float(image.max())
        image = F.interpolate(image[None], size=params.resize, mode="bicubic", align_corners=False,
                              antialias=True)[0].clamp_(lo, hi)
    if params.crop is not None:
        top, left, size = params.crop
        image = image[:, top:top + size, left:left + size]
    if params.flip:
        image = image.flip(-1)
    return image.contiguous()
