"""Decode once: a split's images as uint8 in one memory-mapped file, checked against the sources.

Decoding a PNG costs more than everything else the loader does, and a GPU step of unet_256 takes
milliseconds; so each pair is decoded once, into ``pairs.u8`` (every image's (H, W, C) bytes, one
after another) beside ``index.json`` (offsets, shapes, and a stamp of every source file: size and
modification time, and with ``content_hash`` a SHA-256 of its bytes). Workers map the file and
read views: no decode, no copy until the jitter.

A cache holds exactly what the files decode to (:func:`load_pair`), so the batches are
bit-identical with and without it. Files that do not fit uint8 exactly (16-bit images, float
``.npy``) are refused with :class:`CacheUnsupported`; training then reads the files as before.
A cache whose sources changed (a file added, removed, resized, touched, or different bytes with
``content_hash``) is stale and rebuilt whole.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

import numpy as np

from ..util.cache import cache_dir
from ..util.imageio import ImageReadError, image_size
from .dataset import DatasetError, Pair, load_pair
from .quantize import CacheUnsupported, from_uint8, to_uint8

log = logging.getLogger(__name__)
VERSION = 1
INDEX, DATA = "index.json", "pairs.u8"


def cache_folder(root: str | Path, split: str) -> Path:
    """Where the cache of ``root/split`` lives: ``cache_dir()/datasets/<name>-<split>-<hash of the
    absolute path>``."""
    where = Path(root).resolve() / split
    digest = hashlib.sha256(str(where).encode()).hexdigest()[:16]
    return cache_dir() / "datasets" / f"{Path(root).resolve().name}-{split}-{digest}"


def _files(pair: Pair) -> list[Path]:
    return [pair.a] if pair.b is None else [pair.a, pair.b]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def source_stamps(pairs: list[Pair], content_hash: bool = False, workers: int = 4) -> list[list]:
    """Per source file ``[folder/name, size, mtime_ns]`` (+ its SHA-256 with ``content_hash``), in
    pair order."""
    files = [p for pair in pairs for p in _files(pair)]

    def stamp(path: Path) -> list:
        st = path.stat()
        # The name within the split (not the absolute path): the same folder reached by another
        # path, or moved whole, is still the same data.
        return [f"{path.parent.name}/{path.name}", st.st_size, st.st_mtime_ns] + \
            ([_sha256(path)] if content_hash else [])

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(stamp, files))


class PairCache:
    """A built cache: ``load(i)`` gives pair ``i`` as two uint8 (H, W, C) arrays (read-only views)."""

    def __init__(self, folder: Path, index: dict) -> None:
        self.folder, self.index = Path(folder), index
        self.entries = index["entries"]
        self._data: Optional[np.memmap] = None  # mapped lazily, once per process

    def __len__(self) -> int:
        return len(self.entries)

    def __getstate__(self) -> dict:  # loader workers map the file themselves
        return {**self.__dict__, "_data": None}

    @property
    def nbytes(self) -> int:
        return int(self.index["nbytes"])

    def _view(self, offset: int, shape: list[int]) -> np.ndarray:
        if self._data is None:
            self._data = np.memmap(self.folder / DATA, dtype=np.uint8, mode="r")
        n = int(np.prod(shape))
        return self._data[offset:offset + n].reshape(shape)

    def load(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(A, B) of pair ``i`` as uint8 (H, W, C)."""
        e = self.entries[i]
        return self._view(e["a"][0], e["a"][1]), self._view(e["b"][0], e["b"][1])


def read_index(folder: Path) -> Optional[dict]:
    """The index of the cache in ``folder``, or None when there is none (or it is damaged)."""
    try:
        index = json.loads((folder / INDEX).read_text())
    except (OSError, ValueError):
        return None
    if index.get("version") != VERSION or not (folder / DATA).is_file() \
            or (folder / DATA).stat().st_size != index.get("nbytes"):
        return None
    return index


def stale_reason(index: Optional[dict], pairs: list[Pair], content_hash: bool = False) -> Optional[str]:
    """None when ``index`` matches the sources of ``pairs`` now, else what changed (for the log)."""
    if index is None:
        return "no cache yet"
    if [p.name for p in pairs] != [e["name"] for e in index["entries"]]:
        return "the list of pairs changed"
    want_hash = content_hash or bool(index.get("content_hash"))
    now = source_stamps(pairs, content_hash=want_hash)
    if want_hash and not index.get("content_hash"):
        return "a content hash was asked for and the cache has none"
    for old, new in zip(index["sources"], now):
        # With hashes, the bytes decide: a file touched but unchanged keeps its cache.
        same = old[:2] == new[:2] and (old[3:] == new[3:] if want_hash else old[2] == new[2])
        if not same:
            return f"{new[0]} changed"
    return None


def estimate_bytes(pairs: list[Pair], channels: int = 4) -> int:
    """Upper bound of a cache's size from the image headers (``channels`` bytes per pixel)."""
    total = 0
    for pair in pairs:
        for path in _files(pair):
            w, h = image_size(path)
            total += w * h * channels
    return total


def build_cache(pairs: list[Pair], folder: Path, *, content_hash: bool = False,
                workers: int = 4) -> PairCache:
    """Decode every pair into ``folder`` (replacing what is there) and return the cache.

    Written to a temporary folder and renamed into place, so an interrupted build leaves no half
    cache behind. Raises CacheUnsupported for images with more than 8 bits, DatasetError naming
    a file that cannot be decoded.
    """
    folder = Path(folder)
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    stamps = source_stamps(pairs, content_hash=content_hash, workers=workers)

    def decode(pair: Pair) -> tuple[np.ndarray, np.ndarray]:
        try:
            a, b = load_pair(pair)
        except ImageReadError as e:
            raise DatasetError(str(e)) from None
        return to_uint8(a, pair.a), to_uint8(b, pair.b or pair.a)

    entries, offset = [], 0
    try:
        with open(tmp / DATA, "wb") as f, ThreadPoolExecutor(max_workers=workers) as pool:
            for pair, (a, b) in zip(pairs, pool.map(decode, pairs)):
                entry = {"name": pair.name}
                for key, arr in (("a", a), ("b", b)):
                    f.write(np.ascontiguousarray(arr).tobytes())
                    entry[key] = [offset, list(arr.shape)]
                    offset += arr.nbytes
                entries.append(entry)
        index = {"version": VERSION, "nbytes": offset, "content_hash": content_hash,
                 "sources": stamps, "entries": entries}
        (tmp / INDEX).write_text(json.dumps(index))
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("cached %d pairs (%.1f MB) in %s", len(pairs), offset / 1e6, folder)
    return PairCache(folder, index)


def open_cache(pairs: list[Pair], folder: Path, *, build: bool = True, content_hash: bool = False,
               workers: int = 4, max_bytes: Optional[int] = None) -> Optional[PairCache]:
    """The valid cache of ``pairs`` in ``folder``: used as is when its stamps match the sources,
    else (re)built when ``build`` and it would take at most ``max_bytes`` (None when not).
    Raises CacheUnsupported as build_cache does."""
    index = read_index(folder)
    reason = stale_reason(index, pairs, content_hash)
    if reason is None:
        assert index is not None
        return PairCache(folder, index)
    if not build:
        return None
    if max_bytes is not None and estimate_bytes(pairs) > max_bytes:
        log.warning("data cache not built: the split decodes to up to %.1f GB, over the %.1f GB "
                    "allowed (half the free space of %s); set data.cache=on to insist",
                    estimate_bytes(pairs) / 1e9, max_bytes / 1e9, folder.parent)
        return None
    if index is not None:
        log.info("data cache %s is stale (%s): rebuilding", folder, reason)
    return build_cache(pairs, folder, content_hash=content_hash, workers=workers)


__all__ = ["CacheUnsupported", "PairCache", "build_cache", "cache_folder", "estimate_bytes",
           "from_uint8", "open_cache", "read_index", "source_stamps", "stale_reason", "to_uint8"]
