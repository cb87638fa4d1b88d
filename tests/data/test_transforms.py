import numpy as np
import torch

from pix2pix.data import Jitter, PairedDataset, scan_pairs
from conftest import write_combined


def test_input_and_target_get_the_same_draw(tmp_path):
    """A == B on disk, so any difference after jitter means the two drew different crops/flips."""
    rng = np.random.default_rng(0)
    img = (rng.random((150, 150, 3)) * 255).astype(np.uint8)
    img[:, :75] = img[:, :75] // 2  # asymmetric, so a flip is visible
    write_combined(tmp_path, "train", [(img, img)])
    ds = PairedDataset(scan_pairs(tmp_path, "train"), jitter=Jitter("resize_crop", 128, 143, True))
    crops = set()
    for seed in range(40):
        item = ds[(0, seed)]
        assert item["input"].shape == (3, 128, 128)
        assert torch.equal(item["input"], item["target"])
        crops.add(item["input"][:, 0, 0].sum().item())
    assert len(crops) > 10, "jitter should vary between draws"


def test_flip_and_crop_really_happen(tmp_path):
    ramp = np.tile(np.linspace(0, 255, 160).astype(np.uint8)[None, :, None], (160, 1, 3))
    write_combined(tmp_path, "train", [(ramp, ramp)])
    ds = PairedDataset(scan_pairs(tmp_path, "train"), jitter=Jitter("crop", 128, 128, True))
    flipped = [bool(ds[(0, s)]["input"][0, 0, 0] > ds[(0, s)]["input"][0, 0, -1]) for s in range(30)]
    assert 5 < sum(flipped) < 25


def test_eval_mode_is_centre_crop_without_flip(tmp_path):
    ramp = np.tile(np.linspace(0, 255, 160).astype(np.uint8)[None, :, None], (160, 1, 3))
    write_combined(tmp_path, "train", [(ramp, ramp)])
    ds = PairedDataset(scan_pairs(tmp_path, "train"), jitter=Jitter("crop", 128, 128, True), train=False)
    a, b = ds[(0, 1)]["input"], ds[(0, 2)]["input"]
    assert torch.equal(a, b)
    expected = torch.from_numpy(ramp[16:144, 16:144].transpose(2, 0, 1).astype(np.float32)) / 127.5 - 1
    assert torch.allclose(a, expected, atol=1e-6)


def test_resize_mode_and_none(tmp_path):
    img = np.zeros((100, 60, 3), np.uint8)
    write_combined(tmp_path, "train", [(img, img)])
    pairs = scan_pairs(tmp_path, "train")
    assert PairedDataset(pairs, jitter=Jitter("resize", 64, 64, False))[0]["input"].shape == (3, 64, 64)
    assert PairedDataset(pairs, jitter=Jitter("none", 64, 64, False))[0]["input"].shape == (3, 100, 60)
