"""fp32 against bf16 autocast for one training step on this CPU (process CPU time, 1 thread,
interleaved, median after a warm-up): the measurement behind ``--precision auto``.

    python benchmarks/precision.py [--arch unet_256] [--base 32] [--reps 5]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from pix2pix.config import ModelConfig
from pix2pix.models import build_discriminator, build_generator
from pix2pix.util.precision import cpu_flags, cpu_native, resolve_precision
from pix2pix.training.step import StepConfig, train_step


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="unet_256")
    ap.add_argument("--base", type=int, default=32)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    cfg = ModelConfig(generator=args.arch, base_channels=args.base, d_base_channels=args.base)
    g, d = build_generator(cfg), build_discriminator(cfg)
    og = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
    od = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
    a, b = torch.rand(2, 1, 3, 256, 256) * 2 - 1
    times: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for _ in range(args.reps + 1):
        for name, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
            step = StepConfig("vanilla", 1.0, 100.0, True, amp_dtype=dtype)
            t = time.process_time()
            train_step(g, d, og, od, a, b, step)
            times[name].append(time.process_time() - t)
    flags = cpu_flags()
    print(f"CPU bf16 native: {cpu_native('bf16', flags)}; --precision auto -> "
          f"{resolve_precision('auto', torch.device('cpu'))}")
    for name, v in times.items():
        print(f"{name}: {statistics.median(v[1:]):.3f} CPU s per step (median of {len(v) - 1}; "
              f"{', '.join(f'{x:.3f}' for x in v)})")


if __name__ == "__main__":
    main()
