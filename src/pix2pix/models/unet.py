"""U-Net generator (Isola et al. 2017, appendix 6.1.1).

Encoder ``down.0 .. down.{depth-1}`` halves the size at every level; decoder ``up.{depth-1} .. up.0``
doubles it back, each decoder output concatenated with the encoder output of the same size.
With depth 8 a 256x256 input reaches 1x1 at the bottleneck (``unet_256``).
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from .layers import Norm, check_norm, conv_bias, norm_layer
from .resize_conv import ResizeConv2d
from .small_conv import SmallMapConv2d


def level_channels(base_channels: int, level: int) -> int:
    """Feature maps at encoder level ``level``: 64, 128, 256, 512, 512, ... for base 64."""
    return base_channels * min(2**level, 8)


UPSAMPLES = ("transpose", "resize")


def up_layers(c_in: int, c_out: int, upsample: str, *, bias: bool) -> OrderedDict:
    """The decoder's size-doubling step of kind ``upsample`` (see ``UNet``), as named layers; the
    convolution is always called ``conv`` so that weight names do not depend on the kind."""
    if upsample == "resize":
        # Nearest 2x upsampling + 3x3 conv as one layer, which runs large inputs in the cheaper
        # exact form (a transposed convolution at the input resolution: see ResizeConv2d).
        return OrderedDict(conv=ResizeConv2d(c_in, c_out, bias=bias))
    return OrderedDict(conv=nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=bias))


class UNet(nn.Module):
    """U-Net mapping (N, in_channels, H, W) in [-1, 1] to (N, out_channels, H, W) in [-1, 1].

    H and W must be multiples of ``2**depth`` (the Translator pads to that).
    ``dropout_layers`` decoder layers, counted from the bottleneck and starting at
    ``dropout_start``, use dropout ``dropout``: the paper's CD512-CD1024-CD1024 are the first three
    (start 0); the reference PyTorch code puts them one level further out (start 1).

    ``upsample`` "transpose" is the paper's 4x4 stride-2 transposed convolution; "resize" doubles
    the size by nearest-neighbour resizing, then applies a 3x3 convolution (Odena et al. 2016,
    "Deconvolution and checkerboard artifacts"): every output pixel gets the same number of kernel
    taps, so the decoder cannot paint the checkerboard a transposed convolution's uneven overlap
    makes. Same output shapes and weight names; the kernels are 3x3 instead of 4x4.
    """

    def __init__(self, *, in_channels: int = 3, out_channels: int = 3, base_channels: int = 64,
                 depth: int = 8, norm: Norm = "batch", dropout: float = 0.5,
                 dropout_layers: int = 3, dropout_start: int = 0,
                 upsample: str = "transpose", input_skip: bool = False) -> None:
        super().__init__()
        check_unet(norm, upsample)
        if depth < 2:
            raise ValueError(f"U-Net depth must be at least 2, got {depth}")
        self.depth = depth
        bias = conv_bias(norm)
        down: list[nn.Module] = [nn.Conv2d(in_channels, base_channels, 4, 2, 1, bias=bias)]
        for level in range(1, depth):
            c_in, c_out = level_channels(base_channels, level - 1), level_channels(base_channels, level)
            innermost = level == depth - 1
            down.append(nn.Sequential(OrderedDict(
                act=nn.LeakyReLU(0.2, inplace=True),
                # An nn.Conv2d whose bf16 training steps run small maps as one matmul (same weights).
                conv=SmallMapConv2d(c_in, c_out, 4, 2, 1, bias=bias),
                # The bottleneck is 1x1 for the preset size: a norm there would zero it.
                norm=nn.Identity() if innermost else norm_layer(norm, c_out),
            )))
        self.down = nn.ModuleList(down)

        self.up = decoder([level_channels(base_channels, level) for level in range(depth)], out_channels,
                          norm=norm, dropout=dropout, dropout_layers=dropout_layers,
                          dropout_start=dropout_start, upsample=upsample, tanh=not input_skip)
        # A 1x1 convolution from the input straight to the output's pre-activation: a per-pixel
        # linear colour map the decoder then only has to correct (gray -> its luminance in colour,
        # a photo -> itself).
        self.input_skip = nn.Conv2d(in_channels, out_channels, 1) if input_skip else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = skip_forward(self.down, self.up, x)
        return y if self.input_skip is None else torch.tanh(y + self.input_skip(x))


def check_unet(norm: str, upsample: str) -> None:
    """Raise ValueError unless ``norm`` and ``upsample`` are kinds a U-Net has."""
    check_norm(norm)
    if upsample not in UPSAMPLES:
        raise ValueError(f"U-Net upsample={upsample!r} is not valid; choose one of {', '.join(UPSAMPLES)}")


def decoder(channels: list[int], out_channels: int, *, norm: Norm, dropout: float, dropout_layers: int,
            dropout_start: int, upsample: str, tanh: bool = True) -> nn.ModuleList:
    """The decoder ``up.0 .. up.{depth-1}`` of a U-Net whose encoder level i has ``channels[i]``
    feature maps: ``up[i]`` doubles the size from level i to level i-1 (to the output for i = 0,
    ending in tanh unless ``tanh`` is False), taking level i's skip concatenated with the level
    below, except the innermost."""
    depth, bias = len(channels), conv_bias(norm)
    up: list[nn.Module] = []
    for level in range(depth):
        innermost, outermost = level == depth - 1, level == 0
        c_in = channels[level] * (1 if innermost else 2)
        if outermost:
            up.append(nn.Sequential(OrderedDict(
                act=nn.ReLU(inplace=True),
                **up_layers(c_in, out_channels, upsample, bias=True),
                **({"tanh": nn.Tanh()} if tanh else {}),
            )))
            continue
        c_out = channels[level - 1]
        layers = OrderedDict(
            act=nn.ReLU(inplace=True),
            **up_layers(c_in, c_out, upsample, bias=bias),
            norm=norm_layer(norm, c_out),
        )
        # Decoder layer index counted from the bottleneck: 0 for the innermost.
        if dropout > 0 and 0 <= (depth - 1 - level) - dropout_start < dropout_layers:
            layers["dropout"] = nn.Dropout(dropout)
        up.append(nn.Sequential(layers))
    return nn.ModuleList(up)


def skip_forward(down: nn.ModuleList, up: nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
    """The U-Net wiring shared by every U-shaped generator: (N, C, H, W) -> (N, C_out, H, W).
    ``down[i]`` halves the size; the bottleneck output goes straight up through ``up[-1]``, and
    every other level ``up[i]`` takes its skip concatenated with the level below on channels."""
    skips: list[torch.Tensor] = []
    for block in down:
        x = block(x)
        skips.append(x)
    return decode(up, skips)


def decode(up: nn.ModuleList, skips: list[torch.Tensor]) -> torch.Tensor:
    """The U-Net decoder: ``skips[i]`` is encoder level i's output (the last one the bottleneck);
    ``up[i]`` doubles the size, every level but the innermost taking its skip concatenated with
    the level below on channels."""
    x = up[-1](skips[-1])
    for level in range(len(skips) - 2, -1, -1):
        x = up[level](torch.cat([skips[level], x], dim=1))
    return x
