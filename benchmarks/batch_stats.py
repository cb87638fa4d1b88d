"""Test-time normalisation of batch-norm models trained at batch 1: running statistics (eval mode,
deterministic) vs each image's own statistics (``--batch-stats``, the paper's test mode).

Scores every model on a held-out split both ways, at batch 1, with L1, PSNR, SSIM, LPIPS-alex
and LPIPS-vgg (no timing, so it may run on a busy machine):

    OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python benchmarks/batch_stats.py \\
        --data bench-recipes/data/maps128 --models bench-recipes/runs/seed0/maps/paper,...

A model without batch norm gives the same numbers both ways (and is reported as such).
``--recalibrate N`` adds a third row: running statistics recomputed for the saved weights (a
cumulative average over N training inputs, dropout off), which tells whether the saved statistics
(at batch 1 and momentum 0.1, about the last ten training images, taken as they are into the
weight average) are what hurts, or running statistics as such.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import copy

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from recipes import COLUMNS, score  # noqa: E402  (the same five scores as the recipe ablation)

from pix2pix.data import Jitter, PairedDataset, scan_pairs  # noqa: E402
from pix2pix.inference.translator import Translator  # noqa: E402


@torch.no_grad()
def recalibrated(generator: nn.Module, inputs: list[torch.Tensor]) -> nn.Module:
    """A copy of ``generator`` whose batch-norm running statistics are the plain average over
    ``inputs`` ((C, H, W) in [-1, 1], one at a time as in training at batch 1), dropout off.

    torch.optim.swa_utils.update_bn does the same with dropout left on, which would shift the
    statistics away from what the deterministic test mode sees."""
    g = copy.deepcopy(generator).train()
    for m in g.modules():
        if isinstance(m, nn.Dropout):
            m.eval()
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # None: a cumulative average, not an exponential one
    for x in inputs:
        g(x[None])
    return g.eval()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", required=True, help="comma list of model/run/checkpoint directories")
    p.add_argument("--data", required=True, help="dataset folder (with the split inside)")
    p.add_argument("--split", default="test")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--json", default=None)
    p.add_argument("--recalibrate", type=int, default=0, metavar="N",
                   help="also score running statistics recomputed on N random training inputs")
    args = p.parse_args()
    torch.set_num_threads(1)
    test_set = PairedDataset(scan_pairs(Path(args.data), args.split),
                             jitter=Jitter("none", args.size, args.size, False), train=False)
    rows = {}
    train_inputs = None
    print("| model | test-time statistics | " + " | ".join(COLUMNS) + " |")
    print("|---|---|" + "---|" * len(COLUMNS))
    for model in args.models.split(","):
        rows[model] = {}
        for mode, batch_stats in (("running (eval)", False), ("batch (--batch-stats)", True)):
            translator = Translator.from_pretrained(model, device="cpu", batch_stats=batch_stats)
            s = score(translator, test_set)
            rows[model][mode] = s
            print(f"| {model} | {mode} | " + " | ".join(f"{s[c]:.4f}" for c in COLUMNS) + " |", flush=True)
        if args.recalibrate:
            if train_inputs is None:
                train_set = PairedDataset(scan_pairs(Path(args.data), "train"),
                                          jitter=Jitter("none", args.size, args.size, False), train=False)
                pick = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(0))
                train_inputs = [train_set[i]["input"] for i in pick[:args.recalibrate].tolist()]
            translator = Translator.from_pretrained(model, device="cpu", batch_stats=False)
            t = Translator(recalibrated(translator.generator, train_inputs), translator.info, device="cpu")
            mode = f"running, recalibrated on {len(train_inputs)}"
            rows[model][mode] = s = score(t, test_set)
            print(f"| {model} | {mode} | " + " | ".join(f"{s[c]:.4f}" for c in COLUMNS) + " |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"split": args.split, "data": args.data, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
