"""Seconds per pix2pix training iteration (D step + G step), per speed variant, beside the compute floor.

    python benchmarks/train_step.py [--repeats 7] [--device cpu] [--compile] [--batches 1,4]
                                    [--cases unet_128,unet_256] [--variants eager,fused,bf16]
                                    [--recipe paper|modern]

``--recipe`` (default: paper, the architecture and losses of the paper) times the step of a named
training recipe (pix2pix.recipes): ``modern``, the default of `pix2pix train`, has a resize-conv
decoder, the AlexNet perceptual loss (its FLOPs count in the floor), a weight EMA updated after
every step and the R1 penalty, as the training loop runs it. A recipe whose R1 is lazy (every
``r1_every``-th D step) is timed as both kinds of step in every round, and its time and floor
are the average over one window: ((r1_every - 1) x the plain step + the R1 step) / r1_every.

The defaults are issue 19's table: unet_128 at 128² and unet_256 at 256², batch 1 and 4, every
variant that applies (bf16 ones only where the CPU computes bf16 natively: elsewhere PyTorch
emulates it, many times slower, and `--precision auto` never picks it).

floor = the iteration's FLOPs (torch.utils.flop_counter) / the 2048^3 matmul rate measured in the
same run (fp32 for fp32 variants, bf16/fp16 for mixed precision): the time the iteration would
take if every FLOP ran at matmul speed.

Variants (each adds to the one before it unless said):
  eager        the plain loop of the core issue: fp32, NCHW, Adam's default kernel
  fused        + Adam's fused kernel (the training loop's default now)
  cl           fused + channels_last memory layout
  bf16         fused + bf16 autocast (--precision bf16)
  bf16_cl      fused + bf16 + channels_last
  fp16         fused + fp16 autocast with loss scaling (GPU)
  fuse_d       fused + one D pass over [real; fake] in the D step (needs --norm instance or none:
               the loop does this by itself when D has no batch norm)
  compile      fused + torch.compile (inductor), with --compile; its compile time is printed
  bf16_compile fused + bf16 + torch.compile, with --compile
  written      fused, with the resize-conv decoder (--recipe modern) run as written: nearest 2x
               upsampling, then the 3x3 convolution (the step before 2026-12-07; the others run
               large inputs as one transposed convolution at the input resolution: ResizeConv2d)
  bf16_written written + bf16 autocast, small maps as convolutions (the step as it was before
               2026-12-07 where --precision auto is bf16)
  bf16_conv    bf16, with the convolutions over small maps as oneDNN's convolution (the others
               run those of at most 64 output pixels as one matrix product: pix2pix.models.small_conv)
  fused_r1each, bf16_r1each
               fused / bf16 with the recipe's R1 on every D step instead of every 16th (recipes
               with R1 only, e.g. --recipe modern)

Each variant's floor counts the FLOPs its own step runs (the resize-conv's two forms differ).

Variants are timed in interleaved rounds (one step of each per round), so a machine whose load
changes over time disturbs them alike; the median and the best round are printed. On a shared
machine the best round is the better estimate of the idle speed.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Callable, Optional

import torch

sys.path.insert(0, os.path.dirname(__file__))
from common import count_flops, matmul_rate, resize_conv_form, small_conv_form  # noqa: E402

from pix2pix.config import ModelConfig, TrainConfig, apply_overrides  # noqa: E402
from pix2pix.models import build_discriminator, build_generator  # noqa: E402
from pix2pix.recipes import RECIPES, recipe_overrides  # noqa: E402
from pix2pix.training.ema import EMA  # noqa: E402
from pix2pix.training.perceptual import build_perceptual  # noqa: E402
from pix2pix.training.step import StepConfig, train_step  # noqa: E402
from pix2pix.util.precision import cpu_flags, cpu_native  # noqa: E402

CASES = {"unet_256": ("unet_256", 256), "unet_128": ("unet_128", 128)}
# name: (fused Adam, channels_last, autocast dtype, compile, one D pass, resize-conv as written,
#        small maps as oneDNN convolutions in bf16 steps)
VARIANTS = {
    "eager": (False, False, None, False, False, False, False),
    "fused": (True, False, None, False, False, False, False),
    "cl": (True, True, None, False, False, False, False),
    "bf16": (True, False, torch.bfloat16, False, False, False, False),
    "bf16_cl": (True, True, torch.bfloat16, False, False, False, False),
    "fp16": (True, False, torch.float16, False, False, False, False),
    "fuse_d": (True, False, None, False, True, False, False),
    "compile": (True, False, None, True, False, False, False),
    "bf16_compile": (True, False, torch.bfloat16, True, False, False, False),
    "written": (True, False, None, False, False, True, False),
    "bf16_written": (True, False, torch.bfloat16, False, False, True, True),
    "bf16_conv": (True, False, torch.bfloat16, False, False, False, True),
    # The recipe's R1 on every D step (as before 2026-12-07, night), for recipes that have R1.
    "fused_r1each": (True, False, None, False, False, False, False),
    "bf16_r1each": (True, False, torch.bfloat16, False, False, False, False),
}
# Config overrides of a variant, on top of the recipe's.
VARIANT_OVERRIDES = {"fused_r1each": ["r1_every=1"], "bf16_r1each": ["r1_every=1"]}


def make_step(arch: str, size: int, batch: int, device: str, fused: bool, channels_last: bool,
              amp, compiled: bool, fuse_d: bool, written: bool = False, small_as_conv: bool = False,
              norm: str = "batch", recipe: str = "paper", base_channels: int | None = None,
              sync: bool = True, overrides: tuple[str, ...] = ()) -> Callable[[], None]:
    """One training iteration of ``recipe`` as the loop runs it, on fixed random (batch, 3, size,
    size) pairs; ``base_channels`` sets G's and D's width (default: the config's); ``sync``: wait
    for the GPU at the end of each call (off where the caller times many calls between syncs)."""
    torch.manual_seed(0)
    width = {"base_channels": base_channels, "d_base_channels": base_channels} if base_channels else {}
    train_cfg = apply_overrides(TrainConfig(model=ModelConfig(generator=arch, norm=norm, **width)),
                                recipe_overrides(recipe) + list(overrides))
    cfg = train_cfg.model
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    g = build_generator(cfg).to(device, memory_format=fmt)
    d = build_discriminator(cfg).to(device, memory_format=fmt)
    # fused=None is Adam's default: the per-tensor loop on CPU, multi-tensor (foreach) on CUDA.
    og = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999), fused=fused or None)
    od = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999), fused=fused or None)
    a = (torch.rand(batch, 3, size, size, device=device) * 2 - 1).contiguous(memory_format=fmt)
    b = (torch.rand(batch, 3, size, size, device=device) * 2 - 1).contiguous(memory_format=fmt)
    scaler = torch.amp.GradScaler(device) if amp == torch.float16 else None
    g_run, d_run, d_frozen = g, d, d
    if compiled:
        g_run, d_run, d_frozen = torch.compile(g), torch.compile(d), torch.compile(d)
    step_cfg = StepConfig(amp_dtype=amp, fuse_d=fuse_d, perceptual_weight=train_cfg.perceptual_weight,
                          r1_weight=train_cfg.r1_weight, r1_every=train_cfg.r1_every)
    perceptual = build_perceptual(device=device) if train_cfg.perceptual_weight > 0 else None
    ema = EMA(g, train_cfg.ema) if train_cfg.ema > 0 else None
    count = [0]

    def step(r1: Optional[bool] = None) -> None:
        """One iteration. ``r1`` True/False: one that does/does not carry the lazy R1 penalty;
        None: as the training loop runs them, by the count of calls (every r1_every-th has it)."""
        # A class attribute, set on every call: the variants' steps are interleaved.
        resize_conv_form("written" if written else "chosen")
        small_conv_form("conv" if small_as_conv else "chosen")
        index = count[0] if r1 is None else (step_cfg.r1_window - 1 if r1 else 0)
        train_step(g_run, d_run, og, od, a, b, step_cfg, scaler=scaler, frozen_discriminator=d_frozen,
                   perceptual=perceptual, step=index)
        count[0] += 1
        if ema is not None:
            ema.update(g, count[0])
        if sync and device == "cuda":
            torch.cuda.synchronize()

    step.r1_every = step_cfg.r1_window
    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=7, help="interleaved timing rounds")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--cases", default="unet_128,unet_256", help=f"comma list of {', '.join(CASES)}")
    ap.add_argument("--batches", default="1,4", help="comma list of batch sizes, e.g. 1,16 on a GPU")
    ap.add_argument("--variants", default=None, help="comma list (default: all that apply)")
    ap.add_argument("--compile", action="store_true", help="include the torch.compile variants")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads before timing")
    ap.add_argument("--norm", default="batch", help="batch (the paper's), instance or none")
    ap.add_argument("--recipe", default="paper", choices=list(RECIPES),
                    help="training recipe whose step is timed (modern: the default of pix2pix train)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = args.device
    recipe_has_r1 = apply_overrides(TrainConfig(), recipe_overrides(args.recipe)).r1_weight > 0
    names = args.variants.split(",") if args.variants else [
        n for n in VARIANTS if (args.compile or not VARIANTS[n][3]) and (n != "fp16" or dev == "cuda")
        and (n != "fuse_d" or args.norm != "batch")
        and (VARIANTS[n][2] != torch.bfloat16 or dev != "cpu" or cpu_native("bf16", cpu_flags()))
        and (n not in VARIANT_OVERRIDES or recipe_has_r1)]
    if "fuse_d" in names and args.norm == "batch":
        ap.error("fuse_d mixes real and fake in one batch-norm batch; use --norm instance")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        ap.error(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    rates = {None: matmul_rate(device=dev)}
    for dtype in {VARIANTS[n][2] for n in names} - {None}:
        rates[dtype] = matmul_rate(device=dev, dtype=dtype)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    if dev == "cpu" and not args.variants and not cpu_native("bf16", cpu_flags()):
        print("bf16 variants left out: this CPU has no AVX512-BF16/AMX-BF16 (name them in --variants to insist)")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {dev}, "
          f"load average {load:.1f} on {os.cpu_count()} cores")
    print("2048^3 matmul: " + ", ".join(f"{'fp32' if k is None else str(k).split('.')[-1]} "
                                         f"{v / 1e9:.1f} GFLOP/s" for k, v in rates.items()))
    for case in args.cases.split(","):
        arch, size = CASES[case]
        for batch in map(int, args.batches.split(",")):
            steps, setup = {}, {}
            for n in names:
                t = time.perf_counter()
                steps[n] = make_step(arch, size, batch, dev, *VARIANTS[n], norm=args.norm, recipe=args.recipe,
                                     overrides=tuple(VARIANT_OVERRIDES.get(n, ())))
                steps[n](r1=False)  # first call: compiles where asked, allocates everything
                setup[n] = time.perf_counter() - t
                steps[n](r1=False)
                if steps[n].r1_every > 1:
                    steps[n](r1=True)  # the lazy R1 step's own first call
            # Lazy R1: both kinds of step are timed every round and averaged over one window.
            window = {n: steps[n].r1_every for n in names}

            def per_window(n: str, plain: float, with_r1: float) -> float:
                return ((window[n] - 1) * plain + with_r1) / window[n]

            flops = {n: count_flops(lambda: steps[n](r1=False)) for n in names}
            flops = {n: per_window(n, flops[n], count_flops(lambda: steps[n](r1=True)))
                     if window[n] > 1 else flops[n] for n in names}
            times: dict[str, list[float]] = {n: [] for n in names}
            for _ in range(args.repeats):
                for n in names:
                    t = time.perf_counter()
                    steps[n](r1=False)
                    seconds = time.perf_counter() - t
                    if window[n] > 1:
                        t = time.perf_counter()
                        steps[n](r1=True)
                        seconds = per_window(n, seconds, time.perf_counter() - t)
                    times[n].append(seconds)
                # The floor's matmul rate is sampled in the same rounds (best kept), so a busy
                # machine does not make the floor look slower than the steps it is compared with.
                for dtype in rates:
                    rates[dtype] = max(rates[dtype], matmul_rate(device=dev, dtype=dtype, repeats=2))
            base = statistics.median(times[names[0]]), min(times[names[0]])
            lazy = sorted({w for w in window.values() if w > 1})
            print(f"\n{arch}+patch70 ({args.norm} norm, recipe {args.recipe}"
                  f"{', lazy R1 averaged over ' + str(lazy[0]) + ' steps' if lazy else ''}) {size}px batch {batch}: "
                  + "/".join(f"{f / 1e9:.1f}" for f in sorted(set(flops.values()))) + " GFLOP/iteration; "
                  "best matmul rates in the rounds: " + ", ".join(
                      f"{'fp32' if k is None else str(k).split('.')[-1]} {v / 1e9:.0f} GFLOP/s"
                      for k, v in rates.items()))
            print(f"{'variant':<14}{'s/it med':>9}{'s/it best':>10}{'it/s':>7}{'floor s':>9}"
                  f"{'x floor':>8}{'speed-up med':>13}{'best':>6}{'1st call s':>11}")
            for n in names:
                med, best = statistics.median(times[n]), min(times[n])
                floor = flops[n] / rates[VARIANTS[n][2]]
                print(f"{n:<14}{med:>9.3f}{best:>10.3f}{1 / med:>7.2f}{floor:>9.3f}{best / floor:>8.2f}"
                      f"{base[0] / med:>12.2f}x{base[1] / best:>5.2f}x{setup[n]:>11.1f}")


if __name__ == "__main__":
    main()
