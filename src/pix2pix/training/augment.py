"""Paired differentiable augmentation for the discriminator (DiffAugment, Zhao et al. 2020).

D sees an (input, output) pair concatenated on channels, (N, C_in + C_out, H, W) in [-1, 1]. Each
call draws one random transform per image and applies it to every channel of that image, so the
input and the output stay aligned; real and fake pairs are both augmented (each call its own
draw), and the transforms are differentiable, so G learns through them. Only D's view changes: the
generator's input, the L1/perceptual targets and inference never see an augmentation.

Policies (a comma list, e.g. ``translation,cutout``), each from kornia:
``translation`` (shift up to 1/8 of the side, zeros in), ``cutout`` (a square of a quarter of the
area set to 0), ``color`` (brightness, contrast, saturation; applied to each group of 3 channels
with the same draw, so it needs RGB input and output).
"""
from __future__ import annotations

import torch
from torch import nn

from ..util.extras import MissingExtra, missing_extra_message

POLICIES = {
    "translation": "random shift up to 1/8 of each side (zeros fill in)",
    "cutout": "a random square of a quarter of the area set to 0",
    "color": "random brightness, contrast and saturation (RGB input and output)",
}


def parse_policy(text: str) -> list[str]:
    """``"translation, cutout"`` -> ``["translation", "cutout"]``; unknown names are errors."""
    names = [p.strip() for p in text.split(",") if p.strip()]
    bad = [p for p in names if p not in POLICIES]
    if bad:
        raise ValueError(f"d_augment: unknown polic{'ies' if len(bad) > 1 else 'y'} {', '.join(bad)}; "
                         f"choose from {', '.join(POLICIES)} (comma-separated), or '' for none")
    return names


class PairAugment(nn.Module):
    """(N, C, H, W) in [-1, 1] -> the same shape, one random draw per image over all C channels.

    Identity in eval mode. ``color`` needs C to be a multiple of 3 (RGB input and output).
    """

    def __init__(self, policy: str) -> None:
        super().__init__()
        try:
            import kornia.augmentation as K
        except ImportError:
            raise MissingExtra(missing_extra_message("kornia", "the discriminator augmentation "
                                                     "(d_augment)") or "pip install kornia") from None
        self.names = parse_policy(policy)
        self.ops = nn.ModuleDict()
        if "translation" in self.names:
            self.ops["translation"] = K.RandomAffine(degrees=0.0, translate=(0.125, 0.125), p=1.0)
        if "cutout" in self.names:
            self.ops["cutout"] = K.RandomErasing(scale=(0.25, 0.25), ratio=(1.0, 1.0), value=0.0, p=1.0)
        if "color" in self.names:
            self.ops["color"] = K.ColorJiggle(brightness=0.3, contrast=0.3, saturation=0.5, p=1.0)

    def _color(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] % 3:
            raise ValueError(f"d_augment=color needs RGB input and output (channels a multiple of 3), "
                             f"D sees {x.shape[1]}; drop 'color' from d_augment")
        op = self.ops["color"]
        groups = [(g + 1) / 2 for g in x.split(3, dim=1)]  # kornia's colour ops work in [0, 1]
        out = [op(groups[0])]
        params = op._params  # the draw just made, applied to every other group of 3 channels
        out += [op(g, params=params) for g in groups[1:]]
        return torch.cat(out, dim=1) * 2 - 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or not self.names:
            return x
        dtype = x.dtype
        x = x.float()
        if "color" in self.ops:
            x = self._color(x)
        for name in ("translation", "cutout"):
            if name in self.ops:
                x = self.ops[name](x)
        return x.to(dtype)


# The image size at which ``r1_weight`` is R1's usual gamma. The squared gradient is summed over
# pixels, so at a fixed gamma the penalty grows with the pixel count while D's own (patch-mean)
# loss does not: the penalty is scaled by R1_REFERENCE_PIXELS / (H * W) so one weight means the
# same strength at every size (0.1 at 128² is 0.025 in StyleGAN's units at 256²).
R1_REFERENCE_PIXELS = 128 * 128


def r1_penalty(pred_real: list[torch.Tensor], real_in: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): mean over images of |d D(real) / d real|^2, summed over D's
    outputs and scaled to a 128² image (``R1_REFERENCE_PIXELS``). ``real_in`` (N, C, H, W) must
    have ``requires_grad`` set before D's forward; the result keeps the graph (it is part of D's loss)."""
    total = sum(p.float().sum() for p in pred_real)
    (grad,) = torch.autograd.grad(total, real_in, create_graph=True)
    scale = R1_REFERENCE_PIXELS / (real_in.shape[-2] * real_in.shape[-1])
    return grad.float().pow(2).flatten(1).sum(1).mean() * scale


__all__ = ["POLICIES", "PairAugment", "R1_REFERENCE_PIXELS", "parse_policy", "r1_penalty"]
