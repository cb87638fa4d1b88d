"""An eval-mode generator rewritten for a faster exported graph, with the same function.

Two exact rewrites, applied to a copy (the trained model is not touched):

* **Batch norm folded into the convolution before it** (eval mode: a per-channel scale and shift
  of the conv's weights and bias), so the graph has no BatchNormalization nodes to fuse at load.
* **Resize-conv as a sub-pixel convolution.** Nearest 2x upsampling then a 3x3 convolution (the
  ``upsample="resize"`` decoder) computes, for each of the four output phases (row parity a,
  column parity b), a 2x2 convolution of the *low-resolution* input: rows {i-1, i} for a = 0
  (taps w0 and w1 + w2) and {i, i+1} for a = 1 (taps w0 + w1 and w2), columns alike. One 2x2
  convolution with padding 1 gives all four phases at (H+1, W+1); each phase is a shifted window
  of it, and a pixel shuffle interleaves them. 16 instead of 36 multiply-adds per input pixel and
  channel pair: the resize-convs were two thirds of the in-browser time of the demo model
  (ONNX Runtime Web profile, docs/studio.md).
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

# Phase a (0 or 1) -> (2, 3) matrix combining the 3 taps of a 3x3 kernel's rows (or columns) on the
# nearest-upsampled image into the 2 taps on the original one.
_COMBINE = torch.tensor([[[1.0, 0, 0], [0, 1, 1]], [[1.0, 1, 0], [0, 0, 1]]])


class SubPixelConv(nn.Module):
    """Nearest 2x upsampling followed by ``conv`` (3x3, stride 1, padding 1), computed at the input
    resolution: (N, C_in, H, W) -> (N, C_out, 2H, 2W), equal to the original up to float rounding."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        w = conv.weight.detach()  # (C_out, C_in, 3, 3)
        c_out = w.shape[0]
        kernels = [torch.einsum("ry,oiyx,cx->oirc", _COMBINE[a], w, _COMBINE[b]) for a in (0, 1) for b in (0, 1)]
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


def _fold_bn(conv: nn.Module, bn: nn.BatchNorm2d) -> None:
    """conv <- bn(conv) in eval mode (Conv2d weights (O, I, k, k), ConvTranspose2d (I, O, k, k))."""
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    bias = conv.bias.detach() if conv.bias is not None else torch.zeros_like(bn.running_mean)
    shape = (1, -1, 1, 1) if isinstance(conv, nn.ConvTranspose2d) else (-1, 1, 1, 1)
    conv.weight = nn.Parameter(conv.weight.detach() * scale.view(shape), requires_grad=False)
    conv.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias.detach(), requires_grad=False)


def _rewrite(seq: nn.Sequential) -> dict[str, int]:
    counts = {"bn_folded": 0, "subpixel": 0}
    names = list(seq._modules)
    for i, name in enumerate(names):
        m = seq._modules[name]
        nxt = seq._modules[names[i + 1]] if i + 1 < len(names) else None
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and isinstance(nxt, nn.BatchNorm2d) \
                and nxt.track_running_stats and nxt.running_mean is not None and m.groups == 1:
            _fold_bn(m, nxt)
            seq._modules[names[i + 1]] = nn.Identity()
            counts["bn_folded"] += 1
    for i, name in enumerate(names):
        m, nxt = seq._modules[name], seq._modules[names[i + 1]] if i + 1 < len(names) else None
        if isinstance(m, nn.Upsample) and m.mode == "nearest" and m.scale_factor in (2, 2.0, (2, 2), (2.0, 2.0)) \
                and isinstance(nxt, nn.Conv2d) and nxt.kernel_size == (3, 3) and nxt.stride == (1, 1) \
                and nxt.padding == (1, 1) and nxt.dilation == (1, 1) and nxt.groups == 1 \
                and nxt.padding_mode == "zeros":
            seq._modules[name] = nn.Identity()
            seq._modules[names[i + 1]] = SubPixelConv(nxt)
            counts["subpixel"] += 1
    return counts


def for_inference(generator: nn.Module) -> tuple[nn.Module, dict[str, int]]:
    """An eval-mode copy of ``generator`` with batch norm folded and resize-convs made sub-pixel
    convolutions; returns it and how many of each rewrite were made. Same function in eval mode
    (checked by the export's parity test against the original)."""
    g = copy.deepcopy(generator).eval()
    counts = {"bn_folded": 0, "subpixel": 0}
    for m in list(g.modules()):
        if isinstance(m, nn.Sequential):
            for k, v in _rewrite(m).items():
                counts[k] += v
    return g, counts


__all__ = ["for_inference", "SubPixelConv"]
