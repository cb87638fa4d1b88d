"""Where a time-boxed run's wall-clock goes besides training steps, and what it costs the run.

A `pix2pix train --max-time T` run spends its time on start-up (imports, dataset scan and
verification, palette scan, model build), the steps, and cadence work: sample grids and reports
(every ``sample_every``), checkpoints (every ``checkpoint_every``, plus the last one). This script
times each piece as the loop does it, on a built-in example, and also runs a short time-boxed
training to read the whole-run against the steady-state step rate:

    .venv/bin/python benchmarks/run_overhead.py --arch unet_128 --size 128 --max-time 120

It prints, per piece, CPU seconds and wall seconds (wall matters for disk writes), the
checkpoint's critical-path cost when written in the foreground (the old way) and in the
background (snapshot only, now), and, with --max-time, the whole-run against the steady step
rate (time-weighted over the logged windows after the first).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from pix2pix.checkpoint import PretrainedInfo, save_training_checkpoint
from pix2pix.config import DataConfig, ModelConfig, TrainConfig
from pix2pix.data.examples import make_example
from pix2pix.models import build_discriminator, build_generator
from pix2pix.training import train
from pix2pix.training.background import snapshot
from pix2pix.data.palette import dataset_palette
from pix2pix.training.datasets import build_datasets


def timed(fn):
    c, w = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.process_time() - c, time.perf_counter() - w


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default="unet_128")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--data", default=None, help="dataset (default: the maps example at --size)")
    p.add_argument("--max-time", type=float, default=0, help="also run a time-boxed training this long")
    args = p.parse_args()

    work = Path(tempfile.mkdtemp(prefix="pix2pix-overhead-"))
    data = Path(args.data) if args.data else work / "maps"
    if not args.data:
        make_example("maps", data, size=args.size)
    cfg = TrainConfig(model=ModelConfig(generator=args.arch), data=DataConfig(root=str(data), image_size=args.size),
                      out=str(work / "run"), device="cpu", tensorboard="off")
    out: dict = {"arch": args.arch, "size": args.size, "load_start": os.getloadavg()[0]}
    (train_set, _), c, w = timed(lambda: build_datasets(cfg, verify=False))
    _, cv, wv = timed(lambda: build_datasets(cfg, verify=True))
    out["datasets_s"] = round(c, 2)
    out["verify_cpu_s"] = round(cv - c, 2)
    out["verify_pairs"] = len(train_set)
    pal, c, _ = timed(lambda: dataset_palette(train_set))
    out["palette_cpu_s"] = round(c, 3)
    (g, d), c, _ = timed(lambda: (build_generator(cfg.model), build_discriminator(cfg.model)))
    out["build_cpu_s"] = round(c, 2)
    og = torch.optim.Adam(g.parameters(), 2e-4, fused=True)
    od = torch.optim.Adam(d.parameters(), 2e-4, fused=True)
    for q in [*g.parameters(), *d.parameters()]:
        q.grad = torch.zeros_like(q)
    og.step(), od.step()
    info = PretrainedInfo(model=cfg.model, direction="AtoB", image_size=args.size, palette=pal)
    kw = dict(generator=g, discriminator=d, info=info,
              state={"step": 1, "opt_g": og.state_dict(), "opt_d": od.state_dict()})
    fg = [timed(lambda: save_training_checkpoint(work / "ck", step=i, keep=2, **kw)) for i in range(1, 4)]
    bg = [timed(lambda: snapshot(kw)) for _ in range(3)]
    out["checkpoint_foreground_wall_s"] = round(statistics.median(x[2] for x in fg), 2)
    out["checkpoint_foreground_cpu_s"] = round(statistics.median(x[1] for x in fg), 2)
    out["checkpoint_background_critical_s"] = round(statistics.median(x[2] for x in bg), 2)

    if args.max_time:
        t = time.perf_counter()
        run = train(dataclasses.replace(cfg, max_time=args.max_time, log_every=10), progress=False)
        wall = time.perf_counter() - t
        lines = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
        # The run's own last step: a time-boxed run stops between two log steps, so the last
        # logged line (a multiple of log_every) undercounts it by up to log_every - 1 steps.
        steps = run.step
        # The steady rate: steps per second over the logged windows after the first (which holds
        # the first steps' kernel set-up). Time-weighted (the windows' steps over their summed
        # seconds), not the median of the windows' rates: the rates of 10-step windows scatter by
        # ±10% on this VM, and the median of a rate overstates the rate of the time it summarises.
        windows = list(zip(lines[1:], lines[:-1]))
        if windows:
            steady = (sum(a["step"] - b["step"] for a, b in windows)
                      / sum((a["step"] - b["step"]) / a["it_per_s"] for a, b in windows))
            median = statistics.median(a["it_per_s"] for a, _ in windows)
        else:
            steady = median = float("nan")
        out.update(run_wall_s=round(wall, 1), run_steps=steps, run_it_s=round(steps / wall, 3),
                   steady_it_s=round(steady, 3), ratio=round(steps / wall / steady, 3),
                   median_window_it_s=round(median, 3), ratio_to_median=round(steps / wall / median, 3))
        print(f"time-boxed run: {steps} steps in {wall:.1f} s = {steps / wall:.3f} it/s whole-run; "
              f"steady (time-weighted over the logged windows after the first) {steady:.3f} it/s; "
              f"ratio {steps / wall / steady:.3f} (to the median window rate {median:.3f}: "
              f"{steps / wall / median:.3f})")
    out["load_end"] = os.getloadavg()[0]
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
