"""The datasets of a training run, built from its TrainConfig: the jittered training split, the
fixed sample set and the validation set."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from ..config import TrainConfig
from ..data import Jitter, PairedDataset, open_split


def build_datasets(cfg: TrainConfig, verify: Optional[bool] = None) -> tuple[PairedDataset, PairedDataset]:
    """The training split (jittered) and a fixed sample set (val split if present, centre crops)."""
    d, m = cfg.data, cfg.model
    verify = d.verify if verify is None else verify
    jitter = Jitter(d.preprocess, d.image_size, d.resolved_load_size, d.flip)
    common = dict(in_channels=m.in_channels, out_channels=m.out_channels, direction=d.direction,
                  seed=cfg.seed)
    train = open_split(d.root, d.train_split, jitter=jitter, train=True, verify=verify, **common)
    if (Path(d.root) / d.val_split).is_dir():
        # A validation split that exists but is broken is an error, not a silent fallback.
        samples = open_split(d.root, d.val_split, jitter=jitter, train=False, verify=verify, **common)
    else:
        samples = PairedDataset(train.pairs, jitter=jitter, train=False, **common)
    return train, samples


def validation_set(cfg: TrainConfig, sample_set: PairedDataset) -> PairedDataset:
    """The val pairs as whole images at the training scale: resized to image_size, or centre
    crops when training crops at native scale (as `pix2pix evaluate --image-size` does)."""
    d = cfg.data
    mode = {"none": "none", "crop": "crop"}.get(d.preprocess, "resize")
    return PairedDataset(sample_set.pairs, jitter=Jitter(mode, d.image_size, d.image_size, False),
                         train=False, in_channels=cfg.model.in_channels,
                         out_channels=cfg.model.out_channels, direction=d.direction)
