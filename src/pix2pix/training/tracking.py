"""Run outputs: a JSON-lines metrics log, sample grids (input | output | target), TensorBoard, W&B."""
from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from ..util.fsutil import atomic_write_bytes, atomic_write_text
from ..util.imageio import array_to_pil
from ..util.ranges import to_unit


class MetricsLog:
    """Appends one JSON object per line to ``path``; survives restarts (resume appends)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lines: Optional[list[dict[str, Any]]] = None

    def write(self, record: dict[str, Any]) -> None:
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                 for k, v in record.items()}
        line = json.dumps(clean)
        with open(self.path, "a") as f:
            f.write(line + "\n")
        if self._lines is not None:
            self._lines.append(json.loads(line))

    def read(self) -> list[dict[str, Any]]:
        """Every record; the file is parsed once, then kept up to date as records are written
        (the report reads the log at every sample step)."""
        if self._lines is None:
            if not self.path.is_file():
                return []
            self._lines = [json.loads(l) for l in self.path.read_text().splitlines() if l.strip()]
        return list(self._lines)


def to_display(images: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] -> (N, H, W, 3) in [0, 1]; gray repeated, extra channels dropped."""
    x = images.detach().float().cpu().clamp(-1, 1)
    x = to_unit(x)
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
    buf = io.BytesIO()
    array_to_pil(grid).save(buf, format="PNG")
    # Renamed into place: a run killed mid-write leaves no torn PNG behind.
    atomic_write_bytes(path, buf.getvalue(), durable=False)
    return path


def truncate_log(path: str | Path, after_step: int) -> None:
    """Drop lines logged after ``after_step`` (a resumed run repeats those steps)."""
    path = Path(path)
    if not path.is_file():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:  # a line torn by a crash mid-write: it belongs to a lost step
            continue
        if isinstance(record, dict) and record.get("step", 0) <= after_step:
            keep.append(line)
    atomic_write_text(path, "".join(line + "\n" for line in keep))


class Tracker:
    """Sends scalars and sample grids to the metrics log, TensorBoard and Weights & Biases.

    TensorBoard ("auto": when the package is installed) writes event files under
    ``RUN_DIR/tensorboard``; no server is started (run ``tensorboard --logdir RUN_DIR`` to look).
    W&B is used only when a project is named; a run id kept in ``RUN_DIR/wandb_id`` makes a
    resumed run continue the same W&B run. Create it on rank 0 only.
    """

    def __init__(self, run_dir: str | Path, *, tensorboard: str = "auto", wandb_project: str = "",
                 config: Optional[dict] = None) -> None:
        self.run_dir = Path(run_dir)
        self.log = MetricsLog(self.run_dir / "metrics.jsonl")
        self.tb = self._tensorboard(tensorboard)
        self.wandb = self._wandb(wandb_project, config or {}) if wandb_project else None

    def _tensorboard(self, mode: str):
        if mode == "off":
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            if mode == "on":
                raise ValueError("tensorboard=on but the tensorboard package is not installed; "
                                 "pip install tensorboard (or pix2pix[tensorboard]), or use "
                                 "--set tensorboard=off") from None
            return None
        return SummaryWriter(log_dir=str(self.run_dir / "tensorboard"))

    def _wandb(self, project: str, config: dict):
        try:
            import wandb
        except ImportError:
            raise ValueError(f"wandb_project={project!r} but the wandb package is not installed; "
                             f"pip install wandb (or pix2pix[wandb])") from None
        id_file = self.run_dir / "wandb_id"
        run_id = id_file.read_text().strip() if id_file.is_file() else wandb.util.generate_id()
        id_file.write_text(run_id + "\n")
        return wandb.init(project=project, id=run_id, resume="allow", dir=str(self.run_dir),
                          name=self.run_dir.name, config=config)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        self.log.write({"step": step, **values})
        numeric = {k: v for k, v in values.items() if isinstance(v, (int, float)) and k != "step"}
        if self.tb is not None:
            for k, v in numeric.items():
                self.tb.add_scalar(k, v, step)
            self.tb.flush()
        if self.wandb is not None:
            self.wandb.log(numeric, step=step)

    def image(self, tag: str, path: str | Path, step: int) -> None:
        """Send a saved grid (PNG) to the trackers that show images."""
        if self.tb is None and self.wandb is None:
            return
        from PIL import Image

        if self.tb is not None:
            self.tb.add_image(tag, np.asarray(Image.open(path).convert("RGB")), step, dataformats="HWC")
            self.tb.flush()
        if self.wandb is not None:
            import wandb

            self.wandb.log({tag: wandb.Image(str(path))}, step=step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
        if self.wandb is not None:
            self.wandb.finish()
