"""A U-Net's convolutions over small maps, as oneDNN's convolution and as one matrix product
(pix2pix.models.small_conv), forward + backward, per layer of the default recipe's unet_128 and
unet_256 at their preset sizes, width 64:

    python benchmarks/small_conv.py [--batch 1] [--precisions fp32,bf16] [--rounds 3] [--repeats 4]

Encoder layers: the 4x4 stride-2 convolutions whose output has at most 8x8 pixels; decoder layers:
the resize-conv's 3x3 convolution of the nearest-upsampled map, as `ResizeConv2d` runs small
inputs. Milliseconds per forward + backward (gradients for the input, the weights and the bias),
best of the rounds, the two forms interleaved; ``bf16`` runs the forward under bf16 autocast and is
left out where the CPU has no native bf16. The ``chosen`` column is the form a bf16 training step
takes for that shape (``MATMUL_MAX_PIXELS``: output pixels, batch x H x W); fp32 steps always take
the convolution.
"""
from __future__ import annotations

import argparse
import os

import torch
import torch.nn.functional as F
from common import forward_backward, timed

from pix2pix.models.small_conv import MATMUL_MAX_PIXELS, conv2d_as_matmul, out_side
from pix2pix.models.unet import level_channels
from pix2pix.util.precision import cpu_flags, cpu_native

NETS = (("unet_128", 7, 128), ("unet_256", 8, 256))


def layers(depth: int, size: int, base: int = 64, max_side: int = 8) -> list[tuple[str, int, int, int, int, int, int]]:
    """(kind, C_in, C_out, input side, kernel, stride, padding) of the convolutions whose output
    side is at most ``max_side``: the encoder's, then the decoder's (innermost first)."""
    out = []
    for level in range(1, depth):
        side = size >> level  # the input side of encoder level `level`
        if side // 2 <= max_side:
            out.append(("enc", level_channels(base, level - 1), level_channels(base, level), side, 4, 2, 1))
    for level in range(depth - 1, 0, -1):
        side = size >> level  # the upsampled input side of this decoder level (2x its input)
        if side <= max_side:
            c_in = level_channels(base, level) * (1 if level == depth - 1 else 2)
            out.append(("dec", c_in, level_channels(base, level - 1), side, 3, 1, 1))
    return out


def time_form(x, w, b, stride, padding, matmul: bool, amp, repeats: int) -> float:
    conv = conv2d_as_matmul if matmul else F.conv2d
    return timed(lambda: forward_backward(lambda: conv(x, w, b, stride, padding), amp), repeats, warmup=0)[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=4)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    precisions = [p for p in args.precisions.split(",") if p == "fp32" or cpu_native(p, cpu_flags())]
    limit = MATMUL_MAX_PIXELS
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, "
          f"load average {os.getloadavg()[0]:.2f}; matmul up to {limit} output pixels; {', '.join(precisions)}")
    print(f"{'net':<9}{'layer':>26}" + "".join(f"{p + ' conv':>11}{p + ' mm':>10}{'gain':>6}" for p in precisions)
          + "  chosen")
    totals: dict = {}
    for name, depth, size in NETS:
        for kind, c_in, c_out, side, k, s, p in layers(depth, size):
            torch.manual_seed(0)
            x = torch.randn(args.batch, c_in, side, side, requires_grad=True)
            w = (torch.randn(c_out, c_in, k, k) / (c_in * k * k) ** 0.5).requires_grad_()
            b = torch.zeros(c_out, requires_grad=True)
            side_out = out_side(side, k, s, p)
            chosen = args.batch * side_out * side_out <= limit
            row = f"{name:<9}{f'{kind} {c_in}->{c_out} {side}²->{side_out}²':>26}"
            for prec in precisions:
                amp = torch.bfloat16 if prec == "bf16" else None
                best = {False: float("inf"), True: float("inf")}
                for _ in range(args.rounds):
                    for form in (False, True):
                        best[form] = min(best[form], time_form(x, w, b, s, p, form, amp, args.repeats))
                t = totals.setdefault((name, prec), [0.0, 0.0])
                t[0] += best[False]
                t[1] += best[chosen and prec == "bf16"]
                row += f"{best[False] * 1e3:>11.2f}{best[True] * 1e3:>10.2f}{best[False] / best[True]:>6.2f}"
            print(row + f"  {'matmul' if chosen else 'conv'}")
    for (name, prec), (conv, chosen) in totals.items():
        print(f"{name} {prec}: these layers forward + backward, all as convolutions {conv * 1e3:.0f} ms, "
              f"as chosen {chosen * 1e3:.0f} ms ({conv / chosen:.2f}x)")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
