"""The resize-conv decoder layer's two forms, forward + backward, per decoder layer of the default
recipe's U-Nets (pix2pix.models.resize_conv.ResizeConv2d):

    python benchmarks/resize_conv.py [--repeats 4] [--rounds 3] [--batch 1] [--threads 2]
                                     [--precision fp32|bf16]

``written``: nearest 2x upsampling, then the 3x3 convolution; ``transposed``: one stride-2 4x4
transposed convolution of the input with the summed taps (its kernel derived from the 3x3 weights
on every call, as in training). Milliseconds per forward + backward (gradients for the input, the
weights and the bias), best of the rounds, the two forms interleaved. The layer switches to the
transposed form at ``ResizeConv2d.transposed_min_pixels`` input pixels (batch x H x W); the
``chosen`` column shows which form it takes for that shape. ``--precision bf16`` runs the forward
under bf16 autocast, as `pix2pix train` does where `--precision auto` picks bf16 (a CPU with
AVX512-BF16 or AMX).
"""
from __future__ import annotations

import argparse
import os

import torch

from common import forward_backward, resize_conv_form, timed
from pix2pix.models.resize_conv import ResizeConv2d
from pix2pix.models.unet import level_channels

# (name, depth, image size): the decoders of unet_128 and unet_256 at their preset sizes, width 64.
NETS = (("unet_128", 7, 128), ("unet_256", 8, 256))


def layers(depth: int, size: int, base: int = 64) -> list[tuple[int, int, int]]:
    """(C_in, C_out, input side) of each decoder resize-conv, innermost first."""
    out = []
    for level in range(depth - 1, -1, -1):
        c_in = level_channels(base, level) * (1 if level == depth - 1 else 2)
        c_out = 3 if level == 0 else level_channels(base, level - 1)
        out.append((c_in, c_out, size >> (level + 1)))
    return out


def time_form(layer: ResizeConv2d, x: torch.Tensor, transposed: bool, repeats: int,
              amp: torch.dtype | None = None) -> float:
    resize_conv_form("transposed" if transposed else "written")
    return timed(lambda: forward_backward(lambda: layer(x), amp), repeats, warmup=0)[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                    help="bf16: the forward under bf16 autocast (CPUs with native bf16)")
    args = ap.parse_args()
    amp = torch.bfloat16 if args.precision == "bf16" else None
    if args.threads:
        torch.set_num_threads(args.threads)
    threshold = ResizeConv2d.transposed_min_pixels
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, {args.precision}, "
          f"load average {os.getloadavg()[0]:.2f}; switch at {threshold} input pixels")
    print(f"{'net':<9}{'layer':>18}{'written ms':>12}{'transposed ms':>15}{'ratio':>7}  chosen")
    totals = {}
    for name, depth, size in NETS:
        for c_in, c_out, side in layers(depth, size):
            torch.manual_seed(0)
            layer = ResizeConv2d(c_in, c_out)
            x = torch.randn(args.batch, c_in, side, side, requires_grad=True)
            best = {True: float("inf"), False: float("inf")}
            for _ in range(args.rounds):
                for form in (False, True):
                    best[form] = min(best[form], time_form(layer, x, form, args.repeats, amp))
            chosen = args.batch * side * side >= threshold
            t = totals.setdefault(name, [0.0, 0.0, 0.0])
            t[0] += best[False]
            t[1] += best[True]
            t[2] += best[chosen]
            print(f"{name:<9}{f'{c_in}->{c_out} @{side}²':>18}{best[False] * 1e3:>12.2f}{best[True] * 1e3:>15.2f}"
                  f"{best[False] / best[True]:>7.2f}  {'transposed' if chosen else 'written'}")
    resize_conv_form("chosen")
    for name, (w, t, c) in totals.items():
        print(f"{name} decoder, forward + backward: written {w * 1e3:.0f} ms, transposed everywhere "
              f"{t * 1e3:.0f} ms, as chosen {c * 1e3:.0f} ms ({w / c:.2f}x less than written)")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
