"""How far can a predictor of the demo's task get on each band? The maps example, band by band.

    python benchmarks/demo_bounds.py DEMO_DIR [--model DEMO_DIR/run]

DEMO_DIR is a `pix2pix demo --out` folder (its ``data/`` holds the maps example: train, the val
band 100W-60W and the test band 60E-100E). For each split, L1 in [-1, 1] units (as `pix2pix
evaluate` reports it) of:

- the mean training map colour (the demo's baseline);
- a per-pixel lookup: the mean map colour of each satellite colour (16 levels per channel) and
  local brightness (the 9x9 mean, 8 levels), fitted on the training band;
- the same lookup fitted on the scored band itself: an oracle that has seen that band's answers,
  so what a colour-to-colour mapping could reach there at best;
- with ``--model``, the trained generator.

A band where even the oracle lookup stays far from the trained model's score on the training band
is one whose map colours the satellite colours do not settle: the gap is in the data, not in the
training.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from pix2pix.data.dataset import DatasetError, load_pair, scan_pairs

LEVELS = 16      # satellite colour levels per channel
BRIGHTNESS = 8   # levels of the 9x9 mean brightness around the pixel
BINS = LEVELS ** 3 * BRIGHTNESS


def load(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(N, H, W, 3) uint8 satellite tiles and (N, H, W, 3) float64 map tiles in [-1, 1]."""
    try:
        pairs = scan_pairs(root, split)  # either layout, as training reads it
    except DatasetError as e:
        sys.exit(f"{e}\n(give a `pix2pix demo --out` folder)")
    if not pairs:
        sys.exit(f"{root}/{split} holds no pairs: give a `pix2pix demo --out` folder")
    a, b = zip(*(load_pair(p) for p in pairs))  # float32 in [0, 1]
    return (np.rint(np.stack(a) * 255).astype(np.uint8),
            np.stack(b).astype(np.float64) * 2 - 1)


def keys(sat: np.ndarray) -> np.ndarray:
    """(N, H, W) lookup bin of each pixel: its quantised colour and local brightness."""
    q = (sat // (256 // LEVELS)).astype(np.int64)
    local = np.stack([cv2.blur(t, (9, 9), borderType=cv2.BORDER_REFLECT) for t in sat.mean(-1, dtype=np.float32)])
    bright = np.clip(local // (256 // BRIGHTNESS), 0, BRIGHTNESS - 1).astype(np.int64)
    return ((q[..., 0] * LEVELS + q[..., 1]) * LEVELS + q[..., 2]) * BRIGHTNESS + bright


def fit(bins: np.ndarray, target: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """(BINS, 3) mean target colour per bin of ``bins`` (from :func:`keys`); ``fallback`` where a
    bin holds no pixel."""
    k = bins.ravel()
    n = np.bincount(k, minlength=BINS).astype(np.float64)
    sums = np.stack([np.bincount(k, weights=target[..., c].ravel(), minlength=BINS) for c in range(3)], 1)
    return np.where(n[:, None] > 0, sums / np.maximum(n, 1)[:, None], fallback).astype(np.float32)


def model_l1(model: str, sat: np.ndarray, target: np.ndarray) -> float:
    """The model's L1 on these tiles, scored by the package's own evaluation (`pix2pix evaluate`)."""
    import torch

    from pix2pix.inference.translator import Translator
    from pix2pix.metrics.quality import evaluate

    def chw(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1), dtype=np.float32))

    tiles = [{"input": chw(x / 127.5 - 1), "target": chw(y)} for x, y in zip(sat, target)]
    return evaluate(Translator.from_pretrained(model, device="cpu"), tiles, metrics=("l1",))["l1"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("demo", type=Path, help="a `pix2pix demo --out` folder")
    ap.add_argument("--model", help="also score this model (a run, checkpoint or pretrained dir)")
    args = ap.parse_args()
    splits = {s: load(args.demo / "data", s) for s in ("train", "val", "test")}
    bins = {s: keys(sat) for s, (sat, _) in splits.items()}  # once per split: the costly part
    mean = splits["train"][1].reshape(-1, 3).mean(0)
    lookup = fit(bins["train"], splits["train"][1], mean)
    print(f"{'split':6s} {'tiles':>5s} {'mean colour':>11s} {'lookup':>15s} {'oracle lookup':>15s}"
          + (f" {'model':>15s}" if args.model else ""))
    for name, (sat, target) in splits.items():
        base = float(np.abs(target - mean).mean())
        scores = [float(np.abs(lookup[bins[name]] - target).mean()),
                  float(np.abs(fit(bins[name], target, mean)[bins[name]] - target).mean())]
        if args.model:
            scores.append(model_l1(args.model, sat, target))
        cells = " ".join(f"{s:.4f} ({1 - s / base:4.0%})".rjust(15) for s in scores)
        print(f"{name:6s} {len(sat):5d} {base:11.4f} {cells}")
    print("L1 in [-1, 1] units; in brackets: how far below the mean colour")


if __name__ == "__main__":
    main()
