"""ResNet generator (Johnson et al. 2016), as offered by the reference pix2pix/CycleGAN code."""
from __future__ import annotations

import torch
from torch import nn

from .layers import Norm, check_norm, conv_bias, norm_layer
from .resize_conv import ResizeConv2d
from .unet import UPSAMPLES


class ResidualBlock(nn.Module):
    """x + conv-norm-relu-[dropout]-conv-norm(x), reflection padded; shape preserved."""

    def __init__(self, channels: int, norm: Norm, dropout: float) -> None:
        super().__init__()
        bias = conv_bias(norm)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias),
            norm_layer(norm, channels), nn.ReLU(inplace=True),
        ]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias),
                   norm_layer(norm, channels)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResNetGenerator(nn.Module):
    """(N, in_channels, H, W) in [-1, 1] -> (N, out_channels, H, W) in [-1, 1]; H, W multiples of 4."""

    def __init__(self, *, in_channels: int = 3, out_channels: int = 3, base_channels: int = 64,
                 blocks: int = 9, norm: Norm = "instance", dropout: float = 0.0,
                 upsample: str = "transpose") -> None:
        """``upsample`` "resize": nearest x2 + 3x3 conv instead of transposed convs (see UNet)."""
        super().__init__()
        check_norm(norm)
        if upsample not in UPSAMPLES:
            raise ValueError(f"ResNet upsample={upsample!r} is not valid; choose one of {', '.join(UPSAMPLES)}")
        bias = conv_bias(norm)
        c = base_channels
        self.stem = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(in_channels, c, 7, bias=bias),
                                  norm_layer(norm, c), nn.ReLU(inplace=True))
        self.down = nn.Sequential(
            nn.Conv2d(c, 2 * c, 3, 2, 1, bias=bias), norm_layer(norm, 2 * c), nn.ReLU(inplace=True),
            nn.Conv2d(2 * c, 4 * c, 3, 2, 1, bias=bias), norm_layer(norm, 4 * c), nn.ReLU(inplace=True),
        )
        self.blocks = nn.Sequential(*[ResidualBlock(4 * c, norm, dropout) for _ in range(blocks)])
        def double(c_in: int, c_out: int) -> list[nn.Module]:
            if upsample == "resize":
                # The Identity keeps the layer indices (and so the weight names) of the two-layer
                # form this replaced: nearest 2x upsampling, then the 3x3 conv.
                return [nn.Identity(), ResizeConv2d(c_in, c_out, bias=bias)]
            return [nn.ConvTranspose2d(c_in, c_out, 3, 2, 1, output_padding=1, bias=bias)]

        self.up = nn.Sequential(
            *double(4 * c, 2 * c), norm_layer(norm, 2 * c), nn.ReLU(inplace=True),
            *double(2 * c, c), norm_layer(norm, c), nn.ReLU(inplace=True),
        )
        self.head = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(c, out_channels, 7), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.up(self.blocks(self.down(self.stem(x)))))
