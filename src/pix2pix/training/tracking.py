"""Run outputs: a JSON-lines metrics log and sample grids (input | output | target)."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..imageio import array_to_pil


class MetricsLog:
    """Appends one JSON object per line to ``path``; survives restarts (resume appends)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict[str, Any]) -> None:
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                 for k, v in record.items()}
        with open(self.path, "a") as f:
            f.write(json.dumps(clean) + "\n")

    def read(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]


def to_display(images: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] -> (N, H, W, 3) in [0, 1]; gray repeated, extra channels dropped."""
    x = images.detach().float().cpu().clamp(-1, 1).add(1).div(2)
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    elif x.shape[1] == 2:
        x = torch.cat([x, x[:, :1]], dim=1)
    return x[:, :3].permute(0, 2, 3, 1).numpy()


def save_grid(rows: list[torch.Tensor], path: str | Path, pad: int = 2) -> Path:
    """Save a grid: one row per sample, one column per tensor in ``rows`` (e.g. input, output, target)."""
    cols = [to_display(t) for t in rows]
    n, h, w, _ = cols[0].shape
    grid = np.ones((n * h + (n - 1) * pad, len(cols) * w + (len(cols) - 1) * pad, 3), np.float32)
    for i in range(n):
        for j, col in enumerate(cols):
            grid[i * (h + pad):i * (h + pad) + h, j * (w + pad):j * (w + pad) + w] = col[i]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    array_to_pil(grid).save(path)
    return path
