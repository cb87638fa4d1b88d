"""The built-in photo examples: made from the photos that installed packages ship, split by photo,
with every photo's source and licence written beside the data."""
import subprocess
import sys

import numpy as np
import pytest

from pix2pix.data.examples import EXAMPLES, example_photos, make_example
from pix2pix.data.prepare import inspect_dataset
from pix2pix.util.imageio import read_image


@pytest.fixture(scope="module", params=["edges2photos", "gray2color", "sketch2photo", "inpaint"])
def example(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(request.param)
    return request.param, out, make_example(request.param, out, size=64)


def test_example_is_a_clean_dataset_split_by_photo(example):
    name, out, summary = example
    pairs = summary["pairs"]
    assert pairs["train"] > pairs["val"] > 0 and pairs["test"] > 0
    report = inspect_dataset(out, min_size=64)
    assert report["errors"] == [] and not [w for w in report["warnings"] if "several splits" in w]
    assert {s: i["pairs"] for s, i in report["splits"].items()} == pairs
    owners = {}
    for f in out.rglob("*.jpg"):
        owners.setdefault(f.stem.rsplit("_", 1)[0], set()).add(f.parent.name)
    assert len(owners) == len(example_photos()) and all(len(s) == 1 for s in owners.values())


def test_example_lists_every_photo_with_its_licence(example):
    name, out, _ = example
    text = (out / "SOURCE.md").read_text()
    assert EXAMPLES[name].description in text and "Licence:" in text
    for photo in example_photos():
        assert f"- {photo.path}: " in text
    assert "chelsea.png: Stefan van der Walt, CC0" in text and "china.jpg: danielbuechele (Flickr), CC-BY-2.0" in text


def test_example_pairs_are_what_they_claim(example):
    name, out, _ = example
    for f in sorted((out / "test").iterdir())[:5]:
        ab = read_image(f)
        a, b = ab[:, :64], ab[:, 64:]
        if name == "gray2color":
            luma = b @ np.float32([0.299, 0.587, 0.114])
            assert np.abs(a - luma[:, :, None]).mean() < 0.03  # A is B's gray (JPEG aside)
            assert np.abs(a[:, :, 0] - a[:, :, 2]).max() < 0.05
        elif name == "inpaint":
            hole = (a > 0.98).all(axis=2) & ~(b > 0.98).all(axis=2)  # white in A, not white in B
            assert 0.05 < hole.mean() < 0.45  # 10-30 % of the tile, give or take JPEG and white skies
            keep = ~(a > 0.98).all(axis=2)
            assert np.median(np.abs(a[keep] - b[keep])) < 0.02  # elsewhere A is B (JPEG rings at hole edges)
        else:  # edges2photos, sketch2photo: dark strokes on white
            assert (a > 0.8).mean() > 0.6 and (a < 0.5).mean() > 0.005


def test_example_list_cli():
    res = subprocess.run([sys.executable, "-m", "pix2pix", "data", "example", "--list"], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0
    for name in EXAMPLES:
        assert f"{name}: " in res.stdout
    assert res.stdout.count("licence:") == len(EXAMPLES)
