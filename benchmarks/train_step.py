"""Seconds per pix2pix training iteration (D step + G step) beside the compute floor.

    python benchmarks/train_step.py [--repeats 5] [--device cpu]

floor = the iteration's FLOPs (torch.utils.flop_counter) / the fp32 2048^3 matmul rate measured in
the same run: the time the iteration would take if every FLOP ran at matmul speed.
"""
from __future__ import annotations

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from common import count_flops, matmul_rate, time_it  # noqa: E402

from pix2pix.config import ModelConfig  # noqa: E402
from pix2pix.models import build_discriminator, build_generator  # noqa: E402
from pix2pix.training.step import StepConfig, train_step  # noqa: E402

CASES = [("unet_256", 256, 1), ("unet_128", 128, 1)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.manual_seed(0)
    rate = matmul_rate(device=args.device)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}")
    print(f"fp32 2048^3 matmul: {rate / 1e9:.1f} GFLOP/s")
    print(f"{'case':<28}{'GFLOP/it':>10}{'s/it':>9}{'floor s':>9}{'x floor':>9}")
    for arch, size, batch in CASES:
        cfg = ModelConfig(generator=arch)
        g, d = build_generator(cfg).to(args.device), build_discriminator(cfg).to(args.device)
        og = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
        od = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
        a = torch.rand(batch, 3, size, size, device=args.device) * 2 - 1
        b = torch.rand(batch, 3, size, size, device=args.device) * 2 - 1

        def step():
            train_step(g, d, og, od, a, b, StepConfig())
            if args.device == "cuda":
                torch.cuda.synchronize()

        flops = count_flops(step)
        sec = time_it(step, repeats=args.repeats)
        floor = flops / rate
        name = f"{arch}+patch70 {size}px b{batch}"
        print(f"{name:<28}{flops / 1e9:>10.1f}{sec:>9.3f}{floor:>9.3f}{sec / floor:>9.2f}")


if __name__ == "__main__":
    main()
