"""Multi-scale discriminator (pix2pixHD, Wang et al. 2018): PatchGANs of one architecture, the k-th
judging the (input, output) pair average-pooled by 2 k times.

The coarse scales see the global layout with the same receptive field, so a high-resolution output
is judged both for texture (full scale) and for structure (coarse scales), without a deeper D.
"""
from __future__ import annotations

import torch
from torch import nn

from .layers import Norm
from .patchgan import PatchGAN, check_patch_depth


def _pool(x: torch.Tensor) -> torch.Tensor:
    # pix2pixHD's downsampling: a 3x3 mean, stride 2, padding not counted (no dark border).
    return nn.functional.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)


class MultiScaleDiscriminator(nn.Module):
    """(N, in_channels, H, W) -> a list of ``scales`` logit maps, (N, 1, H_k, W_k), finest first.

    ``forward(x, features=True)`` returns (that list, one list of activations per scale).
    """

    def __init__(self, *, in_channels: int = 6, base_channels: int = 64, n_layers: int = 3,
                 norm: Norm = "batch", scales: int = 2) -> None:
        super().__init__()
        if scales < 1:
            raise ValueError(f"a multi-scale discriminator needs at least 1 scale, got {scales}")
        self.scales = nn.ModuleList(PatchGAN(in_channels=in_channels, base_channels=base_channels,
                                             n_layers=n_layers, norm=norm) for _ in range(scales))

    def forward(self, x: torch.Tensor, *, features: bool = False):
        logits, feats = [], []
        for k, d in enumerate(self.scales):
            if k:
                x = _pool(x)
            if features:
                out, f = d(x, features=True)
                feats.append(f)
            else:
                out = d(x)
            logits.append(out)
        return (logits, feats) if features else logits


def coarsest_size(image_size: int, scales: int) -> int:
    """Side of the input the last scale sees (each pooling: ceil(side / 2))."""
    for _ in range(scales - 1):
        image_size = (image_size - 1) // 2 + 1
    return image_size


def check_multiscale_depth(image_size: int, n_layers: int, scales: int) -> None:
    """Raise ValueError when the coarsest scale is too small for a PatchGAN of ``n_layers``."""
    coarse = coarsest_size(image_size, scales)
    check_patch_depth(coarse, n_layers, advice=" or fewer --d-scales",
                      what=f"data.image_size={image_size} at the coarsest of model.d_scales={scales} "
                           f"scales ({coarse} px)")
