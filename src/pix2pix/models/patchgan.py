"""PatchGAN and PixelGAN discriminators: one real/fake logit per patch of the (input, output) pair.

``forward(x, features=True)`` also returns the activations after each LeakyReLU (the feature-
matching loss compares them on real and fake pairs); the logits are the same either way.
"""
from __future__ import annotations

import torch
from torch import nn

from .layers import Norm, check_norm, conv_bias, norm_layer


class PatchGAN(nn.Module):
    """(N, in_channels, H, W) -> (N, 1, H', W') logits.

    ``n_layers`` 1, 3, 5 give 16, 70 and 286 pixel receptive fields; with 3 a 256x256 input gives
    a 30x30 map. ``in_channels`` is input + output channels for the conditional discriminator.
    """

    def __init__(self, *, in_channels: int = 6, base_channels: int = 64, n_layers: int = 3,
                 norm: Norm = "batch") -> None:
        super().__init__()
        check_norm(norm)
        if n_layers < 1:
            raise ValueError(f"PatchGAN n_layers must be at least 1, got {n_layers}")
        bias = conv_bias(norm)
        layers: list[nn.Module] = [nn.Conv2d(in_channels, base_channels, 4, 2, 1),
                                   nn.LeakyReLU(0.2, inplace=True)]
        c_prev = base_channels
        for n in range(1, n_layers):
            c = base_channels * min(2**n, 8)
            layers += [nn.Conv2d(c_prev, c, 4, 2, 1, bias=bias), norm_layer(norm, c),
                       nn.LeakyReLU(0.2, inplace=True)]
            c_prev = c
        c = base_channels * min(2**n_layers, 8)
        layers += [nn.Conv2d(c_prev, c, 4, 1, 1, bias=bias), norm_layer(norm, c),
                   nn.LeakyReLU(0.2, inplace=True), nn.Conv2d(c, 1, 4, 1, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, *, features: bool = False):
        return run_with_features(self.net, x) if features else self.net(x)


class PixelGAN(nn.Module):
    """1x1 PatchGAN: (N, in_channels, H, W) -> (N, 1, H, W) logits, one per pixel."""

    def __init__(self, *, in_channels: int = 6, base_channels: int = 64, norm: Norm = "batch") -> None:
        super().__init__()
        check_norm(norm)
        c = base_channels
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, c, 1), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(c, 2 * c, 1, bias=conv_bias(norm)), norm_layer(norm, 2 * c),
            nn.LeakyReLU(0.2, inplace=True), nn.Conv2d(2 * c, 1, 1),
        )

    def forward(self, x: torch.Tensor, *, features: bool = False):
        return run_with_features(self.net, x) if features else self.net(x)


def run_with_features(net: nn.Sequential, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(logits, [activation after each LeakyReLU]) of a discriminator's layer stack."""
    feats: list[torch.Tensor] = []
    for layer in net:
        x = layer(x)
        if isinstance(layer, nn.LeakyReLU):
            feats.append(x)
    return x, feats


def patch_output_size(image_size: int, n_layers: int) -> int:
    """Side of a PatchGAN's output map for a square input: 4x4 convs, n_layers of stride 2 (each
    halves, rounding down), then two of stride 1 (each loses 1 px). 30 for 256 px and 3 layers."""
    side = image_size
    for _ in range(n_layers):
        side = (side + 2 - 4) // 2 + 1
    return side - 2


def check_patch_depth(image_size: int, n_layers: int, *, what: str = "", advice: str = "") -> None:
    """Raise ValueError when a PatchGAN of ``n_layers`` has no output for ``image_size`` inputs: too
    deep a one halves the crop away (found when the config is checked, not as a crash at step 1).
    ``what`` names the input when it is not the training crop (a multi-scale D's coarsest scale)."""
    if patch_output_size(image_size, n_layers) >= 1:
        return
    fits = max((n for n in range(1, 12) if patch_output_size(image_size, n) >= 1), default=0)
    raise ValueError(f"model.d_layers={n_layers} is too deep for {what or f'data.image_size={image_size}'}: "
                     f"the PatchGAN's output would be empty (it halves the image {n_layers} times, "
                     f"then loses 2 px); use --d-layers {fits} or less{advice}, or a larger --image-size")
