"""How far can any model of the built-in task get in L1? Simple predictors on the held-out band.

    python scripts/builtin_bounds.py DIR [--split test]

DIR is a `scripts/train_builtin.py --work` folder (its ``data/`` and ``palette.npy``). Each
predictor is fitted on the training band's pixels and scored on the held-out band, L1 in [-1, 1]
units: the mean and the median satellite colour of each painted colour (the lookups), a per-pixel
linear model of the painted colour and the blurred fractions of each colour around the pixel
(sigma 3, 8, 24 px), and an oracle that knows each held-out tile's own median colour per painted
colour (what a model could reach if the input told it the tile's climate).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from PIL import Image


def load(folder: Path, palette: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, H, W) painted-colour labels and (N, H, W, 3) satellite tiles in [-1, 1]."""
    labels, targets = [], []
    for path in sorted(folder.glob("*.png")):
        pair = np.asarray(Image.open(path).convert("RGB"))
        w = pair.shape[1] // 2
        labels.append(((pair[:, :w, None].astype(np.float32) - palette) ** 2).sum(-1).argmin(-1))
        targets.append(pair[:, w:].astype(np.float32) / 127.5 - 1)
    return np.stack(labels), np.stack(targets)


def context_design(labels: np.ndarray, k: int) -> np.ndarray:
    """(pixels, k * (3k + 1)): the one-hot colour times (blurred fractions at 3 scales, 1)."""
    onehot = np.eye(k, dtype=np.float32)[labels]
    blurred = [np.stack([cv2.GaussianBlur(o, (0, 0), s, borderType=cv2.BORDER_REFLECT) for o in onehot])
               for s in (3, 8, 24)]
    ctx = np.concatenate(blurred + [np.ones(labels.shape + (1,), np.float32)], -1)
    return (onehot[..., :, None] * ctx[..., None, :]).reshape(-1, k * ctx.shape[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("work", type=Path)
    ap.add_argument("--split", default="test")
    args = ap.parse_args()
    palette = np.load(args.work / "palette.npy").astype(np.float32)
    k = len(palette)
    lab_tr, y_tr = load(args.work / "data" / "train", palette)
    lab, y = load(args.work / "data" / args.split, palette)
    mean = np.stack([y_tr[lab_tr == c].mean(0) for c in range(k)])
    median = np.stack([np.median(y_tr[lab_tr == c], 0) for c in range(k)])
    rows = np.random.default_rng(0).choice(lab_tr.size, min(400_000, lab_tr.size), replace=False)
    a, b = context_design(lab_tr, k)[rows], y_tr.reshape(-1, 3)[rows]
    weights = np.linalg.solve(a.T @ a + 1e-2 * np.eye(a.shape[1]), a.T @ b)
    oracle = np.zeros_like(y)
    for i in range(len(y)):
        for c in np.unique(lab[i]):
            oracle[i][lab[i] == c] = np.median(y[i][lab[i] == c], 0)
    preds = {"per-colour mean (the lookup)": mean[lab], "per-colour median": median[lab],
             "linear in colour and blurred context": (context_design(lab, k) @ weights).reshape(y.shape),
             "oracle: the tile's own median per colour": oracle}
    for name, pred in preds.items():
        print(f"{name:42s} L1 {np.abs(pred - y).mean():.4f}")


if __name__ == "__main__":
    main()
