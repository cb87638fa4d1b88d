"""Test-time normalisation of batch-norm models trained at batch 1: running statistics (eval mode,
deterministic) vs each image's own statistics (``--batch-stats``, the paper's test mode).

Scores every model on a held-out split both ways, at batch 1, with L1, PSNR, SSIM, LPIPS-alex
and LPIPS-vgg (no timing, so it may run on a busy machine):

    OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python benchmarks/batch_stats.py \\
        --data bench-recipes/data/maps128 --models bench-recipes/runs/seed0/maps/paper,...

A model without batch norm gives the same numbers both ways (and is reported as such).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from recipes import COLUMNS, score  # noqa: E402  (the same five scores as the recipe ablation)

from pix2pix.data import Jitter, PairedDataset, scan_pairs  # noqa: E402
from pix2pix.inference.translator import Translator  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", required=True, help="comma list of model/run/checkpoint directories")
    p.add_argument("--data", required=True, help="dataset folder (with the split inside)")
    p.add_argument("--split", default="test")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    torch.set_num_threads(1)
    test_set = PairedDataset(scan_pairs(Path(args.data), args.split),
                             jitter=Jitter("none", args.size, args.size, False), train=False)
    rows = {}
    print("| model | test-time statistics | " + " | ".join(COLUMNS) + " |")
    print("|---|---|" + "---|" * len(COLUMNS))
    for model in args.models.split(","):
        rows[model] = {}
        for mode, batch_stats in (("running (eval)", False), ("batch (--batch-stats)", True)):
            translator = Translator.from_pretrained(model, device="cpu", batch_stats=batch_stats)
            s = score(translator, test_set)
            rows[model][mode] = s
            print(f"| {model} | {mode} | " + " | ".join(f"{s[c]:.4f}" for c in COLUMNS) + " |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"split": args.split, "data": args.data, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
