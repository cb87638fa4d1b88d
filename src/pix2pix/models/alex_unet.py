"""U-Net whose middle encoder levels are ImageNet AlexNet's five convolutions (a pretrained encoder).

The network of ``UNet`` with levels 1-3 of the encoder (H/4, H/8, H/16) replaced by the
convolutions of the LPIPS AlexNet backbone that ships with the package; the training loop loads
those weights into a fresh model (``GeneratorSpec.backbone``), so a run starts from features that
already tell water from forest and edges from texture, where a random encoder must learn them from
the user's few hundred pairs. Level 0 (H/2) stays a random 4x4 stride-2 convolution for detail,
and the levels below H/16 are the U-Net's. The decoder and its skips are the U-Net's.

AlexNet's paddings are changed so every level halves the size exactly (conv1 pads 5 instead of 2,
the max pools pad 1): the pretrained kernels are kept, only the border handling differs.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from .layers import Norm, conv_bias, norm_layer
from .small_conv import SmallMapConv2d
from .unet import check_unet, decode, decoder, level_channels

# ImageNet AlexNet's convolutions, the one home of its layout (the LPIPS backbone in
# pix2pix.metrics.lpips builds from it too): (out channels, kernel, stride, padding, a 3x3
# stride-2 max pool before it). Here each pads (kernel - 1) // 2 instead, see above.
ALEXNET = ((64, 11, 4, 2, False), (192, 5, 1, 2, True), (384, 3, 1, 1, True), (256, 3, 1, 1, False),
           (256, 3, 1, 1, False))
# LPIPS's scaling layer: ImageNet's channel statistics in [-1, 1] units, (x - shift) / scale.
IMAGENET_SHIFT = (-0.030, -0.088, -0.188)
IMAGENET_SCALE = (0.458, 0.448, 0.450)
# The encoder levels the AlexNet part fills: its output channels at H/4, H/8, H/16.
ALEX_LEVELS = {1: 64, 2: 192, 3: 256}


class AlexUNet(nn.Module):
    """(N, in_channels, H, W) in [-1, 1] -> (N, out_channels, H, W) in [-1, 1].

    H and W must be multiples of ``2**depth``. The AlexNet part sees the image as RGB (the first
    three channels; one or two channels as their gray mean), scaled by LPIPS's ImageNet statistics.
    Its three taps pass through a norm layer (the skip and the next level), so their raw ImageNet
    magnitudes do not swamp the decoder's normalised features. ``dropout`` and ``upsample`` as in
    ``UNet``.
    """

    def __init__(self, *, in_channels: int = 3, out_channels: int = 3, base_channels: int = 64,
                 depth: int = 8, norm: Norm = "batch", dropout: float = 0.5,
                 dropout_layers: int = 3, dropout_start: int = 0, upsample: str = "transpose") -> None:
        super().__init__()
        check_unet(norm, upsample)
        if depth < 5:
            raise ValueError(f"a U-Net with the AlexNet encoder needs depth >= 5, got {depth}")
        self.depth, self.in_channels = depth, in_channels
        bias = conv_bias(norm)
        # Channels per encoder level: the U-Net's, except where AlexNet fills the level.
        channels = [ALEX_LEVELS.get(level, level_channels(base_channels, level)) for level in range(depth)]
        self.stem = nn.Conv2d(in_channels, channels[0], 4, 2, 1, bias=bias)
        convs, c_in = [], 3
        for c_out, k, stride, _, _ in ALEXNET:
            convs.append(nn.Conv2d(c_in, c_out, k, stride, (k - 1) // 2))
            c_in = c_out
        self.alex = nn.ModuleList(convs)
        self.taps = nn.ModuleList(norm_layer(norm, channels[level]) for level in ALEX_LEVELS)
        # Constants, not weights: not in the state dict.
        self.register_buffer("shift", torch.tensor(IMAGENET_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(IMAGENET_SCALE).view(1, 3, 1, 1), persistent=False)
        first = max(ALEX_LEVELS) + 1
        self.down = nn.ModuleList(nn.Sequential(OrderedDict(
            act=nn.LeakyReLU(0.2, inplace=True),
            conv=SmallMapConv2d(channels[level - 1], channels[level], 4, 2, 1, bias=bias),
            # The bottleneck is 1x1 for the preset size: a norm there would zero it.
            norm=nn.Identity() if level == depth - 1 else norm_layer(norm, channels[level]),
        )) for level in range(first, depth))

        self.up = decoder(channels, out_channels, norm=norm, dropout=dropout, dropout_layers=dropout_layers,
                          dropout_start=dropout_start, upsample=upsample)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.stem(x)]
        a = (as_rgb(x) - self.shift) / self.scale
        a = F.relu(self.alex[0](a))
        skips.append(self.taps[0](a))
        a = F.relu(self.alex[1](F.max_pool2d(a, 3, 2, 1)))
        skips.append(self.taps[1](a))
        a = F.max_pool2d(a, 3, 2, 1)
        for conv in self.alex[2:]:
            a = F.relu(conv(a))
        y = self.taps[2](a)
        skips.append(y)
        for block in self.down:
            y = block(y)
            skips.append(y)
        return decode(self.up, skips)

    @torch.no_grad()
    def load_backbone(self, convs: nn.ModuleList) -> None:
        """Copy AlexNet's five pretrained convolutions (the LPIPS backbone's ``convs``) in."""
        copy_convs(self.alex, convs)


def as_rgb(x: torch.Tensor) -> torch.Tensor:
    """What AlexNet sees of (N, C, H, W): the first three channels, or one or two as their gray mean."""
    return x[:, :3] if x.shape[1] >= 3 else x.mean(dim=1, keepdim=True).expand(-1, 3, -1, -1)


@torch.no_grad()
def copy_convs(mine: nn.ModuleList, theirs: nn.ModuleList) -> None:
    """Copy pretrained AlexNet convolutions ``theirs`` into ``mine`` (same shapes, or ValueError)."""
    if len(theirs) != len(mine):
        raise ValueError(f"expected AlexNet's {len(mine)} convolutions, got {len(theirs)}")
    for a, b in zip(mine, theirs):
        if a.weight.shape != b.weight.shape:
            raise ValueError(f"AlexNet weight of shape {tuple(b.weight.shape)} does not fit "
                             f"{tuple(a.weight.shape)}")
        a.weight.copy_(b.weight)
        a.bias.copy_(b.bias)
