"""Checks made before step 1, so that a run fails in its first second, not at step N: the image
geometry of the whole split against the crop and the generator, and what a resume changes."""
from __future__ import annotations

import logging
from collections import Counter
from typing import Sequence

from ..config import TrainConfig, to_dict
from ..data.dataset import DatasetError, Pair, pair_size

log = logging.getLogger(__name__)

# Changing these on --resume would not continue the saved run: the weights, the optimiser state
# or the meaning of a step no longer fit. Everything else (lr, cadences, max_steps, ...) is
# applied and said.
RESUME_FIXED = ("model.", "batch_size", "data.image_size", "data.direction")


def check_geometry(pairs: Sequence[Pair], *, preprocess: str, image_size: int, multiple: int,
                   batch_size: int, split: str) -> None:
    """Raise DatasetError naming the images that cannot be trained on as configured: with
    ``preprocess='none'`` sides that are not multiples of the generator's ``multiple`` or (batch
    > 1) sizes that differ; with ``'crop'`` images smaller than the crop. Reads headers only."""
    if preprocess not in ("none", "crop"):
        return
    sizes = {p: pair_size(p) for p in pairs}
    problems: list[str] = []
    if preprocess == "crop":
        small = [f"{p.a} is {w}x{h}" for p, (w, h) in sizes.items() if w < image_size or h < image_size]
        if small:
            problems.append(f"{len(small)} image(s) are smaller than the {image_size}x{image_size} crop "
                            f"(--preprocess crop cuts from the full-size image): {'; '.join(small[:5])}. "
                            f"Use --preprocess resize_crop, or --image-size {min(min(s) for s in sizes.values())}")
    else:
        odd = [f"{p.a} is {w}x{h}" for p, (w, h) in sizes.items() if w % multiple or h % multiple]
        if odd:
            problems.append(f"{len(odd)} image(s) have sides that are not multiples of {multiple}, which "
                            f"the generator needs with --preprocess none: {'; '.join(odd[:5])}. Resize "
                            f"them (`pix2pix data resize`) or use --preprocess resize_crop")
        counts = Counter(sizes.values())
        if batch_size > 1 and len(counts) > 1:
            common = ", ".join(f"{w}x{h} ({n})" for (w, h), n in counts.most_common(4))
            problems.append(f"with --preprocess none and --batch-size {batch_size} every image must have "
                            f"the same size, but the split has {len(counts)} sizes: {common}. Use "
                            f"--batch-size 1, resize them all, or --preprocess resize_crop")
    if problems:
        raise DatasetError(f"{split}: " + " ".join(problems))


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def resume_changes(saved: TrainConfig, new: TrainConfig, *, saved_world: int = 1,
                   world: int = 1) -> list[str]:
    """The settings a resume changes, as ``key: old -> new``. Raises ValueError listing them when
    one of them cannot change without breaking the run (architecture, width, batch size, image
    size, direction). The per-process batch may change with the number of processes when the
    global batch stays the same (2 processes x 1 -> 1 x 2): a step still sees the same pairs."""
    a, b = _flat(to_dict(saved)), _flat(to_dict(new))
    changed = [k for k in b if a.get(k) != b[k]]
    same_global = saved_world != world and saved_world * saved.batch_size == world * new.batch_size
    refused = [k for k in changed if k.startswith(RESUME_FIXED)
               and not (k == "batch_size" and same_global)]
    if refused:
        raise ValueError("--resume cannot change " + ", ".join(f"{k} ({a.get(k)!r} -> {b[k]!r})"
                                                               for k in refused)
                         + f": the saved run was trained with the first values. Drop those options (a "
                           f"--recipe or --config may set them) to continue it, or start a new run "
                           f"with another --out")
    return [f"{k}: {a.get(k)!r} -> {b[k]!r}" for k in changed]


def check_world(saved_world: int, world: int, saved_batch: int, batch: int) -> None:
    """A resume on another number of processes is allowed only when the global batch stays the
    same (e.g. 2 processes x 1 -> 1 x 2); otherwise every step would mean something else."""
    if saved_world != world and saved_world * saved_batch != world * batch:
        raise ValueError(f"the run was saved with {saved_world} process(es) x batch {saved_batch} "
                         f"(global batch {saved_world * saved_batch}); resuming with {world} x {batch} "
                         f"(global {world * batch}) would change what a step is. Resume with "
                         f"--num-processes {saved_world}, or keep the global batch the same")
