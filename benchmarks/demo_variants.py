"""`make demo`'s training run with config variants, each in the demo's own time cap, in turns.

Each variant runs ``run_demo`` exactly as `make demo` does (same data, same cap, both threads),
with extra ``--set``-style overrides; the rounds interleave the variants so a slow spell of the
machine hits them alike. Prints steps, held-out L1 (and its distance below the mean colour) and
LPIPS per run, with the load average before and after each.

    python benchmarks/demo_variants.py --work /tmp/dv --seeds 0 1 \\
        --variant base= --variant lr5e-4=lr=5e-4 --variant w16=model.base_channels=16

One setting is the benchmark's own, not a config field: ``resize_conv=written`` runs the
resize-conv decoder as written (nearest 2x upsampling, then the 3x3 convolution), as training
did before 2026-12-07 (pix2pix.models.resize_conv.ResizeConv2d).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
from pathlib import Path

from common import resize_conv_form
from pix2pix.demo import TRAIN_BUDGET_S, run_demo

WRITTEN = "resize_conv=written"


def _variant(text: str) -> tuple[str, list[str]]:
    name, _, sets = text.partition("=")
    return name, [s for s in sets.split(",") if s] if sets else []


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", required=True, help="scratch folder (the example data is made once here)")
    ap.add_argument("--variant", action="append", type=_variant, required=True,
                    help="NAME=key=value,key=value (NAME= alone: the demo as it is)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--max-time", type=float, default=TRAIN_BUDGET_S)
    ap.add_argument("--json", help="write every run's result here")
    args = ap.parse_args()
    work = Path(args.work)
    data = work / "data"
    rows = []
    for seed in args.seeds:
        for name, sets in args.variant:
            out = work / f"{name}_s{seed}"
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            if data.is_dir():  # the same example for every run, made once
                (out / "data").symlink_to(data.resolve())
            resize_conv_form("written" if WRITTEN in sets else "chosen")
            before = os.getloadavg()[0]
            res = run_demo(out, seed=seed, progress=False, overrides=[s for s in sets if s != WRITTEN],
                           max_time=args.max_time)
            after = os.getloadavg()[0]
            if not data.is_dir():
                shutil.move(str(out / "data"), data)
                (out / "data").symlink_to(data.resolve())
            mean = res["baselines_l1"]["mean_colour"]
            row = {"variant": name, "sets": sets, "seed": seed, "steps": res["steps"],
                   "l1": res["test"]["l1"], "below_mean": 1 - res["test"]["l1"] / mean,
                   "lpips": res["test"].get("lpips"), "seconds": res["seconds"],
                   "load_before": round(before, 2), "load_after": round(after, 2)}
            rows.append(row)
            print(f"{name:>12} seed {seed}: {row['steps']:5d} steps  L1 {row['l1']:.4f} "
                  f"({100 * row['below_mean']:.1f}% below the mean colour)  LPIPS {row['lpips']}  "
                  f"{row['seconds']:.0f} s  load {before:.2f} -> {after:.2f}", flush=True)
    print("\nmean over seeds:")
    for name, _ in args.variant:
        mine = [r for r in rows if r["variant"] == name]
        print(f"{name:>12}: steps {statistics.mean(r['steps'] for r in mine):.0f}  "
              f"L1 {statistics.mean(r['l1'] for r in mine):.4f}  "
              f"below mean {100 * statistics.mean(r['below_mean'] for r in mine):.1f}%  "
              f"LPIPS {statistics.mean(r['lpips'] or 0 for r in mine):.4f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
