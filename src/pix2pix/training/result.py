"""What a training run hands back: where it is, how far it got and why it stopped."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

# finished: the whole lr schedule ran; max_steps: stopped at cfg.max_steps before its end;
# time_limit: cfg.max_time ran out; interrupted: a signal (Ctrl-C, SIGTERM); diverged: a NaN/inf loss.
StopReason = Literal["finished", "max_steps", "time_limit", "interrupted", "diverged"]


@dataclass(frozen=True)
class TrainResult:
    """The outcome of ``train()``. ``resumable`` runs stopped early with a checkpoint at ``step``
    (``pix2pix train --resume --out RUN_DIR`` continues them); a diverged one resumes from its last
    good ``checkpoint``, with a lower lr.

    It also behaves as the run directory's path (``os.fspath``, ``result / "metrics.jsonl"``,
    ``str``), as ``train()``'s return value was before this class existed.
    """

    run_dir: Path
    step: int
    total_steps: int
    stopped: StopReason
    # The checkpoint holding the model at ``step`` (None: diverged before any checkpoint).
    checkpoint: Optional[Path] = None
    # The last logged losses (averaged over processes), e.g. {"loss/g_l1": 0.21}.
    metrics: dict[str, float] = field(default_factory=dict)
    # RUN_DIR/best when validation kept a best checkpoint.
    best: Optional[Path] = None

    @property
    def resumable(self) -> bool:
        """Stopped early (time budget, signal) with its state saved at ``step``."""
        return self.stopped in ("time_limit", "interrupted")

    def __fspath__(self) -> str:
        return os.fspath(self.run_dir)

    def __truediv__(self, other: str | os.PathLike) -> Path:
        return self.run_dir / other

    def __str__(self) -> str:
        return str(self.run_dir)
