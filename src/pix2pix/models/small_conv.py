"""Convolutions over small maps as one matrix product: a U-Net's inner levels in training.

At batch 1, a U-Net's inner levels convolve 1x1 to 8x8 maps with 512-1024 channels: a few dozen
output pixels against 4-5 M weights. On CPU, oneDNN runs such convolutions, and their weight
gradients above all, far below the matmul rate. The same convolution as an unfold (im2col) and one
matrix product, whose backward is two matrix products and a fold, runs them in less time forward
+ backward under bf16 autocast (1.1-2.4x per layer on an AVX512-BF16 CPU; in fp32 the gain is
mixed: ``benchmarks/small_conv.py``, docs/benchmarks.md "2026-12-07 (day)"). Same function up to
float rounding, so it is used only where it was measured to pay: training steps on a CPU under
bf16 autocast (``--precision auto`` on such CPUs). fp32 training, and so ``--recipe paper``, is
untouched; evaluation and export always take the plain convolution.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def out_side(side: int, kernel: int, stride: int, padding: int) -> int:
    """A convolution's output side for an input side (no dilation)."""
    return (side + 2 * padding - kernel) // stride + 1


def conv2d_as_matmul(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                     stride: int, padding: int) -> torch.Tensor:
    """``F.conv2d(x, weight, bias, stride, padding)`` (no groups, no dilation) as an unfold and one
    matrix product: (N, C_in, H, W) -> (N, C_out, H_out, W_out). Under autocast the product runs
    in the autocast type and the bias is added in it, as ``F.conv2d`` does."""
    n, _, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    h_out, w_out = out_side(h, kh, stride, padding), out_side(w, kw, stride, padding)
    cols = F.unfold(x, (kh, kw), padding=padding, stride=stride)  # (N, C_in*kh*kw, H_out*W_out)
    # One product over the whole batch, so the weights are read once (at batch 1 these are views).
    cols = cols.transpose(0, 1).reshape(cols.shape[1], -1)  # (C_in*kh*kw, N*H_out*W_out)
    y = weight.reshape(c_out, -1) @ cols  # (C_out, N*H_out*W_out)
    if bias is not None:
        y = y + bias.to(y.dtype)[:, None]
    return y.reshape(c_out, n, h_out, w_out).transpose(0, 1).contiguous()


def use_matmul(module: nn.Module, x: torch.Tensor, out_pixels: int) -> bool:
    """Whether ``module``'s forward of ``x`` into ``out_pixels`` output pixels (N x H_out x W_out)
    takes :func:`conv2d_as_matmul`: a training forward with gradients on, on a CPU under bf16
    autocast, into at most ``MATMUL_MAX_PIXELS``, and not traced by ``torch.compile``. (Inductor
    in torch 2.13 fails to generate code for the backward of an unfold after a nearest upsampling
    in bf16, the resize-conv decoder's innermost step; compiled steps keep the convolution.)"""
    return (out_pixels <= MATMUL_MAX_PIXELS and module.training and torch.is_grad_enabled()
            and x.device.type == "cpu" and torch.is_autocast_enabled("cpu")
            and torch.get_autocast_dtype("cpu") == torch.bfloat16
            and not torch.compiler.is_compiling())


# Output pixels (N x H_out x W_out) up to which a bf16 training convolution is one matrix product:
# at batch 1 the U-Nets' 8x8 to 1x1 outputs, at batch 4 their 4x4 to 1x1 ones. Every such layer
# ran forward + backward 1.1-2.4x faster as a matmul; at 256 (batch 4, 8x8) the decoder's ran 1.2x
# slower (benchmarks/small_conv.py, AVX512-BF16 AMD EPYC, docs/benchmarks.md "2026-12-07 (day)").
MATMUL_MAX_PIXELS = 64


class SmallMapConv2d(nn.Conv2d):
    """An ``nn.Conv2d`` (same weights, names and function; square kernel, no groups or dilation)
    whose forward is :func:`conv2d_as_matmul` where :func:`use_matmul` says so."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s, p = self.kernel_size[0], self.stride[0], self.padding[0]
        out = x.shape[0] * out_side(x.shape[2], k, s, p) * out_side(x.shape[3], k, s, p)
        if use_matmul(self, x, out):
            return conv2d_as_matmul(x, self.weight, self.bias, s, p)
        return super().forward(x)


__all__ = ["SmallMapConv2d", "conv2d_as_matmul", "use_matmul", "out_side", "MATMUL_MAX_PIXELS"]
