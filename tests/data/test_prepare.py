"""combine / split / resize / check on real photos (scikit-image wheel) and crafted bad files."""
import json
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data

from pix2pix.data.prepare import (combine, inspect_dataset, parse_size, resize_array, resize_dataset,
                                  split_dataset)
from pix2pix.util.imageio import read_image


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    """Eight real (64, 64, 3) uint8 crops: A of each pair; B is its gray version (a different image)."""
    out = []
    for img in (data.astronaut(), data.coffee(), data.chelsea(), data.rocket()):
        for top, left in ((0, 0), (90, 110)):
            out.append(np.ascontiguousarray(img[top:top + 64, left + 100:left + 164]))
    return out


def gray_of(rgb: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).convert("L"))


def write_ab(root, photos, names=None, a_ext="png", b_ext="jpg", split=None):
    a_dir, b_dir = root / "A", root / "B"
    if split:
        a_dir, b_dir = a_dir / split, b_dir / split
    a_dir.mkdir(parents=True, exist_ok=True)
    b_dir.mkdir(parents=True, exist_ok=True)
    names = names or [f"img{i:02d}" for i in range(len(photos))]
    for name, p in zip(names, photos):
        Image.fromarray(p).save(a_dir / f"{name}.{a_ext}")
        Image.fromarray(gray_of(p)).save(b_dir / f"{name}.{b_ext}", quality=95)
    return root / "A", root / "B"


def cli(*args):
    """The real command in a subprocess (used once: the entry point and exit status end to end)."""
    return subprocess.run([sys.executable, "-m", "pix2pix", "data", *map(str, args)], capture_output=True,
                          text=True, timeout=120)


def run(capsys, *args) -> tuple[int, str, str]:
    """The command in this process (fast): (exit status, stdout, stderr)."""
    from pix2pix.cli import main

    code = main(["data", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


# ---- combine ---------------------------------------------------------------------------------------

def test_combine_writes_exact_side_by_side_pairs(tmp_path, photos):
    a, b = write_ab(tmp_path, photos[:4])
    report = combine(a, b, tmp_path / "out", workers=2)
    assert report.written == {"train": 4} and not report.problems
    ab = read_image(tmp_path / "out" / "train" / "img02.png")
    assert ab.shape == (64, 128, 3)
    assert np.array_equal((ab[:, :64] * 255 + 0.5).astype(np.uint8), photos[2])
    jpeg_b = np.asarray(Image.open(b / "img02.jpg"))
    assert np.array_equal((ab[:, 64:, 0] * 255 + 0.5).astype(np.uint8), jpeg_b)  # gray B widened to RGB


def test_combine_reports_every_stray_and_mismatch(tmp_path, photos):
    a, b = write_ab(tmp_path, photos[:5])
    Image.fromarray(photos[5]).save(a / "only_in_a.png")
    Image.fromarray(photos[6]).save(b / "only_in_b.png")
    Image.fromarray(photos[7][:50]).save(b / "img01.jpg")  # 64x50 instead of 64x64
    (a / "img03.png").write_bytes((a / "img03.png").read_bytes()[:300])  # truncated
    Image.fromarray(photos[0]).save(a / "img04.jpg")  # img04.png and img04.jpg: ambiguous
    report = combine(a, b, tmp_path / "out")
    assert report.written == {"train": 2}
    assert sorted((tmp_path / "out" / "train").iterdir()) == [tmp_path / "out" / "train" / "img00.png",
                                                              tmp_path / "out" / "train" / "img02.png"]
    text = "\n".join(report.problems)
    assert "no partner in B: " in text and "only_in_a.png" in text
    assert "no partner in A: " in text and "only_in_b.png" in text
    assert "img01.png is 64x64 but" in text and "img01.jpg is 64x50" in text
    assert "img03.png" in text and "truncated" in text
    assert "img04.jpg, img04.png share the name 'img04'" in text
    assert len(report.problems) == 5


def test_combine_with_nothing_to_pair_fails_loudly(tmp_path, photos):
    a, b = write_ab(tmp_path, photos[:3], names=["x1", "x2", "x3"])
    for f in b.iterdir():
        f.rename(f.with_name("y" + f.name[1:]))
    with pytest.raises(ValueError, match=r"(?s)no pairs could be made.*no partner in B: .*x1\.png"):
        combine(a, b, tmp_path / "out")
    res = cli("combine", a, b, "--out", tmp_path / "out2", "--no-progress")
    assert res.returncode == 2 and "no pairs could be made" in res.stderr
    assert not (tmp_path / "out2" / "train").exists() or not any((tmp_path / "out2" / "train").iterdir())


def test_combine_follows_splits_and_folders_layout_copies_bytes(tmp_path, photos):
    write_ab(tmp_path, photos[:3], split="train")
    a, b = write_ab(tmp_path, photos[3:5], names=["v0", "v1"], split="val")
    report = combine(a, b, tmp_path / "out", layout="folders")
    assert report.written == {"train": 3, "val": 2}
    for split, name in (("train", "img00"), ("val", "v1")):
        assert (tmp_path / "out" / split / "A" / f"{name}.png").read_bytes() == \
            (tmp_path / "A" / split / f"{name}.png").read_bytes()
        assert (tmp_path / "out" / split / "B" / f"{name}.jpg").is_file()
    assert inspect_dataset(tmp_path / "out")["errors"] == []


def test_combine_keeps_sixteen_bits(tmp_path, photos):
    (tmp_path / "A").mkdir()
    (tmp_path / "B").mkdir()
    deep = photos[0].astype(np.uint16) * 257 + 3
    cv2.imwrite(str(tmp_path / "A" / "d.png"), deep[:, :, ::-1])
    cv2.imwrite(str(tmp_path / "B" / "d.png"), deep[:, :, 0])
    combine(tmp_path / "A", tmp_path / "B", tmp_path / "out")
    ab = read_image(tmp_path / "out" / "train" / "d.png")
    assert np.abs(ab[:, :64] * 65535 - deep).max() < 0.02
    assert np.abs(ab[:, 64:, 1] * 65535 - deep[:, :, 0]).max() < 0.02


def test_combine_cli_reports_throughput_and_strict(tmp_path, photos, capsys):
    a, b = write_ab(tmp_path, photos[:3])
    Image.fromarray(photos[4]).save(a / "stray.png")
    code, out, err = run(capsys, "combine", a, b, "--out", tmp_path / "o", "--no-progress")
    assert code == 0, err
    assert "wrote 3 pairs" in out and "pairs/s" in out and "stray.png" in err
    assert run(capsys, "combine", a, b, "--out", tmp_path / "o2", "--no-progress", "--strict")[0] == 1


# ---- split -----------------------------------------------------------------------------------------

def _make_flat(root, photos, n=20):
    root.mkdir(parents=True)
    for i in range(n):
        p = photos[i % len(photos)]
        Image.fromarray(np.concatenate([p, np.roll(p, i, axis=1)], axis=1)).save(root / f"ph{i // 4}_t{i % 4}.png")


def test_split_is_reproducible_and_complete(tmp_path, photos):
    for run in ("a", "b"):
        _make_flat(tmp_path / run, photos)
        assert split_dataset(tmp_path / run, val=0.2, test=0.1, seed=3) == {"train": 14, "val": 4, "test": 2}
    for split in ("train", "val", "test"):
        names = lambda r: sorted(p.name for p in (tmp_path / r / split).iterdir())  # noqa: E731
        assert names("a") == names("b")
    assert not list((tmp_path / "a").glob("*.png"))  # everything moved
    _make_flat(tmp_path / "c", photos)
    split_dataset(tmp_path / "c", val=0.2, test=0.1, seed=4)
    assert sorted(p.name for p in (tmp_path / "c" / "val").iterdir()) != \
        sorted(p.name for p in (tmp_path / "a" / "val").iterdir())


def test_split_group_keeps_tiles_of_one_photo_together(tmp_path, photos):
    _make_flat(tmp_path / "d", photos)
    counts = split_dataset(tmp_path / "d", val=0.2, test=0.2, seed=0, group=r"^(ph\d+)_", out=tmp_path / "o")
    assert sum(counts.values()) == 20 and counts["val"] == 4 and counts["test"] == 4
    owner = {}
    for split in ("train", "val", "test"):
        for f in (tmp_path / "o" / split).iterdir():
            assert owner.setdefault(f.name.split("_")[0], split) == split
    assert len(list((tmp_path / "d").glob("*.png"))) == 20  # --out copies, leaves the input alone


def test_split_folders_layout_from_train_and_refuses_existing_val(tmp_path, photos):
    root = tmp_path / "ds"
    write_ab(tmp_path / "tmp", photos)
    combine(tmp_path / "tmp" / "A", tmp_path / "tmp" / "B", root, layout="folders")
    counts = split_dataset(root, val=0.25, test=0.25, seed=1)
    assert counts == {"train": 4, "val": 2, "test": 2}
    report = inspect_dataset(root)
    assert report["errors"] == [] and report["splits"]["val"]["pairs"] == 2
    with pytest.raises(ValueError, match=r"val already holds pairs"):
        split_dataset(root, val=0.25, test=0.25, seed=1)


# ---- resize ----------------------------------------------------------------------------------------

def test_resize_array_modes():
    img = data.coffee().astype(np.float32) / 255  # 400 x 600
    assert resize_array(img, (128, 128), fit="crop").shape == (128, 128, 3)
    assert resize_array(img, (128, 64), fit="stretch").shape == (64, 128, 3)
    assert resize_array(img, (200, 200), fit="short").shape == (200, 300, 3)
    labels = (np.arange(400 * 600).reshape(400, 600, 1) % 7 / 6).astype(np.float32)
    out = resize_array(labels, (97, 97), fit="crop", nearest=True)
    assert set(np.unique(out)) <= set(np.unique(labels))  # no blended label values
    assert parse_size("512x256") == (512, 256) and parse_size(" 64 ") == (64, 64)
    with pytest.raises(ValueError, match="not N or WxH"):
        parse_size("0x5")


def test_resize_dataset_resizes_each_half_and_fixes_mismatch(tmp_path, photos):
    root = tmp_path / "ds"
    (root / "train").mkdir(parents=True)
    big = data.astronaut()[:200, :300]
    Image.fromarray(np.concatenate([big, big[:, ::-1]], axis=1)).save(root / "train" / "ab.png")
    (root / "val" / "A").mkdir(parents=True)
    (root / "val" / "B").mkdir(parents=True)
    Image.fromarray(big).save(root / "val" / "A" / "x.png")
    Image.fromarray(big[::2, ::2]).save(root / "val" / "B" / "x.jpg")  # half resolution: a mismatch
    assert inspect_dataset(root, min_size=1)["errors"]
    result = resize_dataset(root, tmp_path / "out", (96, 64), fit="stretch")
    assert result["written"] == {"train": 1, "val": 1}
    ab = read_image(tmp_path / "out" / "train" / "ab.png")
    assert ab.shape == (64, 192, 3)
    # each half was resized on its own: the right half is the mirror of the left
    assert np.abs(ab[:, 96:] - ab[:, :96][:, ::-1]).mean() < 0.02
    assert inspect_dataset(tmp_path / "out", min_size=1)["errors"] == []
    with pytest.raises(ValueError, match="must differ"):
        resize_dataset(root, root, (64, 64))


# ---- check -----------------------------------------------------------------------------------------

def test_check_counts_sizes_modes_and_finds_every_problem(tmp_path, photos):
    root = tmp_path / "ds"
    write_ab(tmp_path / "src", photos[:6])
    combine(tmp_path / "src" / "A", tmp_path / "src" / "B", root)
    split_dataset(root, val=0.2, test=0.2, seed=0)
    clean = inspect_dataset(root, min_size=64)
    assert clean["errors"] == [] and clean["warnings"] == []
    assert {s: i["pairs"] for s, i in clean["splits"].items()} == {"train": 4, "val": 1, "test": 1}
    assert clean["splits"]["train"]["sizes"] == {"64x64": 4} and clean["splits"]["train"]["modes"] == {"RGB": 4}

    val_file = next((root / "val").iterdir())
    shutil.copy(val_file, root / "train" / "leak.png")  # a val pair also in train
    (root / "test" / "odd.png").write_bytes(b"")
    Image.fromarray(np.zeros((64, 129, 3), np.uint8)).save(root / "train" / "oddwidth.png")
    Image.fromarray(photos[0][:40]).convert("L").save(root / "train" / "small.png", bits=8)
    report = inspect_dataset(root, min_size=64)
    errors, warnings = "\n".join(report["errors"]), "\n".join(report["warnings"])
    assert "odd.png" in errors and "oddwidth.png: width 129 is odd" in errors
    assert "the same pair is in several splits" in warnings and "leak.png" in warnings and val_file.name in warnings
    assert "smallest image side is 32 px" in warnings  # the halves of a 64 px wide A|B image
    assert report["splits"]["train"]["modes"] == {"RGB": 5, "L": 1}


def test_check_cli_json_and_exit_codes(tmp_path, photos, capsys):
    root = tmp_path / "ds"
    write_ab(tmp_path / "src", photos[:4])
    combine(tmp_path / "src" / "A", tmp_path / "src" / "B", root)
    code, out, err = run(capsys, "check", root, "--json", "--min-size", "64")
    assert code == 0, out + err
    report = json.loads(out)
    assert report["splits"]["train"]["pairs"] == 4 and report["splits"]["val"] is None
    code, out, _ = run(capsys, "check", root, "--no-progress")  # 64 px < the default 256: a warning
    assert code == 0 and "train: 4 pairs (combined); sizes 64x64 x4" in out
    assert "smallest image side is 64 px" in out
    assert run(capsys, "check", root, "--strict", "--no-progress")[0] == 1
    (root / "train" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    code, out, _ = run(capsys, "check", root, "--no-progress")
    assert code == 1 and "broken.png" in out and "errors stop training" in out
    assert run(capsys, "check", tmp_path / "nothing", "--no-progress")[0] == 1


def test_blank_inputs_are_not_reported_as_leaks(tmp_path, photos):
    """Two different photos whose edge maps are both empty share an input, but leak nothing."""
    for split, p in (("train", photos[0]), ("val", photos[1])):
        (tmp_path / split).mkdir()
        Image.fromarray(np.concatenate([np.full_like(p, 255), p], axis=1)).save(tmp_path / split / "x.png")
    assert inspect_dataset(tmp_path, min_size=64)["warnings"] == []
    shutil.copy(tmp_path / "train" / "x.png", tmp_path / "val" / "y.png")  # a real duplicate still is
    assert "the same pair is in several splits" in inspect_dataset(tmp_path, min_size=64)["warnings"][0]
