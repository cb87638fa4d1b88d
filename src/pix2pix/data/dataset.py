"""Paired datasets: A|B side by side in one file, or A/ and B/ folders paired by file stem.

Layouts under ``root``:
  (a) ``root/train/*.png``, each image the input (left half) beside the target (right half);
  (b) ``root/train/A/x.png`` with ``root/train/B/x.png``.
Every problem is found before training starts and reported with the file it concerns.
"""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Union

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from ..util.imageio import ImageReadError, image_size, list_images, read_image, to_channels
from ..util.ranges import to_tensor
from .helpers import by_stem
from .quantize import from_uint8, to_uint8
from .transforms import Jitter, apply_params, draw_params, params_to_tensor

log = logging.getLogger(__name__)


class DatasetError(ValueError):
    """A dataset problem that would break training; the message says which file and what to do."""


@dataclass(frozen=True)
class Pair:
    name: str
    a: Path
    # None for the side-by-side layout, where ``a`` holds both halves.
    b: Optional[Path] = None


def layout_of(split_dir: Path) -> str:
    return "folders" if (split_dir / "A").is_dir() and (split_dir / "B").is_dir() else "combined"


def flat_hint(root: Path) -> str:
    """A hint when ``root`` holds its pairs directly instead of in split folders, else ''."""
    n = len(list_images(root)) + (len(list_images(root / "A")) if layout_of(root) == "folders" else 0)
    return (f"; {root} itself holds {n} image(s): `pix2pix data split {root}` moves them into train/val/test"
            if n else "")


def lone_side(split_dir: Path) -> Optional[str]:
    """What is wrong when ``split_dir`` has an A/ folder without B/ (or the reverse), else None:
    the split then reads as side-by-side images, and the folder's files as nothing."""
    a, b = (split_dir / "A").is_dir(), (split_dir / "B").is_dir()
    if a == b:
        return None
    have, lack = ("A", "B") if a else ("B", "A")
    return (f"{split_dir / have} has no partner folder {split_dir / lack}: the two-folder layout needs "
            f"both {split_dir}/A/ (inputs) and {split_dir}/B/ (targets)")


def _refuse_duplicate_stems(split_dir: Path, sides: dict[str, list[Path]]) -> None:
    """x.png beside x.jpg in A/ (or B/): which one pairs is a guess, so neither is dropped silently."""
    dup = [f"{side}/: {d}" for side, files in sides.items() for d in by_stem(files)[1]]
    if dup:
        raise DatasetError(f"{split_dir}: {len(dup)} name(s) appear with two extensions in one folder, "
                           f"so the pairing is ambiguous ({'; '.join(dup[:5])}). Remove or rename one "
                           f"of each")


def scan_pairs(root: str | Path, split: str) -> list[Pair]:
    """List the pairs of ``root/split``; raise DatasetError if there are none or some lack a partner."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset folder {root} does not exist; make one with "
                           f"`pix2pix data example maps --out {root}` or point --data at your pairs")
    split_dir = root / split
    if not split_dir.is_dir():
        found = sorted(p.name for p in root.iterdir() if p.is_dir())
        raise DatasetError(f"{split_dir} is missing: the dataset has no '{split}' split "
                           f"(found: {', '.join(found) or 'no folders'}). Expected {root}/{split}/ with "
                           f"A|B images, or {root}/{split}/A/ and {root}/{split}/B/" + flat_hint(root))
    if layout_of(split_dir) == "folders":
        a_list, b_list = list_images(split_dir / "A"), list_images(split_dir / "B")
        _refuse_duplicate_stems(split_dir, {"A": a_list, "B": b_list})
        a_files = {p.stem: p for p in a_list}
        b_files = {p.stem: p for p in b_list}
        only_a, only_b = sorted(set(a_files) - set(b_files)), sorted(set(b_files) - set(a_files))
        if only_a or only_b:
            parts = []
            if only_a:
                parts.append(f"{len(only_a)} in A/ have no partner in B/: {', '.join(only_a[:5])}")
            if only_b:
                parts.append(f"{len(only_b)} in B/ have no partner in A/: {', '.join(only_b[:5])}")
            raise DatasetError(f"{split_dir}: unpaired files ({'; '.join(parts)}). Pairs match by "
                               f"file name without extension; rename or remove the strays")
        pairs = [Pair(stem, a_files[stem], b_files[stem]) for stem in sorted(a_files)]
    else:
        pairs = [Pair(p.stem, p) for p in list_images(split_dir)]
    if not pairs:
        raise DatasetError(lone_side(split_dir) or
                           f"{split_dir} holds no image pairs: put A|B side-by-side images there, "
                           f"or A/ and B/ folders with matching file names")
    return pairs


def pair_size(pair: Pair) -> tuple[int, int]:
    """(width, height) of the pair's images, from the headers; raises DatasetError naming the file
    for an odd A|B width or two sizes that differ, ImageReadError for an unreadable header."""
    if pair.b is None:
        w, h = image_size(pair.a)
        if w % 2:
            raise DatasetError(f"{pair.a}: width {w} is odd, so it cannot be split into A|B halves; "
                               f"side-by-side pairs need two halves of equal width")
        return w // 2, h
    (wa, ha), (wb, hb) = image_size(pair.a), image_size(pair.b)
    if (wa, ha) != (wb, hb):
        raise DatasetError(f"{pair.a} is {wa}x{ha} but {pair.b} is {wb}x{hb}; the two images of a pair "
                           f"must be the same size (resize one with `pix2pix data resize`)")
    return wa, ha


def check_pair(pair: Pair, decode: bool = True) -> Optional[str]:
    """None if the pair is usable, else a message naming the file and the fix (the one pair check,
    used by training and by `pix2pix data check`)."""
    try:
        pair_size(pair)
        if decode:
            load_pair(pair)
    except (DatasetError, ImageReadError) as e:
        return str(e)
    return None


def check_pairs(pairs: list[Pair], decode: bool = True, workers: int = 4) -> None:
    """Raise DatasetError listing every broken pair (size mismatch, unreadable or truncated file)."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        problems = [m for m in pool.map(lambda p: check_pair(p, decode), pairs) if m]
    if problems:
        more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
        raise DatasetError(f"{len(problems)} broken pair(s):\n  " + "\n  ".join(problems[:10]) + more)


def load_pair(pair: Pair) -> tuple[np.ndarray, np.ndarray]:
    """(A, B) as (H, W, C) float32 arrays in [0, 1]."""
    if pair.b is None:
        ab = read_image(pair.a)
        half = ab.shape[1] // 2
        return ab[:, :half], ab[:, half:2 * half]
    return read_image(pair.a), read_image(pair.b)


def to_channels_uint8(arr: np.ndarray, channels: int, source: str) -> np.ndarray:
    """:func:`to_channels` for uint8 (H, W, C) where it is exact (same count, gray -> RGB, an
    opaque alpha added); the conversions that compute (alpha compositing, RGB -> gray) need the
    float path."""
    c = arr.shape[2]
    if c == channels:
        return arr
    if c == 1 and channels == 3:
        return np.repeat(arr, 3, axis=2)
    if c in (1, 3) and channels == 4:
        rgb = np.repeat(arr, 3, axis=2) if c == 1 else arr
        return np.concatenate([rgb, np.full_like(arr[:, :, :1], 255)], axis=2)
    raise ValueError(f"{source} has {c} channel(s) and the model expects {channels}: that conversion "
                     f"computes new values, which the device-side jitter does not do; train with "
                     f"--set data.device_jitter=off, or convert the images")


class PairedDataset(Dataset):
    """Items are dicts: ``input`` (C_in, S, S) and ``target`` (C_out, S, S) in [-1, 1], ``name``.

    Index with an int (the jitter comes from ``seed`` and the index) or with ``(index, seed)``,
    which the training sampler uses so that every epoch and every resume draws the same jitter.
    ``cache`` (a :class:`~pix2pix.data.cache.PairCache` of ``pairs``) replaces decoding; the items
    are the same. ``raw``: items hold the un-jittered uint8 images (C, H, W) and ``params`` (the
    draw, :func:`params_to_tensor`), for :func:`~pix2pix.data.transforms.apply_batch` on the
    training device.
    """

    def __init__(self, pairs: list[Pair], *, jitter: Jitter, in_channels: int = 3,
                 out_channels: int = 3, direction: str = "AtoB", train: bool = True,
                 seed: int = 0, cache=None, raw: bool = False) -> None:
        self.pairs = pairs
        self.jitter = jitter
        self.in_channels, self.out_channels = in_channels, out_channels
        self.direction = direction
        self.train = train
        self.seed = seed
        self.cache = cache
        self.raw = raw

    def __len__(self) -> int:
        return len(self.pairs)

    def _load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The pair as the files decode: float32 (H, W, C) in [0, 1], or uint8 when ``raw``."""
        if self.cache is not None:
            a, b = self.cache.load(index)
            return (a, b) if self.raw else (from_uint8(a), from_uint8(b))
        pair = self.pairs[index]
        a, b = load_pair(pair)
        return (to_uint8(a, pair.a), to_uint8(b, pair.b or pair.a)) if self.raw else (a, b)

    def __getitem__(self, key: Union[int, tuple[int, int]]) -> dict:
        index, seed = key if isinstance(key, tuple) else (key, self.seed * 1_000_003 + key)
        pair = self.pairs[index]
        a, b = self._load(index)
        if self.direction == "BtoA":
            a, b = b, a
        source = str(pair.a)
        convert = to_channels_uint8 if self.raw else to_channels
        a = convert(a, self.in_channels, f"{source} (input)")
        b = convert(b, self.out_channels, f"{pair.b or source} (target)")
        gen = torch.Generator().manual_seed(seed)
        params = draw_params(a.shape[0], a.shape[1], self.jitter, gen, train=self.train)
        if self.raw:
            # A copy: the arrays may be read-only views of the cache's mapped file.
            return {"input": torch.from_numpy(a.transpose(2, 0, 1).copy()),
                    "target": torch.from_numpy(b.transpose(2, 0, 1).copy()),
                    "params": params_to_tensor(params), "name": pair.name}
        return {"input": apply_params(to_tensor(a), params),
                "target": apply_params(to_tensor(b), params), "name": pair.name}


def collate(items: list[dict]) -> dict:
    """Default collation, except that raw uint8 images of different sizes stay a list (they are
    resized on the device, where they become one batch)."""
    from torch.utils.data import default_collate

    if "params" in items[0] and any(len({tuple(it[k].shape) for it in items}) > 1
                                    for k in ("input", "target")):
        out = default_collate([{k: v for k, v in it.items() if k not in ("input", "target")}
                               for it in items])
        out.update(input=[it["input"] for it in items], target=[it["target"] for it in items])
        return out
    return default_collate(items)


class EpochBatchSampler(Sampler):
    """Batches of ``(index, jitter_seed)`` for one epoch, reproducible from (seed, epoch).

    ``start`` skips that many batches, so a resumed run sees exactly the batches the
    uninterrupted run would have. The last incomplete batch is dropped.
    """

    def __init__(self, n: int, batch_size: int, seed: int, epoch: int, start: int = 0,
                 shuffle: bool = True) -> None:
        self.n, self.batch_size, self.seed, self.epoch, self.start = n, batch_size, seed, epoch, start
        self.shuffle = shuffle

    def __len__(self) -> int:
        return max(0, self.n // self.batch_size - self.start)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        gen = torch.Generator().manual_seed(self.seed * 7_919 + self.epoch)
        order = torch.randperm(self.n, generator=gen) if self.shuffle else torch.arange(self.n)
        seeds = torch.randint(0, 2**62, (self.n,), generator=gen)
        for b in range(self.start, self.n // self.batch_size):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            yield [(int(i), int(s)) for i, s in zip(idx, seeds[idx])]


def open_split(root: str | Path, split: str, *, jitter: Jitter, in_channels: int, out_channels: int,
               direction: str, train: bool, seed: int = 0, verify: bool = True) -> PairedDataset:
    """Scan and check a split, then wrap it as a PairedDataset (raises DatasetError on problems)."""
    pairs = scan_pairs(root, split)
    check_pairs(pairs, decode=verify)
    ds = PairedDataset(pairs, jitter=jitter, in_channels=in_channels, out_channels=out_channels,
                       direction=direction, train=train, seed=seed)
    # Decode one pair now so channel mismatches surface before training, not mid-epoch.
    try:
        ds[0]
    except ValueError as e:
        raise DatasetError(str(e)) from None
    log.info("%s/%s: %d pairs", root, split, len(pairs))
    return ds
