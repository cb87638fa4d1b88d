"""An eval-mode generator rewritten for a faster exported graph, with the same function.

Two exact rewrites, applied to a copy (the trained model is not touched):

* **Batch norm folded into the convolution before it** (eval mode: a per-channel scale and shift
  of the conv's weights and bias), so the graph has no BatchNormalization nodes to fuse at load.
* **Resize-conv at the input resolution.** The ``upsample="resize"`` decoder's layers
  (:class:`~pix2pix.models.resize_conv.ResizeConv2d`: nearest 2x upsampling, then a 3x3
  convolution) become a fixed form with 16 instead of 36 multiply-adds per input pixel and channel
  pair (the arithmetic: :mod:`pix2pix.models.resize_conv`). Two forms (:data:`RESIZE_CONV`):
  ``transpose`` (the default), one stride-2 4x4 transposed convolution whose taps are sums of the
  3x3 ones; ``subpixel``, one 2x2 convolution with padding 1 giving all four phases at (H+1, W+1), each a
  shifted window of it, interleaved by a pixel shuffle. The first is one graph node per decoder
  level where the second is a convolution, eight slices, shape arithmetic, a concat and a pixel
  shuffle; in ONNX Runtime Web those took a third of the small built-in model's kernel time, and
  the page runs a frame faster with the transposed form (docs/benchmarks.md, 2026-12-06 late night).
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from ..models.resize_conv import COMBINE, ResizeConv2d, transposed_kernel


class SubPixelConv(nn.Module):
    """Nearest 2x upsampling followed by ``conv`` (3x3, stride 1, padding 1), computed at the input
    resolution: (N, C_in, H, W) -> (N, C_out, 2H, 2W), equal to the original up to float rounding."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        w = conv.weight.detach()  # (C_out, C_in, 3, 3)
        c_out = w.shape[0]
        kernels = [torch.einsum("ry,oiyx,cx->oirc", COMBINE[a], w, COMBINE[b]) for a in (0, 1) for b in (0, 1)]
        self.weight = nn.Parameter(torch.cat(kernels), requires_grad=False)  # (4 C_out, C_in, 2, 2)
        bias = conv.bias.detach() if conv.bias is not None else torch.zeros(c_out)
        # Each phase's channels carry the bias: the windows below keep it, so no separate Add.
        self.bias = nn.Parameter(bias.repeat(4), requires_grad=False)
        self.c_out = c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w, c = x.shape[2], x.shape[3], self.c_out
        y = F.conv2d(x, self.weight, self.bias, padding=1)  # (N, 4 C_out, H+1, W+1)
        phases = [y[:, p * c:(p + 1) * c, a:a + h, b:b + w] for p, (a, b) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1)))]
        # (N, C_out, 4, H, W) -> channel c*4 + 2a + b, the order pixel_shuffle interleaves.
        z = torch.stack(phases, dim=2).reshape(x.shape[0], 4 * c, h, w)
        return F.pixel_shuffle(z, 2)


class ResizeConvTranspose(nn.ConvTranspose2d):
    """Nearest 2x upsampling followed by ``conv`` (3x3, stride 1, padding 1) as one transposed
    convolution (4x4, stride 2, padding 1) of the input: (N, C_in, H, W) -> (N, C_out, 2H, 2W),
    equal to the original up to float rounding, borders included (a zero row outside the upsampled
    image is a zero row outside the input). The same 16 multiply-adds per input pixel and channel
    pair as :class:`SubPixelConv`, in one graph node instead of a convolution, its phase windows
    (Slice), a Concat and a pixel shuffle."""

    def __init__(self, conv: nn.Conv2d) -> None:
        w = conv.weight.detach()  # (C_out, C_in, 3, 3)
        super().__init__(w.shape[1], w.shape[0], 4, stride=2, padding=1, bias=True)
        self.weight = nn.Parameter(transposed_kernel(w), requires_grad=False)
        bias = conv.bias.detach() if conv.bias is not None else torch.zeros(w.shape[0], dtype=w.dtype)
        self.bias = nn.Parameter(bias.clone(), requires_grad=False)


# How a resize-conv is written into the exported graph: the key of RESIZE_CONV (see for_inference).
RESIZE_CONV: dict[str, type[nn.Module]] = {"subpixel": SubPixelConv, "transpose": ResizeConvTranspose}
DEFAULT_RESIZE_CONV = "transpose"


def _fold_bn(conv: nn.Module, bn: nn.BatchNorm2d) -> None:
    """conv <- bn(conv) in eval mode (Conv2d weights (O, I, k, k), ConvTranspose2d (I, O, k, k))."""
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    bias = conv.bias.detach() if conv.bias is not None else torch.zeros_like(bn.running_mean)
    shape = (1, -1, 1, 1) if isinstance(conv, nn.ConvTranspose2d) else (-1, 1, 1, 1)
    conv.weight = nn.Parameter(conv.weight.detach() * scale.view(shape), requires_grad=False)
    conv.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias.detach(), requires_grad=False)


def _rewrite(seq: nn.Sequential, resize_conv: str) -> dict[str, int]:
    counts = {"bn_folded": 0, "resize_conv": 0}
    names = list(seq._modules)
    for i, name in enumerate(names):
        m = seq._modules[name]
        nxt = seq._modules[names[i + 1]] if i + 1 < len(names) else None
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and isinstance(nxt, nn.BatchNorm2d) \
                and nxt.track_running_stats and nxt.running_mean is not None and m.groups == 1:
            _fold_bn(m, nxt)
            seq._modules[names[i + 1]] = nn.Identity()
            counts["bn_folded"] += 1
    for name in names:
        if isinstance(seq._modules[name], ResizeConv2d):  # the decoders' resize-convs
            seq._modules[name] = RESIZE_CONV[resize_conv](seq._modules[name])
            counts["resize_conv"] += 1
    return counts


def for_inference(generator: nn.Module,
                  resize_conv: str = DEFAULT_RESIZE_CONV) -> tuple[nn.Module, dict[str, int]]:
    """An eval-mode copy of ``generator`` with batch norm folded and resize-convs rewritten at the
    input resolution (``resize_conv``: a key of :data:`RESIZE_CONV`); returns it and how many of
    each rewrite were made (``bn_folded``, ``resize_conv``). Same function in
    eval mode (checked by the export's parity test against the original)."""
    if resize_conv not in RESIZE_CONV:
        raise ValueError(f"unknown resize_conv {resize_conv!r}; choose one of {', '.join(RESIZE_CONV)}")
    g = copy.deepcopy(generator).eval()
    counts = {"bn_folded": 0, "resize_conv": 0}
    for m in list(g.modules()):
        if isinstance(m, nn.Sequential):
            for k, v in _rewrite(m, resize_conv).items():
                counts[k] += v
    return g, counts


__all__ = ["for_inference", "SubPixelConv", "ResizeConvTranspose", "RESIZE_CONV", "DEFAULT_RESIZE_CONV"]
