"""Held-out examples stored with a model, so a studio opens on a real input of the model's own
data rather than a blank canvas (`pix2pix export --web`, `pix2pix serve`, the demo).

A model directory (pretrained dir or run dir) may hold::

    examples/examples.json    {"examples": [{"name", "input", "output", "source"}, ...]}
    examples/NAME.png         the input, at the model's training size
    examples/NAME.out.png     what `pix2pix translate` makes of it (the reference)

Where a directory has none, :func:`find_inputs` takes a few evenly spaced pairs of the held-out
split (test, else the validation split) of the dataset its training config names.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from PIL import Image

from ..checkpoint import builtin_or_path
from ..inference.translator import Translator
from ..util.imageio import read_image, save_image

log = logging.getLogger(__name__)

FOLDER = "examples"
INDEX = "examples.json"
COUNT = 4  # enough to show the range of the data, few enough for a small page


@dataclass(frozen=True)
class ExampleInput:
    """One input to store: ``image`` (H, W, C) float32 in [0, 1]; ``source`` says where it came from."""

    name: str
    image: np.ndarray
    source: str


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "-", name).strip(".-") or "example"


def fit(image: np.ndarray, size: int) -> np.ndarray:
    """(H, W, C) in [0, 1] -> (size, size, C): the centre square, scaled to the training size (as
    the data pipeline's resize-and-crop shows the model its inputs)."""
    h, w = image.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    square = image[top:top + s, left:left + s]
    if s == size:
        return np.ascontiguousarray(square)
    # Nearest for label maps would keep classes exact, but a square of the training size is the
    # common case (no resampling at all); Lanczos for the rest.
    chans = [np.asarray(Image.fromarray(square[:, :, c].astype(np.float32), mode="F").resize(
        (size, size), Image.LANCZOS)) for c in range(square.shape[2])]
    return np.clip(np.stack(chans, axis=2), 0, 1)


def stored(folder: str | Path) -> Optional[Path]:
    """The examples folder of a model directory (pretrained, checkpoint or run dir), or None."""
    # A built-in's name finds the examples shipped with it, as every --model does.
    p = builtin_or_path(folder)
    if p.is_file():
        p = p.parent
    run = _run_dir(p)  # a checkpoint's examples are its run's
    for candidate in (p / FOLDER, p / "model" / FOLDER, p.parent / FOLDER, *([run / FOLDER] if run else [])):
        if (candidate / INDEX).is_file():
            return candidate
    return None


def read_index(folder: str | Path) -> list[dict]:
    """The entries of ``folder/examples.json`` whose files exist (name, input, output, source)."""
    folder = Path(folder)
    try:
        entries = json.loads((folder / INDEX).read_text()).get("examples", [])
    except (OSError, ValueError, AttributeError) as e:
        log.warning("ignoring %s: %s", folder / INDEX, e)
        return []
    ok = []
    for e in entries:
        if not isinstance(e, dict) or not isinstance(e.get("input"), str):
            continue
        if not (folder / e["input"]).is_file() or Path(e["input"]).name != e["input"]:
            continue
        if not isinstance(e.get("output"), str) or not (folder / e["output"]).is_file() \
                or Path(e["output"]).name != e["output"]:
            e = {**e, "output": None}
        ok.append({"name": str(e.get("name") or Path(e["input"]).stem), "input": e["input"],
                   "output": e.get("output"), "source": str(e.get("source", ""))})
    return ok


def _run_dir(model: Path) -> Optional[Path]:
    """The training run a model path belongs to (run dir, checkpoint dir or its model/ dir)."""
    for p in (model, model.parent, model.parent.parent, model.parent.parent.parent):
        if (p / "latest.json").is_file() and (p / "config.json").is_file():
            return p
    return None


def held_out_inputs(model: str | Path, count: int = COUNT) -> list[ExampleInput]:
    """``count`` evenly spaced inputs of the held-out split (test, else val) of the dataset the
    run's training config names; [] when the path is not a run or its data is gone."""
    from ..data.dataset import DatasetError, load_pair, scan_pairs

    run = _run_dir(Path(model))
    if run is None:
        return []
    try:
        data = json.loads((run / "config.json").read_text()).get("data", {})
    except (OSError, ValueError):
        return []
    root, direction = data.get("root"), data.get("direction", "AtoB")
    if not root or not Path(root).is_dir():
        return []
    for split in ("test", data.get("val_split") or "val"):
        try:
            pairs = scan_pairs(root, split)
        except DatasetError:
            continue
        picks = sorted({int(round(i)) for i in np.linspace(0, len(pairs) - 1, min(count, len(pairs)))})
        out = []
        for i in picks:
            a, b = load_pair(pairs[i])
            stem = Path(pairs[i].a).stem
            out.append(ExampleInput(f"{split}-{_safe(stem)}", b if direction == "BtoA" else a,
                                    f"{Path(root).name}/{split}/{Path(pairs[i].a).name}"))
        return out
    return []


def find_inputs(model: str | Path, count: int = COUNT) -> tuple[list[ExampleInput], Optional[Path]]:
    """(inputs to store, the folder they came from if already stored): stored examples first,
    then the run's held-out data."""
    folder = stored(model)
    if folder is not None:
        entries = read_index(folder)[:count]
        return [ExampleInput(e["name"], read_image(folder / e["input"]), e["source"]) for e in entries], folder
    return held_out_inputs(model, count), None


def write_examples(translator: Translator, inputs: Sequence[ExampleInput], folder: str | Path) -> list[dict]:
    """Write each input (fitted to the training size, 8-bit PNG) and its translation as
    `pix2pix translate` makes it into ``folder``, with the index; returns the index entries."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    size = translator.info.image_size
    entries, used = [], set()
    for ex in inputs:
        name = _safe(ex.name)
        while name in used:
            name += "_"
        used.add(name)
        image = fit(ex.image, size)
        # The stored 8-bit input is what the page will read: translate that, not the float image.
        inp = save_image(image, folder / f"{name}.png")
        out = save_image(translator.translate_array(read_image(inp)), folder / f"{name}.out.png")
        entries.append({"name": name, "input": inp.name, "output": out.name, "source": ex.source})
    (folder / INDEX).write_text(json.dumps({"examples": entries}, indent=1) + "\n")
    log.info("stored %d examples in %s", len(entries), folder)
    return entries


__all__ = ["ExampleInput", "FOLDER", "INDEX", "COUNT", "stored", "read_index", "held_out_inputs",
           "find_inputs", "write_examples", "fit"]
