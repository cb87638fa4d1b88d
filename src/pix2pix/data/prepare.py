"""Dataset preparation: pair two folders, split, resize, and inspect a dataset before training.

Every tool reports each file it could not use and why; none silently writes nothing.
Images travel as (H, W, C) float32 arrays in [0, 1] (see ``pix2pix.util.imageio``); 16-bit inputs are
written back as 16-bit where the format allows (PNG, TIFF) and ``.npy`` stays ``.npy``.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

import numpy as np
from PIL import Image

from ..util.imageio import ImageReadError, bit_depth, is_16bit_colour, list_images, read_image, save_image
from .dataset import DatasetError, Pair, flat_hint, layout_of, load_pair, lone_side, pair_size
from .helpers import (by_stem, match_channels, output_ext, parallel_map, refuse_existing_images,
                      unread_images)

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


def _size_text(arr: np.ndarray) -> str:
    return f"{arr.shape[1]}x{arr.shape[0]}"


# ---- combine: two folders -> pairs --------------------------------------------------------------

@dataclass
class CombineReport:
    """What ``combine`` did; ``problems`` lists every file it could not pair, with the reason."""
    written: dict[str, int] = field(default_factory=dict)
    only_a: list[str] = field(default_factory=list)
    only_b: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    ambiguous: list[str] = field(default_factory=list)
    unread: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.written.values())

    @property
    def problems(self) -> list[str]:
        return ([f"no partner in B: {p}{_case_hint(p, self.only_b)}" for p in self.only_a] +
                [f"no partner in A: {p}{_case_hint(p, self.only_a)}" for p in self.only_b] +
                [f"ambiguous: {p}" for p in self.ambiguous] + self.mismatched + self.unreadable + self.unread)


def _case_hint(path: str, others: list[str]) -> str:
    """' (... differs only in case)' when an unpaired file of the other side has the same name but
    for letter case: pairs are matched case-sensitively, as Linux file names are, while macOS and
    Windows users may not see the difference."""
    stem = Path(path).stem
    twin = next((o for o in others if Path(o).stem.lower() == stem.lower() and Path(o).stem != stem), None)
    return f" ({Path(twin).name} on the other side differs only in letter case; rename one)" if twin else ""


def _split_folders(a_dir: Path, b_dir: Path,
                   default_split: str) -> tuple[list[tuple[str, Path, Path]], list[str]]:
    """[(split, A folder, B folder)]: the train/val/test subfolders when either side has them; and
    why each picture that is not in one of those folders is not read."""
    present = [s for s in SPLITS if (a_dir / s).is_dir() or (b_dir / s).is_dir()]
    if not present:
        return [(default_split, a_dir, b_dir)], unread_images(a_dir) + unread_images(b_dir)
    unread = [f"{p}: beside the {'/'.join(present)} folders, not read (put it in one of them)"
              for p in list_images(a_dir) + list_images(b_dir)]
    unread += unread_images(a_dir, skip=SPLITS) + unread_images(b_dir, skip=SPLITS)
    return [(s, a_dir / s, b_dir / s) for s in present], unread


def combine(a_dir: str | Path, b_dir: str | Path, out: str | Path, *, layout: str = "combined",
            ext: str = ".png", split: str = "train", workers: Optional[int] = None,
            progress: bool = False) -> CombineReport:
    """Pair ``a_dir/x.*`` with ``b_dir/x.*`` by file stem and write them under ``out/<split>/``.

    ``layout="combined"`` writes one A|B image per pair (``ext`` decides the format, 16-bit kept in
    PNG/TIFF); ``"folders"`` copies both files unchanged into ``A/`` and ``B/``. train/val/test
    subfolders of the inputs are followed; otherwise everything goes to ``split``. Both images of a
    pair are decoded first, so unreadable, truncated and size-mismatched pairs are reported, not
    written; so are pictures not read (other formats, subfolders). Raises ValueError when nothing
    could be paired, or when an ``out`` split folder to write already holds images.
    """
    a_dir, b_dir, out = Path(a_dir), Path(b_dir), Path(out)
    for name, d in (("A", a_dir), ("B", b_dir)):
        if not d.is_dir():
            raise ValueError(f"{name} folder {d} does not exist")
    if layout not in ("combined", "folders"):
        raise ValueError(f"layout {layout!r} is not 'combined' or 'folders'")
    ext = output_ext(ext)
    report = CombineReport()
    jobs: list[tuple[str, str, Path, Path]] = []
    folders, report.unread = _split_folders(a_dir, b_dir, split)
    # Another --split of the same --out may be written by another run; a split already written may not.
    refuse_existing_images(out / s for s, _, _ in folders)
    for split_name, a_sub, b_sub in folders:
        if (a_sub, b_sub) != (a_dir, b_dir):
            report.unread += unread_images(a_sub) + unread_images(b_sub)
        a_list, b_list = list_images(a_sub), list_images(b_sub)
        a_files, a_dup = by_stem(a_list)
        b_files, b_dup = by_stem(b_list)
        report.ambiguous += [f"{a_sub}: {d}" for d in a_dup] + [f"{b_sub}: {d}" for d in b_dup]
        # A partner that is ambiguous is reported as such, not as missing.
        report.only_a += [str(a_files[s]) for s in sorted(set(a_files) - {p.stem for p in b_list})]
        report.only_b += [str(b_files[s]) for s in sorted(set(b_files) - {p.stem for p in a_list})]
        jobs += [(split_name, s, a_files[s], b_files[s]) for s in sorted(set(a_files) & set(b_files))]
        report.written[split_name] = 0

    def one(job: tuple[str, str, Path, Path]) -> tuple[str, Optional[str], Optional[str]]:
        split_name, stem, pa, pb = job
        try:
            a, b = read_image(pa), read_image(pb)
        except ImageReadError as e:
            return split_name, None, str(e)
        if a.shape[:2] != b.shape[:2]:
            return split_name, (f"size mismatch: {pa} is {_size_text(a)} but {pb} is {_size_text(b)} "
                                f"(resize first with `pix2pix data resize`)"), None
        if layout == "folders":
            for side, src in (("A", pa), ("B", pb)):
                dst = out / split_name / side / src.name
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)
        else:
            a, b = match_channels(a, b)
            bits = 16 if bit_depth(pa) == 16 and bit_depth(pb) == 16 else 8
            save_image(np.concatenate([a, b], axis=1), out / split_name / f"{stem}{ext}", bits=bits)
        return split_name, None, None

    for split_name, mismatch, unreadable in parallel_map(one, jobs, workers=workers, progress=progress,
                                                         desc="combine"):
        if mismatch:
            report.mismatched.append(mismatch)
        elif unreadable:
            report.unreadable.append(unreadable)
        else:
            report.written[split_name] += 1
    report.mismatched.sort()
    report.unreadable.sort()
    log.info("combine: %s pairs written, %d problem(s)", report.written, len(report.problems))
    if not report.total:
        shown = "\n  ".join(report.problems[:20]) or "(both folders hold no images)"
        raise ValueError(f"no pairs could be made from {a_dir} and {b_dir}; pairs match by file name "
                         f"without extension, and both images must be readable and the same size:\n  {shown}")
    return report


# ---- split ----------------------------------------------------------------------------------------

def _pool_items(folder: Path) -> tuple[str, list[tuple[str, list[Path]]]]:
    """Layout and [(stem, [files])] of a flat pool (A|B images, or A/ and B/ folders)."""
    if layout_of(folder) == "folders":
        a_files, a_dup = by_stem(list_images(folder / "A"))
        b_files, b_dup = by_stem(list_images(folder / "B"))
        unpaired = sorted(set(a_files) ^ set(b_files))
        if unpaired or a_dup or b_dup:
            raise ValueError(f"{folder}: cannot split: {len(unpaired)} file(s) without a partner "
                             f"(e.g. {', '.join(unpaired[:3])}) {'; '.join(a_dup + b_dup)}; fix them first "
                             f"(`pix2pix data check` lists them)")
        return "folders", [(s, [a_files[s], b_files[s]]) for s in sorted(a_files)]
    return "combined", [(p.stem, [p]) for p in list_images(folder)]


def split_dataset(root: str | Path, *, val: float = 0.1, test: float = 0.1, seed: int = 0,
                  group: Optional[str] = None, out: Optional[str | Path] = None) -> dict[str, int]:
    """Split the pairs of ``root`` (flat, or all in ``root/train``) into train/val/test.

    Moves files inside ``root``, or copies them to ``out``. The draw is reproducible from ``seed``.
    ``group`` is a regular expression: pairs whose names give the same match (its first group if it
    has one) land in the same split, so tiles of one photo never straddle train and test.
    Returns {split: number of pairs}.
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"dataset folder {root} does not exist")
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise ValueError(f"--val {val} and --test {test} must be fractions in [0, 1) adding up to less than 1")
    if out is not None and Path(out).resolve() == root.resolve():
        out = None  # copying into the dataset itself would leave every file twice: move instead
    try:
        pattern = re.compile(group) if group else None
    except re.error as e:
        raise ValueError(f"--group {group!r} is not a valid regular expression ({e})") from None
    flat_layout, flat = _pool_items(root)
    if flat:
        pool_dir, items, layout = root, flat, flat_layout
    elif (root / "train").is_dir():
        for s in ("val", "test"):
            if (root / s).is_dir() and _pool_items(root / s)[1]:
                raise ValueError(f"{root / s} already holds pairs; split works on a dataset that is all in "
                                 f"one place (flat, or all in train/); nothing was moved")
        pool_dir = root / "train"
        layout, items = _pool_items(pool_dir)
    else:
        raise ValueError(f"{root} holds no images to split (expected A|B images, A/ and B/ folders, "
                         f"or a train/ folder with them)")
    if not items:
        raise ValueError(f"{pool_dir} holds no pairs to split")

    groups: dict[str, list[tuple[str, list[Path]]]] = defaultdict(list)
    matched = 0
    for stem, files in items:
        m = pattern.search(stem) if pattern else None
        matched += m is not None
        key = (m.group(1) if m.groups() else m.group(0)) if m else stem
        groups[key].append((stem, files))
    if pattern and not matched:
        # Every pair its own group is what --group was asked to prevent (tiles of one photo split up).
        raise ValueError(f"--group {group!r} matches none of the {len(items)} names (e.g. {items[0][0]!r}), "
                         f"so nothing would be grouped; fix the expression (it is searched in the file "
                         f"name without extension); nothing was moved")
    keys = sorted(groups)
    order = np.random.default_rng(seed).permutation(len(keys))
    n = len(items)
    want = {s: int(round(f * n)) for s, f in (("val", val), ("test", test))}
    for s, f in (("val", val), ("test", test)):
        if f > 0 and want[s] == 0 and len(keys) >= 3:
            want[s] = 1  # a requested split is never silently empty
    assignment: dict[str, str] = {}
    filled = {"val": 0, "test": 0}
    for i in order:
        key = keys[i]
        target = next((s for s in ("val", "test") if filled[s] < want[s]), "train")
        assignment[key] = target
        if target != "train":
            filled[target] += len(groups[key])

    dest_root = Path(out) if out else root
    if out:
        refuse_existing_images(dest_root / s for s in SPLITS)
    counts = {s: 0 for s in SPLITS}
    for key, members in groups.items():
        split_name = assignment[key]
        for stem, files in members:
            for f in files:
                side = f.parent.name if layout == "folders" else ""
                dst = dest_root / split_name / side / f.name
                if dst.resolve() == f.resolve():
                    continue
                dst.parent.mkdir(parents=True, exist_ok=True)
                if out:
                    shutil.copyfile(f, dst)
                else:
                    shutil.move(str(f), dst)
            counts[split_name] += 1
    if not out and layout == "folders" and pool_dir == root:
        for side in ("A", "B"):
            if (root / side).is_dir() and not any((root / side).iterdir()):
                (root / side).rmdir()
    log.info("split %s: %s (seed %d)", root, counts, seed)
    return counts


# ---- resize ----------------------------------------------------------------------------------------

def parse_size(text: str) -> tuple[int, int]:
    """'256' -> (256, 256); '512x256' -> (512, 256) as (width, height)."""
    m = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+))?\s*", str(text))
    if not m or int(m.group(1)) <= 0 or (m.group(2) and int(m.group(2)) <= 0):
        raise ValueError(f"size {text!r} is not N or WxH with positive integers (e.g. 256 or 512x256)")
    w = int(m.group(1))
    return w, int(m.group(2) or w)


def resize_array(arr: np.ndarray, size: tuple[int, int], *, fit: str = "crop",
                 nearest: bool = False) -> np.ndarray:
    """Resize (H, W, C) to ``size`` = (width, height).

    fit: ``stretch`` to exactly that size; ``crop`` scales to cover it and centre-crops (aspect kept);
    ``short`` scales the short side to ``size[0]`` (aspect kept). ``nearest`` keeps label values.
    """
    import cv2

    h, w = arr.shape[:2]
    if fit == "stretch":
        new_w, new_h = size
    elif fit == "crop":
        scale = max(size[0] / w, size[1] / h)
        new_w, new_h = max(size[0], round(w * scale)), max(size[1], round(h * scale))
    elif fit == "short":
        scale = size[0] / min(w, h)
        new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    else:
        raise ValueError(f"fit {fit!r} is not 'crop', 'stretch' or 'short'")
    if (new_w, new_h) != (w, h):
        if nearest:
            interp = cv2.INTER_NEAREST
        else:  # area averaging avoids aliasing when shrinking; Lanczos keeps detail when enlarging
            interp = cv2.INTER_AREA if new_w * new_h < w * h else cv2.INTER_LANCZOS4
        out = cv2.resize(arr, (new_w, new_h), interpolation=interp)
        arr = np.clip(out.reshape(new_h, new_w, -1), 0.0, 1.0)
    if fit == "crop":
        top, left = (new_h - size[1]) // 2, (new_w - size[0]) // 2
        arr = arr[top:top + size[1], left:left + size[0]]
    return np.ascontiguousarray(arr, dtype=np.float32)


def _dataset_files(root: Path) -> list[tuple[str, Pair]]:
    """[(split, pair)] for every split folder of ``root`` that holds pairs (lenient: no checks)."""
    found = []
    for split_name in sorted(p.name for p in root.iterdir() if p.is_dir()):
        d = root / split_name
        if layout_of(d) == "folders":
            a_files, _ = by_stem(list_images(d / "A"))
            b_files, _ = by_stem(list_images(d / "B"))
            found += [(split_name, Pair(s, a_files[s], b_files[s])) for s in sorted(set(a_files) & set(b_files))]
        else:
            found += [(split_name, Pair(p.stem, p)) for p in list_images(d)]
    return found


def resize_dataset(root: str | Path, out: str | Path, size: tuple[int, int], *, fit: str = "crop",
                   nearest: str = "none", workers: Optional[int] = None,
                   progress: bool = False) -> dict:
    """Resize every pair of every split of ``root`` into ``out`` (same layout and file names).

    Each image of a pair (each half of an A|B image) becomes ``size`` = (width, height), or its
    short side ``size[0]`` with ``fit="short"``. ``nearest`` ("none", "A", "B", "both") names the
    sides holding label maps, which must not be interpolated. Returns {"written": {split: n},
    "problems": [...]}; raises ValueError if nothing was written.
    """
    root, out = Path(root), Path(out)
    if not root.is_dir():
        raise ValueError(f"dataset folder {root} does not exist")
    if out.resolve() == root.resolve():
        raise ValueError("--out must differ from the dataset folder (resize never overwrites its input)")
    if nearest not in ("none", "A", "B", "both"):
        raise ValueError(f"nearest {nearest!r} is not none, A, B or both")
    near_a, near_b = nearest in ("A", "both"), nearest in ("B", "both")
    jobs = _dataset_files(root)
    if not jobs:
        raise ValueError(f"{root} holds no pairs: expected {root}/train/*.png (A|B) or {root}/train/A and B"
                         + flat_hint(root))
    refuse_existing_images(sorted({out / split_name for split_name, _ in jobs}))

    def one(job: tuple[str, Pair]) -> tuple[str, Optional[str]]:
        split_name, pair = job
        try:
            if pair.b is None:
                ab = read_image(pair.a)
                if ab.shape[1] % 2:
                    return split_name, f"{pair.a}: width {ab.shape[1]} is odd, not two A|B halves; skipped"
                half = ab.shape[1] // 2
                a = resize_array(ab[:, :half], size, fit=fit, nearest=near_a)
                b = resize_array(ab[:, half:], size, fit=fit, nearest=near_b)
                save_image(np.concatenate([a, b], axis=1), out / split_name / pair.a.name,
                           bits=bit_depth(pair.a))
            else:
                for side, path, near in (("A", pair.a, near_a), ("B", pair.b, near_b)):
                    arr = resize_array(read_image(path), size, fit=fit, nearest=near)
                    save_image(arr, out / split_name / side / path.name, bits=bit_depth(path))
        except ImageReadError as e:
            return split_name, str(e)
        return split_name, None

    written: Counter = Counter()
    problems = []
    for split_name, problem in parallel_map(one, jobs, workers=workers, progress=progress, desc="resize"):
        if problem:
            problems.append(problem)
        else:
            written[split_name] += 1
    if not written:
        raise ValueError("nothing was resized; problems:\n  " + "\n  ".join(sorted(problems)[:20]))
    return {"written": dict(written), "problems": sorted(problems)}


# ---- check ----------------------------------------------------------------------------------------

def _digest(arr: np.ndarray) -> str:
    """Hash of the decoded pixels at 8-bit precision, so a PNG and its BMP copy match."""
    return hashlib.sha1((np.clip(arr, 0, 1) * 255 + 0.5).astype(np.uint8).tobytes() +
                        str(arr.shape).encode()).hexdigest()


def _mode_text(path: Path) -> str:
    if path.suffix.lower() == ".npy":
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
        return f"npy {arr.dtype} {arr.shape[2] if arr.ndim == 3 else 1}ch"
    with Image.open(path) as im:
        return im.mode + (" 16-bit" if is_16bit_colour(im) else "")


def inspect_dataset(root: str | Path, *, splits: Iterable[str] = SPLITS, decode: bool = True,
                    min_size: int = 256, workers: Optional[int] = None, progress: bool = False) -> dict:
    """Everything that would break or bias training, found in one pass over ``root``.

    Returns a JSON-ready dict: ``splits`` {name: None if missing, else pairs, layout, sizes and
    modes (counts), smallest side}, ``errors`` (would break training: missing or empty train split,
    unpaired or ambiguous files, unreadable or truncated files, size mismatches, odd A|B widths)
    and ``warnings`` (duplicates within or across splits, images smaller than ``min_size``, pictures
    that training does not read: other formats, subfolders).
    """
    root = Path(root)
    report: dict = {"root": str(root), "splits": {}, "errors": [], "warnings": []}
    if not root.is_dir():
        report["errors"].append(f"dataset folder {root} does not exist")
        return report
    digests: dict[str, list[tuple[str, str]]] = defaultdict(list)  # input digest -> [(split, file)]
    pair_digests: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for split_name in splits:
        d = root / split_name
        if not d.is_dir():
            report["splits"][split_name] = None
            continue
        layout = layout_of(d)
        if layout == "folders":
            a_files, a_dup = by_stem(list_images(d / "A"))
            b_files, b_dup = by_stem(list_images(d / "B"))
            report["errors"] += [f"{d}: ambiguous names: {x}" for x in a_dup + b_dup]
            only_a = [str(a_files[s]) for s in sorted(set(a_files) - set(b_files))]
            only_b = [str(b_files[s]) for s in sorted(set(b_files) - set(a_files))]
            report["errors"] += [f"{p}: no partner in {d / 'B'}{_case_hint(p, only_b)}" for p in only_a]
            report["errors"] += [f"{p}: no partner in {d / 'A'}{_case_hint(p, only_a)}" for p in only_b]
            pairs = [Pair(s, a_files[s], b_files[s]) for s in sorted(set(a_files) & set(b_files))]
            unread = ([f"{p}: beside {d / 'A'} and {d / 'B'}, not read" for p in list_images(d)] +
                      unread_images(d, skip=("A", "B")) + unread_images(d / "A") + unread_images(d / "B"))
        else:
            pairs = [Pair(p.stem, p) for p in list_images(d)]
            lone = lone_side(d)
            if lone:
                report["errors"].append(lone)
            unread = unread_images(d, skip=("A", "B") if lone else ())
        report["warnings"] += [f"not read by training: {u}" for u in unread]

        def one(pair: Pair) -> dict:
            info: dict = {"pair": pair}
            try:
                # The geometry checks are training's own (dataset.pair_size), so `check` and
                # `train` agree on what counts as a broken pair.
                info["size"] = pair_size(pair)
                info["modes"] = [_mode_text(p) for p in ([pair.a] if pair.b is None else [pair.a, pair.b])]
                if decode:
                    a, b = load_pair(pair)
                    # A blank input (an empty edge map) is not a leak of anything; only pairs count.
                    info["digest"] = _digest(a) if float(a.max() - a.min()) > 0 else None
                    info["pair_digest"] = _digest(np.concatenate(match_channels(a, b), axis=1))
            except (DatasetError, ImageReadError) as e:
                info["error"] = str(e)
            return info

        infos = list(parallel_map(one, pairs, workers=workers, progress=progress, desc=f"check {split_name}"))
        infos.sort(key=lambda i: i["pair"].name)
        good = [i for i in infos if "error" not in i]
        report["errors"] += [i["error"] for i in infos if "error" in i]
        for i in good:
            if "pair_digest" in i:
                pair_digests[i["pair_digest"]].append((split_name, str(i["pair"].a)))
                if i["digest"]:
                    digests[i["digest"]].append((split_name, str(i["pair"].a)))
        sizes = Counter(f"{i['size'][0]}x{i['size'][1]}" for i in good)
        modes = Counter(" + ".join(dict.fromkeys(i["modes"])) for i in good)
        smallest = min((min(i["size"]) for i in good), default=None)
        report["splits"][split_name] = {"pairs": len(good), "broken": len(infos) - len(good),
                                        "layout": layout, "sizes": dict(sizes.most_common()),
                                        "modes": dict(modes.most_common()), "smallest_side": smallest}
        if smallest is not None and smallest < min_size:
            report["warnings"].append(f"{split_name}: smallest image side is {smallest} px, below {min_size}; "
                                      f"train with a smaller --image-size or enlarge with `pix2pix data resize`")
    train = report["splits"].get("train")
    if "train" in splits and not (train and train["pairs"]):
        report["errors"].append(f"{root}/train holds no usable pairs: training needs A|B images in "
                                f"{root}/train/ or matching files in {root}/train/A/ and {root}/train/B/"
                                + flat_hint(root))
    covered: set[str] = set()  # files already reported as a duplicated pair
    for entries in pair_digests.values():
        if len(entries) < 2:
            continue
        files = ", ".join(f"{f} ({s})" for s, f in entries[:4])
        if len({s for s, _ in entries}) > 1:
            report["warnings"].append(f"the same pair is in several splits, so evaluation sees training "
                                      f"data: {files}")
            covered |= {f for _, f in entries}
        else:
            report["warnings"].append(f"duplicate pairs: {files}")
    for entries in digests.values():
        if len({s for s, _ in entries}) > 1 and not {f for _, f in entries} <= covered:
            files = ", ".join(f"{f} ({s})" for s, f in entries[:4])
            report["warnings"].append(f"the same input (A) is in several splits, so evaluation sees "
                                      f"training inputs: {files}")
    return report
