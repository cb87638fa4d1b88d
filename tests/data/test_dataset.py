import numpy as np
import pytest
import torch
from PIL import Image

from pix2pix.data import DatasetError, Jitter, PairedDataset, open_split, scan_pairs
from pix2pix.util.imageio import ImageReadError, read_image
from conftest import cut_pairs, write_combined, write_folders

NOJIT = Jitter("none", 64, 64, False)


def _open(root, **kw):
    return open_split(root, "train", jitter=NOJIT, in_channels=kw.pop("in_channels", 3),
                      out_channels=kw.pop("out_channels", 3), direction=kw.pop("direction", "AtoB"),
                      train=False, **kw)


def test_combined_layout_splits_halves(tmp_path, world):
    pairs = cut_pairs(world, 2, 64)
    write_combined(tmp_path, "train", pairs)
    ds = _open(tmp_path)
    a, b = pairs[0]
    assert torch.allclose(ds[0]["input"], torch.from_numpy(a.transpose(2, 0, 1) / 127.5 - 1).float(), atol=1e-6)
    assert torch.allclose(ds[0]["target"], torch.from_numpy(b.transpose(2, 0, 1) / 127.5 - 1).float(), atol=1e-6)


def test_folder_layout_pairs_by_stem_across_extensions(tmp_path, world):
    pairs = cut_pairs(world, 3, 64)
    write_folders(tmp_path, "train", pairs)
    ds = _open(tmp_path)
    assert len(ds) == 3 and ds[1]["name"] == "img001"
    assert torch.allclose(ds[1]["input"], torch.from_numpy(pairs[1][0].transpose(2, 0, 1) / 127.5 - 1).float(), atol=1e-6)


def test_direction_btoa_swaps(tmp_path, world):
    write_combined(tmp_path, "train", cut_pairs(world, 1, 64))
    ab, ba = _open(tmp_path)[0], _open(tmp_path, direction="BtoA")[0]
    assert torch.equal(ab["input"], ba["target"]) and torch.equal(ab["target"], ba["input"])


def test_gray_input_rgb_target(tmp_path, world):
    (a, b), = cut_pairs(world, 1, 64)
    (tmp_path / "train" / "A").mkdir(parents=True)
    (tmp_path / "train" / "B").mkdir(parents=True)
    Image.fromarray(a[:, :, 0]).save(tmp_path / "train" / "A" / "x.png")
    Image.fromarray(b).save(tmp_path / "train" / "B" / "x.png")
    item = _open(tmp_path, in_channels=1)[0]
    assert item["input"].shape == (1, 64, 64) and item["target"].shape == (3, 64, 64)


def test_sixteen_bit_png_keeps_precision(tmp_path):
    ramp = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 13).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "g16.png")
    arr = read_image(tmp_path / "g16.png")
    assert arr.shape == (64, 64, 1)
    assert np.allclose(arr[:, :, 0] * 65535, ramp, atol=0.01)
    assert len(np.unique(arr)) == 64 * 64  # 8-bit would collapse these


def test_n_channel_npy(tmp_path):
    rng = np.random.default_rng(0)
    for side, c in (("A", 5), ("B", 2)):
        (tmp_path / "train" / side).mkdir(parents=True)
        np.save(tmp_path / "train" / side / "s.npy", rng.random((32, 32, c)).astype(np.float32))
    item = _open(tmp_path, in_channels=5, out_channels=2)[0]
    assert item["input"].shape == (5, 32, 32) and item["target"].shape == (2, 32, 32)


def test_exif_orientation_respected(tmp_path):
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 on display
    img.save(tmp_path / "r.jpg", exif=exif)
    assert read_image(tmp_path / "r.jpg").shape == (40, 20, 3)


# ---- every bad-data case stops before training with the file named --------------------------------

def test_missing_split(tmp_path, world):
    write_combined(tmp_path, "val", cut_pairs(world, 1, 64))
    with pytest.raises(DatasetError, match=r"no 'train' split.*found: val"):
        _open(tmp_path)


def test_missing_root(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        _open(tmp_path / "nope")


def test_no_pairs(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "notes.txt").write_text("hi")
    with pytest.raises(DatasetError, match="holds no image pairs"):
        _open(tmp_path)


def test_size_mismatch_names_both_files(tmp_path, world):
    write_folders(tmp_path, "train", cut_pairs(world, 2, 64))
    Image.fromarray(np.zeros((50, 64, 3), np.uint8)).save(tmp_path / "train" / "B" / "img001.jpg")
    with pytest.raises(DatasetError, match=r"img001\.png is 64x64 but .*img001\.jpg is 64x50"):
        _open(tmp_path)


def test_unpaired_stems_listed(tmp_path, world):
    write_folders(tmp_path, "train", cut_pairs(world, 2, 64))
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "train" / "A" / "lonely.png")
    with pytest.raises(DatasetError, match=r"1 in A/ have no partner in B/: lonely"):
        _open(tmp_path)


def test_unreadable_file_named(tmp_path, world):
    write_combined(tmp_path, "train", cut_pairs(world, 1, 64))
    (tmp_path / "train" / "bad.png").write_bytes(b"this is not a png")
    with pytest.raises(DatasetError, match=r"bad\.png"):
        _open(tmp_path)


def test_truncated_file_named(tmp_path, world):
    write_combined(tmp_path, "train", cut_pairs(world, 2, 64))
    path = tmp_path / "train" / "p001.png"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match=r"p001\.png.*(truncated|corrupt)"):
        _open(tmp_path)
    with pytest.raises(ImageReadError, match=r"p001\.png"):
        read_image(path)


def test_odd_width_combined(tmp_path):
    (tmp_path / "train").mkdir()
    Image.fromarray(np.zeros((64, 129, 3), np.uint8)).save(tmp_path / "train" / "odd.png")
    with pytest.raises(DatasetError, match=r"odd\.png: width 129 is odd"):
        _open(tmp_path)


def test_channel_mismatch_is_clear(tmp_path):
    rng = np.random.default_rng(0)
    for side in "AB":
        (tmp_path / "train" / side).mkdir(parents=True)
        np.save(tmp_path / "train" / side / "s.npy", rng.random((32, 32, 5)).astype(np.float32))
    with pytest.raises(DatasetError, match=r"s\.npy \(input\) has 5 channel\(s\) but the model expects 3"):
        _open(tmp_path)
