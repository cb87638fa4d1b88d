"""Validation during training, and ``best/``: the pretrained model with the best validation score."""
from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Optional

from torch import nn

from ..checkpoint import PretrainedInfo, save_pretrained
from ..config import METRICS
from ..inference.translator import Translator
from ..metrics.quality import Evaluator, evaluate

log = logging.getLogger(__name__)


def validate(generator: nn.Module, info: PretrainedInfo, dataset, evaluator: Evaluator, *,
             device, max_items: int) -> dict[str, float]:
    """Score ``generator`` as it will test (no dropout; batch norm with the statistics
    ``info.model.test_statistics`` names) on up to ``max_items`` pairs.

    Leaves the generator in eval mode; the caller puts a training generator back into train mode.
    """
    translator = Translator(generator, info, device=device)
    return evaluate(translator, dataset, max_items=max_items, evaluator=evaluator)


def check_best_metric(val_every: int, best_metric: str) -> None:
    """Raise ValueError when validation would pick ``best/`` by LPIPS or FID but their weights are
    missing: a run otherwise fails after its setup, and ``--dry-run`` passes. Looks only for
    the files (cheap); loading them is validation's job."""
    if not val_every or best_metric not in ("lpips", "fid"):
        return
    from ..metrics.fid import FIDWeightsMissing, find_fid_weights
    from ..metrics.lpips import LPIPSWeightsMissing, find_lpips_weights

    try:
        if best_metric == "fid":
            find_fid_weights()
        else:
            find_lpips_weights("alex")  # the net validation scores with (Evaluator's default)
    except (LPIPSWeightsMissing, FIDWeightsMissing) as e:
        raise ValueError(f"best_metric {best_metric!r} cannot be computed: {e}; or pick another "
                         f"--best-metric") from None


class BestKeeper:
    """Keeps ``RUN_DIR/best/`` (a pretrained directory plus ``best.json``) at the best score so far.

    On resume the previous best is read back from ``best.json``, so a worse score never replaces it.
    """

    def __init__(self, run_dir: str | Path, metric: str) -> None:
        if metric not in METRICS:
            raise ValueError(f"best metric {metric!r} is not one of {', '.join(METRICS)}")
        self.dir = Path(run_dir) / "best"
        self.metric = metric
        self.higher = METRICS[metric]
        self.best: Optional[dict] = None
        if (self.dir / "best.json").is_file():
            self.best = json.loads((self.dir / "best.json").read_text())
            if self.best.get("metric") != metric:
                log.warning("best/ was chosen by %s; now choosing by %s, so the next validation "
                            "replaces it", self.best.get("metric"), metric)
                self.best = None

    def better(self, value: float) -> bool:
        if self.best is None:
            return True
        return value > self.best["value"] if self.higher else value < self.best["value"]

    def update(self, step: int, results: dict, generator: nn.Module, info: PretrainedInfo) -> bool:
        """Replace ``best/`` when ``results[metric]`` beats the best so far; True if it did."""
        value = results.get(self.metric)
        if value is None or not self.better(value):
            return False
        record = {"metric": self.metric, "value": value, "step": step,
                  "results": {k: v for k, v in results.items() if isinstance(v, (int, float))}}
        tmp = self.dir.with_name(".best.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        save_pretrained(generator, info, tmp)
        (tmp / "best.json").write_text(json.dumps(record, indent=2) + "\n")
        # Swap in two renames, so a crash leaves either the old or the new best, never a mix.
        old = self.dir.with_name(".best.old")
        shutil.rmtree(old, ignore_errors=True)
        if self.dir.exists():
            os.replace(self.dir, old)
        os.replace(tmp, self.dir)
        shutil.rmtree(old, ignore_errors=True)
        self.best = record
        log.info("best/ is now step %d (%s %.5g)", step, self.metric, value)
        return True
