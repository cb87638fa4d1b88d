"""The built-in models: ship inside the package, so `pix2pix serve` and the studio work with no
model of one's own and no network.

``BUILTINS`` is the table of them: one entry per model, its folder under ``builtin_models/``
(config.json + generator.safetensors + metrics.json + examples/), the sha256 of its weights and
one line on what to give it. Each is trained by ``scripts/train_builtin.py --example ...`` on a
built-in example; its scores on a held-out split, next to trivial baselines, are in its
``metrics.json`` and in docs/benchmarks.md ("The built-in models").
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PACKAGE_FOLDER = Path(__file__).resolve().parent / "builtin_models"


@dataclass(frozen=True)
class Builtin:
    """One shipped model: ``name`` (its folder and its name in the studio), the sha256 of its
    generator.safetensors, what to give it and what it gives."""

    name: str
    sha256: str
    summary: str
    example: str  # the built-in example (pix2pix.data.examples) it was trained on


BUILTINS: dict[str, Builtin] = {b.name: b for b in (
    Builtin("relief2satellite", "de867106d8f3d599fc5977d1f12692d6aa8ec7a8f5423c36c15d85fb062f5beb",
            "paint a relief map in its palette, get satellite imagery", "relief"),
    Builtin("sketch2photo", "435418988c6acf8b84ff1a4f4f8b6f4a4efe13f4f2119db8f865a048697b6849",
            "draw a pencil sketch in grey on white, get a colour photo", "sketch2photo"),
)}
# The table's first: the model `pix2pix serve` with no --model opens on, `export --web`'s default.
DEFAULT_BUILTIN = next(iter(BUILTINS))


def _entry(name: str) -> Builtin:
    if name not in BUILTINS:
        raise ValueError(f"no built-in model {name!r}; the built-in models are: {', '.join(BUILTINS)}")
    return BUILTINS[name]


def builtin_model_dir(name: str = DEFAULT_BUILTIN) -> Path:
    """The pretrained directory of a built-in model (config.json + generator.safetensors)."""
    folder = PACKAGE_FOLDER / _entry(name).name
    if not (folder / "generator.safetensors").is_file():
        raise FileNotFoundError(f"the built-in model {name} is missing from {folder}: reinstall "
                                f"pix2pix, or pass --model DIR")
    return folder


def verify_builtin(name: str = DEFAULT_BUILTIN) -> str:
    """The weights' sha256; raises ValueError when it is not the one this release shipped."""
    expected, folder = _entry(name).sha256, builtin_model_dir(name)
    digest = hashlib.sha256((folder / "generator.safetensors").read_bytes()).hexdigest()
    if digest != expected:
        raise ValueError(f"built-in model weights in {folder} are corrupt or altered "
                         f"(sha256 {digest}, expected {expected}); reinstall pix2pix")
    return digest


def builtin_metrics(name: str = DEFAULT_BUILTIN) -> dict:
    """Held-out scores, baselines, palette and training facts written by the training script."""
    return json.loads((builtin_model_dir(name) / "metrics.json").read_text())


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


__all__ = ["BUILTINS", "Builtin", "DEFAULT_BUILTIN", "builtin_model_dir", "verify_builtin", "builtin_metrics",
           "paint_relief"]
