"""The resize-conv decoder step (nearest 2x upsampling, then a 3x3 convolution) and its exact
cheaper form: one stride-2 4x4 transposed convolution of the *low-resolution* input.

Output row 2i + a of the upsampled-then-convolved image reads upsampled rows 2i + a - 1 .. 2i + a + 1,
which are input rows {i - 1, i} for a = 0 (taps w0 and w1 + w2) and {i, i + 1} for a = 1 (taps
w0 + w1 and w2); columns alike. So each output pixel is a 2x2 window of the input: 16 instead of
36 multiply-adds per input pixel and channel pair, and a 4x4 stride-2 transposed convolution
(padding 1) whose taps are those sums computes all four phases at once, borders included (a zero
row outside the upsampled image is a zero row outside the input). The kernel is a linear function
of the 3x3 weights, so training through it gives the 3x3 weights their exact gradient.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .small_conv import conv2d_as_matmul, use_matmul

# Phase a (0 or 1) -> (2, 3) matrix combining the 3 taps of a 3x3 kernel's rows (or columns) on the
# nearest-upsampled image into the 2 taps on the original one.
COMBINE = torch.tensor([[[1.0, 0, 0], [0, 1, 1]], [[1.0, 1, 0], [0, 0, 1]]])

# Tap k (0..3) of a stride-2 4x4 transposed convolution (padding 1) -> the 3 taps of the 3x3 kernel
# on the nearest-upsampled image that it sums: output row 2i + a reads its t-th input row
# i - 1 + a + t through tap 3 - a - 2t, which is COMBINE[a][t]: w2, w1 + w2, w0 + w1, w0.
TRANSPOSED = torch.stack([COMBINE[1][1], COMBINE[0][1], COMBINE[1][0], COMBINE[0][0]])


def transposed_kernel(weight: torch.Tensor) -> torch.Tensor:
    """A 3x3 kernel (C_out, C_in, 3, 3) applied after nearest 2x upsampling -> the equivalent
    stride-2 4x4 transposed-convolution kernel (C_in, C_out, 4, 4), whose taps per axis are
    TRANSPOSED's sums (w2, w1 + w2, w0 + w1, w0); differentiable."""
    # The taps w2, w1 + w2, w0 + w1, w0 are the flipped 3 taps plus themselves shifted by one:
    # a flip, then two padded adds per axis. The same numbers as a product with TRANSPOSED
    # (einsum), in half the time with its gradient (it runs on every training step). Flipping
    # the 3x3 kernel before the adds, not the 4x4 after, moves 9/16 of the data: bit-identical,
    # a quarter faster with its gradient (docs/benchmarks.md, "The resize-conv kernel's flip").
    v = weight.transpose(0, 1).flip(2, 3)
    rows = F.pad(v, (0, 0, 1, 0)) + F.pad(v, (0, 0, 0, 1))
    return F.pad(rows, (1, 0)) + F.pad(rows, (0, 1))


class ResizeConv2d(nn.Conv2d):
    """Nearest 2x upsampling followed by a 3x3 convolution (stride 1, padding 1):
    (N, C_in, H, W) -> (N, C_out, 2H, 2W). Its weights are the 3x3 convolution's (same names and
    shapes as an ``nn.Conv2d``), and so is its function up to float rounding.

    Large inputs (``N*H*W >= transposed_min_pixels``) run as one transposed convolution at the
    input resolution (:func:`transposed_kernel`, 16 instead of 36 multiply-adds per input pixel and
    channel pair: the decoder's forward and backward take 1.3-2.1x less time on CPU); small ones,
    whose C_in x C_out x 16 kernel costs more to derive and differentiate than the convolution
    itself, run as written (in a bf16 training step the smallest as one matmul:
    :mod:`~pix2pix.models.small_conv`). Measured per layer, forward and backward, on a 2-core AVX2
    CPU: docs/benchmarks.md, "2026-12-07 (morning)".
    """

    transposed_min_pixels = 256

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True) -> None:
        super().__init__(in_channels, out_channels, 3, 1, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] * x.shape[2] * x.shape[3] >= self.transposed_min_pixels:
            return F.conv_transpose2d(x, transposed_kernel(self.weight), self.bias, stride=2, padding=1)
        up = F.interpolate(x, scale_factor=2, mode="nearest")
        if use_matmul(self, up, up.shape[0] * up.shape[2] * up.shape[3]):
            return conv2d_as_matmul(up, self.weight, self.bias, 1, 1)
        return super().forward(up)


__all__ = ["ResizeConv2d", "transposed_kernel", "COMBINE", "TRANSPOSED"]
