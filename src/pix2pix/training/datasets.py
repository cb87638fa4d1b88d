"""The datasets of a training run, built from its TrainConfig: the jittered training split, the
fixed sample set and the validation set."""
from __future__ import annotations

import logging
import shutil
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Optional

import torch

from ..config import TrainConfig
from ..data import DatasetError, Jitter, PairedDataset, check_pairs, open_split, scan_pairs
from ..data.cache import cache_folder, open_cache
from ..data.quantize import CacheUnsupported
from ..models import generator_multiple
from .preflight import check_geometry

log = logging.getLogger(__name__)


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
        if cfg.val_every:
            # Scores on pairs the model trains on rise with memorising: say so, or best/ looks
            # like a held-out choice.
            log.warning("%s has no %s/ split: validation (--val-every) scores training pairs, so "
                        "best/ is the model that fits them best, not the one that generalises "
                        "best. Hold some pairs out with `pix2pix data split`", d.root, d.val_split)
    return train, samples


class DecodeCheck:
    """The full decode check of the run's pairs (every file read to its end), in a thread.

    The check costs about a second per thousand 128² pairs, mostly in the image decoders, which
    release the GIL; a run starts it, builds its models and optimisers meanwhile (the first torch
    optimiser alone imports ``torch._dynamo``, ~1.4 s of Python) and calls :meth:`result` before it
    writes anything or takes a step, so a broken file still stops the run before training with the
    same :class:`DatasetError`.
    """

    def __init__(self, *datasets: PairedDataset) -> None:
        pairs = list(dict.fromkeys(p for ds in datasets for p in ds.pairs))
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pix2pix-verify")
        self._future: Future = self._pool.submit(check_pairs, pairs)
        self._pool.shutdown(wait=False)

    def result(self) -> None:
        """Wait for the check; raise its DatasetError (every broken pair listed) if any."""
        self._future.result()


def validation_set(cfg: TrainConfig, sample_set: PairedDataset) -> PairedDataset:
    """The val pairs as whole images at the training scale: resized to image_size, or centre
    crops when training crops at native scale (as `pix2pix evaluate --image-size` does)."""
    d = cfg.data
    mode = {"none": "none", "crop": "crop"}.get(d.preprocess, "resize")
    return PairedDataset(sample_set.pairs, jitter=Jitter(mode, d.image_size, d.image_size, False),
                         train=False, in_channels=cfg.model.in_channels,
                         out_channels=cfg.model.out_channels, direction=d.direction)


def _auto(switch: str, device: torch.device) -> bool:
    return switch == "on" or (switch == "auto" and device.type == "cuda")


def uses_cache(cfg: TrainConfig, device: torch.device) -> bool:
    """Whether the run reads its training split through the decode-once cache."""
    return _auto(cfg.data.cache, device)


def fast_loading(train_set: PairedDataset, cfg: TrainConfig, device: torch.device, *,
                 build: bool = True) -> PairedDataset:
    """The training split with the loader levers of ``cfg.data`` applied: the decode-once cache
    (:mod:`pix2pix.data.cache`; built or rebuilt here when ``build``, else only used when valid)
    and the uint8 items whose jitter runs on ``device`` (:func:`pix2pix.data.apply_batch`).

    "auto" means on for a GPU: on a CPU the step dwarfs decoding, and the cache would take disk
    space for nothing. The items are the same either way (bit-identical on the CPU).
    """
    d = cfg.data
    cache = None
    if uses_cache(cfg, device):
        folder = cache_folder(d.root, d.train_split)
        max_bytes = None
        if d.cache == "auto":
            folder.parent.mkdir(parents=True, exist_ok=True)
            max_bytes = shutil.disk_usage(folder.parent).free // 2
        try:
            cache = open_cache(train_set.pairs, folder, build=build, content_hash=d.cache_hash,
                               max_bytes=max_bytes)
        except CacheUnsupported as e:
            if d.cache == "on":
                raise DatasetError(f"data.cache=on: {e}") from None
            log.info("data cache off: %s", e)
    raw = _auto(d.device_jitter, device)
    fast = PairedDataset(
        train_set.pairs, jitter=train_set.jitter, in_channels=train_set.in_channels,
        out_channels=train_set.out_channels, direction=train_set.direction, train=train_set.train,
        seed=train_set.seed, cache=cache, raw=raw)
    if raw:
        try:
            fast[0]  # 16-bit files or a computed channel conversion fail here, not mid-run
        except ValueError as e:
            if d.device_jitter == "on":
                raise DatasetError(f"data.device_jitter=on: {e}") from None
            log.info("jitter stays on the CPU: %s", e)
            fast.raw = False
    return fast
