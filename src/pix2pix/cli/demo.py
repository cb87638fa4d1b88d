"""`pix2pix demo`: the built-in satellite -> map example, trained and evaluated on this machine."""
from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="train and evaluate on the built-in satellite -> map example")
    p.add_argument("--out", default="demo", help="folder for data, run, metrics and images")
    p.add_argument("--steps", type=int, default=1200, help="training steps (batch 4)")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-time", type=float, default=None,
                   help="cap on training seconds (default 185, so the demo ends in ~4 min on a "
                        "slow or busy machine; 0: no cap)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a training config field, e.g. --set lr=4e-4")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..data.examples import MAP_SPLIT_NAMES
    from ..demo import run_demo

    cap = {} if args.max_time is None else {"max_time": args.max_time or None}
    r = run_demo(args.out, steps=args.steps, seed=args.seed, device=args.device,
                 overrides=args.overrides, **cap)
    t, b = r["test"], r["baselines_l1"]
    capped = f" (time cap: {r['steps_planned']} planned)" if r["steps"] < r["steps_planned"] else ""
    print(f"\n{r['steps']} steps{capped}, {r['seconds']:.0f} s in all ({r['data_seconds']:.0f} s of data setup)")
    print(f"held-out test band ({MAP_SPLIT_NAMES['test']}; {r['test_pairs']} tiles, trained on {r['train_pairs']}):")
    lp = (lambda v: f"   LPIPS {v:.4f}") if "lpips" in t else (lambda v: "")
    print(f"  pix2pix          L1 {t['l1']:.4f}{lp(t.get('lpips'))}   PSNR {t['psnr']:.2f} dB")
    print(f"  output = input   L1 {b['identity']:.4f}{lp(b.get('identity_lpips'))}")
    margin = 100 * (1 - t["l1"] / b["mean_colour"])
    print(f"  mean map colour  L1 {b['mean_colour']:.4f}{lp(b.get('mean_colour_lpips'))}   (pix2pix "
          f"{abs(margin):.0f}% {'below' if margin >= 0 else 'above'} it in L1)")
    if "lpips" not in t:
        print("  (LPIPS: its weights are not installed; `pix2pix evaluate --install-lpips` converts them)")
    v = r["val"]["l1"] / r["val_mean_colour_l1"]
    print(f"the other held-out band ({MAP_SPLIT_NAMES['val']}; {r['val_pairs']} tiles): pix2pix L1 "
          f"{r['val']['l1']:.4f}, {abs(100 * (1 - v)):.0f}% {'below' if v <= 1 else 'above'} its mean map "
          "colour (why the two bands differ: docs/datasets.md)")
    print(f"side by side (input | output | target): {r['grid']}")
    print(f"metrics: {args.out}/metrics.json   model: {r['run_dir']}")
    import os
    import sys

    # The command as this shell can run it (make demo calls .venv/bin/pix2pix).
    exe = os.path.relpath(sys.argv[0]) if os.path.basename(sys.argv[0]) == "pix2pix" else "pix2pix"
    print(f"open the studio: {exe} serve --model {r['run_dir']}   (with no --model it serves the "
          f"built-in models)")
    return 0
