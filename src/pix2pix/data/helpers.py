"""Small helpers the data tools share: threads over files, names by stem, side-by-side channels."""
from __future__ import annotations

import os
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, TypeVar

import numpy as np

from ..util.imageio import to_channels

T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def parallel_map(fn: Callable[[T], R], items: list[T], *, workers: Optional[int] = None,
                 progress: bool = False, desc: str = "", unit: str = "pair") -> Iterator[R]:
    """``fn`` over ``items`` in threads (decoders and encoders release the GIL), in completion order."""
    from tqdm import tqdm

    with ThreadPoolExecutor(max_workers=workers or default_workers()) as pool:
        futures = [pool.submit(fn, item) for item in items]
        for fut in tqdm(as_completed(futures), total=len(futures), desc=desc, unit=unit,
                        disable=not progress, dynamic_ncols=True):
            yield fut.result()


def by_stem(files: Iterable[Path]) -> tuple[dict[str, Path], list[str]]:
    """{stem: path} and the stems that occur more than once (x.png beside x.jpg is ambiguous)."""
    groups: dict[str, list[Path]] = defaultdict(list)
    for f in files:
        groups[f.stem].append(f)
    dup = sorted(f"{', '.join(p.name for p in ps)} share the name '{s}'" for s, ps in groups.items()
                 if len(ps) > 1)
    return {s: ps[0] for s, ps in groups.items() if len(ps) == 1}, dup


def match_channels(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Give A and B one channel count so they fit side by side: gray stays gray, alpha is kept."""
    ca, cb = a.shape[2], b.shape[2]
    if ca == cb:
        return a, b
    target = 4 if (ca in (2, 4) or cb in (2, 4)) else 3

    return to_channels(a, target), to_channels(b, target)
