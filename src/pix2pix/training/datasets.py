"""The datasets of a training run, built from its TrainConfig: the jittered training split, the
fixed sample set and the validation set."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from ..config import TrainConfig
from ..data import Jitter, PairedDataset, open_split, scan_pairs
from ..models import generator_multiple
from .preflight import check_geometry


def build_datasets(cfg: TrainConfig, verify: Optional[bool] = None) -> tuple[PairedDataset, PairedDataset]:
    """The training split (jittered) and a fixed sample set (val split if present, centre crops)."""
    d, m = cfg.data, cfg.model
    verify = d.verify if verify is None else verify
    jitter = Jitter(d.preprocess, d.image_size, d.resolved_load_size, d.flip)
    common = dict(in_channels=m.in_channels, out_channels=m.out_channels, direction=d.direction,
                  seed=cfg.seed)
    geometry = dict(preprocess=d.preprocess, image_size=d.image_size,
                    multiple=generator_multiple(m.generator))
    # Every image's header against the crop and the generator first (the split's own check
    # decodes only its first pair).
    check_geometry(scan_pairs(d.root, d.train_split), batch_size=cfg.batch_size,
                   split=f"{d.root}/{d.train_split}", **geometry)
    train = open_split(d.root, d.train_split, jitter=jitter, train=True, verify=verify, **common)
    if (Path(d.root) / d.val_split).is_dir():
        val_pairs = scan_pairs(d.root, d.val_split)
        # The sample grid stacks the first num_samples images: they must share a size.
        n = min(cfg.num_samples, len(val_pairs))
        check_geometry(val_pairs[:n], batch_size=n, split=f"{d.root}/{d.val_split}", **geometry)
        check_geometry(val_pairs, batch_size=1, split=f"{d.root}/{d.val_split}", **geometry)
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
