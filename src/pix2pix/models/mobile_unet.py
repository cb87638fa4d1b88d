"""Mobile U-Net: a student generator built for CPUs and browsers (distillation target).

Same skeleton and weight names as :class:`~pix2pix.models.unet.UNet` (``down.i`` encoder levels,
``up.i`` decoder levels, skip connections by concatenation), with three changes that cut compute
by an order of magnitude at a given width:

- encoder: depthwise 4x4 stride-2 conv + pointwise 1x1 conv instead of a dense 4x4 conv
  (MobileNet's separable convolution: k*k*C + C*C' instead of k*k*C*C' MACs per pixel);
- decoder: nearest 2x upsampling + depthwise 3x3 + pointwise 1x1 (a "resize-conv", which also
  avoids the checkerboard artefacts of strided transposed convs);
- channels capped at ``base_channels * max_mult`` (4 by default, the paper's U-Net goes to 8), so
  the cheap-to-compute but parameter-heavy inner levels stay small.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from .layers import Norm, check_norm, conv_bias, norm_layer
from .unet import skip_forward


def mobile_level_channels(base_channels: int, level: int, max_mult: int = 4) -> int:
    """Feature maps at encoder level ``level``: 16, 32, 64, 64, ... for base 16, max_mult 4."""
    return base_channels * min(2**level, max_mult)


def separable(c_in: int, c_out: int, *, kernel: int, stride: int, padding: int, bias: bool) -> nn.Sequential:
    """Depthwise ``kernel``x``kernel`` conv (one filter per channel), then a pointwise 1x1 mix."""
    return nn.Sequential(OrderedDict(
        depthwise=nn.Conv2d(c_in, c_in, kernel, stride, padding, groups=c_in, bias=False),
        pointwise=nn.Conv2d(c_in, c_out, 1, bias=bias),
    ))


class MobileUNet(nn.Module):
    """(N, in_channels, H, W) in [-1, 1] -> (N, out_channels, H, W) in [-1, 1].

    H and W must be multiples of ``2**depth``. Dropout (``dropout``) sits on the first
    ``dropout_layers`` decoder levels from the bottleneck, as in the U-Net.
    """

    def __init__(self, *, in_channels: int = 3, out_channels: int = 3, base_channels: int = 16,
                 depth: int = 8, norm: Norm = "batch", dropout: float = 0.5,
                 dropout_layers: int = 3, max_mult: int = 4) -> None:
        super().__init__()
        check_norm(norm)
        if depth < 2:
            raise ValueError(f"Mobile U-Net depth must be at least 2, got {depth}")
        self.depth = depth
        bias = conv_bias(norm)
        ch = [mobile_level_channels(base_channels, lv, max_mult) for lv in range(depth)]
        # The first level sees only the image's 3 channels: a dense conv is cheap there.
        down: list[nn.Module] = [nn.Conv2d(in_channels, ch[0], 4, 2, 1, bias=bias)]
        for level in range(1, depth):
            innermost = level == depth - 1
            down.append(nn.Sequential(OrderedDict(
                act=nn.LeakyReLU(0.2, inplace=True),
                conv=separable(ch[level - 1], ch[level], kernel=4, stride=2, padding=1, bias=bias),
                # The bottleneck is 1x1 at the preset size: a norm there would zero it.
                norm=nn.Identity() if innermost else norm_layer(norm, ch[level]),
            )))
        self.down = nn.ModuleList(down)

        up: list[nn.Module] = []
        for level in range(depth):
            innermost, outermost = level == depth - 1, level == 0
            c_in = ch[level] * (1 if innermost else 2)
            layers: OrderedDict[str, nn.Module] = OrderedDict(
                act=nn.ReLU(inplace=True), upsample=nn.Upsample(scale_factor=2, mode="nearest"))
            if outermost:
                # A dense 3x3 to the output colours: few output channels, so it stays cheap.
                layers.update(conv=nn.Conv2d(c_in, out_channels, 3, 1, 1), tanh=nn.Tanh())
            else:
                c_out = ch[level - 1]
                layers.update(conv=separable(c_in, c_out, kernel=3, stride=1, padding=1, bias=bias),
                              norm=norm_layer(norm, c_out))
                if dropout > 0 and depth - 1 - level < dropout_layers:
                    layers["dropout"] = nn.Dropout(dropout)
            up.append(nn.Sequential(layers))
        self.up = nn.ModuleList(up)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return skip_forward(self.down, self.up, x)
