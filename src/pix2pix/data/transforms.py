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


def params_to_tensor(params: JitterParams) -> torch.Tensor:
    """JitterParams as int64 (6,): resize H, W (-1: none), crop top, left, size (-1: none), flip;
    the form a loader worker hands over with a uint8 image (see :func:`apply_batch`)."""
    rh, rw = params.resize or (-1, -1)
    top, left, size = params.crop or (-1, -1, -1)
    return torch.tensor([rh, rw, top, left, size, int(params.flip)], dtype=torch.int64)


def params_from_tensor(t: torch.Tensor) -> JitterParams:
    rh, rw, top, left, size, flip = (int(v) for v in t.tolist())
    return JitterParams(resize=(rh, rw) if rh >= 0 else None,
                        crop=(top, left, size) if size >= 0 else None, flip=bool(flip))


def apply_batch(images: torch.Tensor | list[torch.Tensor],
                params: list[JitterParams]) -> torch.Tensor:
    """uint8 images (N, C, H, W) (or a list of (C, H, W) of different sizes), on any device ->
    jittered float32 (N, C, S, S) in [-1, 1], image ``i`` with ``params[i]``.

    The same arithmetic as ``apply_params(to_tensor(u8 / 255), p)`` on the CPU, batched: on the
    CPU the values are identical; on a GPU the resampling rounds like the GPU's kernel does. The
    loader then moves a quarter of the bytes (uint8, not float32) and the resize runs where the
    compute is.
    """
    if isinstance(images, list) or any(p.resize != params[0].resize for p in params):
        return torch.stack([apply_batch(img[None], [p])[0] for img, p in zip(images, params)])
    # [0, 1] first, then [-1, 1]: the order to_tensor and read_image use, so the values agree.
    x = images.float() / 255.0
    x = x * 2.0 - 1.0
    resize = params[0].resize
    if resize is not None and tuple(x.shape[-2:]) != resize:
        # Bicubic overshoots; each image is clamped to its own range, as apply_params does.
        lo = x.amin(dim=(1, 2, 3), keepdim=True)
        hi = x.amax(dim=(1, 2, 3), keepdim=True)
        x = F.interpolate(x, size=resize, mode="bicubic", align_corners=False, antialias=True)
        x = torch.maximum(torch.minimum(x, hi), lo)
    out = []
    for img, p in zip(x, params):
        if p.crop is not None:
            top, left, size = p.crop
            img = img[:, top:top + size, left:left + size]
        out.append(img.flip(-1) if p.flip else img)
    return torch.stack(out)
