"""PatchGAN and PixelGAN discriminators: one real/fake logit per patch of the (input, output) pair."""
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
