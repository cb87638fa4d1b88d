"""Small helpers the data tools share: threads over files, names by stem, side-by-side channels,
output formats and folders, files the tools do not read."""
from __future__ import annotations

import os
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, TypeVar

import numpy as np

from ..util.imageio import IMAGE_EXTENSIONS, is_image_file, to_channels

# Formats the tools write that pix2pix reads back (.ppm/.pgm cannot hold every mode; .gif is not read).
OUTPUT_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".npy")
# Image formats pix2pix does not read: reported where found, so that no picture is dropped silently.
OTHER_IMAGE_EXTENSIONS = (".gif", ".jfif", ".jpe", ".heic", ".heif", ".avif", ".jp2", ".j2k", ".tga",
                          ".psd", ".exr", ".hdr", ".dng", ".cr2", ".nef", ".arw", ".ico", ".pbm", ".pnm",
                          ".apng", ".qoi", ".svg")

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


def output_ext(ext: str) -> str:
    """``ext`` as a lower-case suffix ('PNG' -> '.png') if pix2pix reads back what it writes; else
    ValueError naming the formats it does."""
    suffix = (ext if ext.startswith(".") else "." + ext).lower()
    if suffix not in OUTPUT_EXTENSIONS:
        raise ValueError(f"--ext {ext!r}: pix2pix writes and reads back "
                         f"{', '.join(e.lstrip('.') for e in OUTPUT_EXTENSIONS)}; choose one of those")
    return suffix


def _image_like(path: Path) -> bool:
    return not path.name.startswith(".") and (is_image_file(path) or
                                              path.suffix.lower() in OTHER_IMAGE_EXTENSIONS)


def unread_images(folder: Path, skip: Iterable[str] = ()) -> list[str]:
    """Why each picture in ``folder`` that the tools and training pass over is not read: a format
    pix2pix does not read, or a subfolder (except those in ``skip``) holding pictures, since only
    the files directly in a folder are read. Hidden files (.DS_Store, ._x.jpg) are not pictures."""
    if not folder.is_dir():
        return []
    found = []
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or p.name in skip:
            continue
        if p.is_dir():
            n = sum(1 for f in p.rglob("*") if f.is_file() and _image_like(f))
            if n:
                found.append(f"{p}: a subfolder with {n} image(s), not read (only the files directly in "
                             f"{folder} are); move them up or out")
        elif p.is_file() and p.suffix.lower() in OTHER_IMAGE_EXTENSIONS:
            found.append(f"{p}: {p.suffix} is not a format pix2pix reads "
                         f"({', '.join(e.lstrip('.') for e in IMAGE_EXTENSIONS)}); convert it, e.g. to PNG")
    return found


def refuse_existing_images(folders: Iterable[Path]) -> None:
    """Raise ValueError if any of ``folders`` already holds images: new pairs written among an
    earlier run's would mix with them (stale pairs, other sizes, one photo in two splits) unseen."""
    for d in folders:
        if not d.is_dir():
            continue
        found = sorted(p for p in d.rglob("*") if p.is_file() and is_image_file(p))
        if found:
            raise ValueError(f"{d} already holds {len(found)} image(s) (e.g. {found[0].name}), perhaps from an "
                             f"earlier run; new pairs would mix with them. Remove that folder or choose "
                             f"another --out; nothing was written")
