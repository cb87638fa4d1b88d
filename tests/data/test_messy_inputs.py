"""A user's messy folders through the data tools: pictures the tools pass over are named, earlier
output is never mixed with new pairs, bad options fail with the option named, and broken photos do
not take a held-out split's place."""
import numpy as np
import pytest
from PIL import Image
from skimage import data

from pix2pix.data import scan_pairs
from pix2pix.data.dataset import DatasetError
from pix2pix.data.examples import make_example
from pix2pix.data.pairmakers import Grayscale, Tiling, make_pairs
from pix2pix.data.prepare import combine, inspect_dataset, resize_dataset, split_dataset


def crop(i: int) -> np.ndarray:
    """A real 64 px RGB crop, a different one for each ``i``."""
    return np.ascontiguousarray(data.astronaut()[40 * i:40 * i + 64, 200:264])


def two_folders(root, names):
    (root / "A").mkdir(parents=True, exist_ok=True)
    (root / "B").mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        Image.fromarray(crop(i)).save(root / "A" / f"{name}.png")
        Image.fromarray(crop(i)).convert("L").save(root / "B" / f"{name}.jpg")
    return root / "A", root / "B"


def run(capsys, *args) -> tuple[int, str, str]:
    from pix2pix.cli import main

    code = main(["data", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


# ---- pictures the tools do not read are named, never dropped silently --------------------------------

def test_combine_names_gif_subfolder_and_files_beside_splits(tmp_path):
    a, b = two_folders(tmp_path / "flat", ["x", "y"])
    Image.fromarray(crop(3)).save(a / "z.gif")
    Image.fromarray(crop(3)).save(b / "z.gif")
    (a / "more").mkdir()
    Image.fromarray(crop(4)).save(a / "more" / "w.png")
    (a / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")  # hidden: not a picture, not reported
    (b / "._x.jpg").write_bytes(b"AppleDouble")
    report = combine(a, b, tmp_path / "out")
    assert report.written == {"train": 2}
    text = "\n".join(report.problems)
    assert f"{a / 'z.gif'}: .gif is not a format pix2pix reads" in text and f"{b / 'z.gif'}" in text
    assert f"{a / 'more'}: a subfolder with 1 image(s), not read" in text
    assert len(report.problems) == 3 and "DS_Store" not in text and "._x" not in text

    a, b = two_folders(tmp_path / "split", [])
    two_folders(tmp_path / "split", ["t0", "t1"])  # flat pictures beside a train/ folder of A
    (a / "train").mkdir()
    (b / "train").mkdir()
    for f in ("t0.png", "t1.png"):
        (a / f).rename(a / "train" / f)
    (b / "t0.jpg").rename(b / "train" / "t0.jpg")
    report = combine(a, b, tmp_path / "out2")
    assert report.written == {"train": 1}
    assert any(p.startswith(f"{b / 't1.jpg'}: beside the train folders, not read") for p in report.problems)


def test_check_warns_about_pictures_training_passes_over(tmp_path):
    split = tmp_path / "ds" / "train"
    two_folders(split, ["x", "y"])
    Image.fromarray(crop(2)).save(split / "A" / "z.gif")
    Image.fromarray(crop(2)).save(split / "stray.png")
    report = inspect_dataset(tmp_path / "ds", min_size=1)
    assert report["errors"] == [] and report["splits"]["train"]["pairs"] == 2
    warnings = "\n".join(report["warnings"])
    assert f"not read by training: {split / 'A' / 'z.gif'}: .gif is not a format" in warnings
    assert f"not read by training: {split / 'stray.png'}: beside" in warnings


def test_a_folder_without_b_is_named_by_check_and_training(tmp_path):
    split = tmp_path / "ds" / "train"
    two_folders(split, ["x"])
    for f in (split / "B").iterdir():
        f.unlink()
    (split / "B").rmdir()
    report = inspect_dataset(tmp_path / "ds", min_size=1)
    assert any(f"{split / 'A'} has no partner folder {split / 'B'}" in e for e in report["errors"])
    assert not [w for w in report["warnings"] if "subfolder" in w]  # the cause is B missing, not A
    with pytest.raises(DatasetError, match="has no partner folder"):
        scan_pairs(tmp_path / "ds", "train")


def test_pairs_outside_split_folders_get_the_split_command(tmp_path):
    root = tmp_path / "flat"
    root.mkdir()
    for i in range(3):
        Image.fromarray(np.concatenate([crop(i), crop(i + 1)], axis=1)).save(root / f"p{i}.png")
    hint = f"{root} itself holds 3 image(s): `pix2pix data split {root}`"
    assert hint in "\n".join(inspect_dataset(root)["errors"])
    with pytest.raises(DatasetError, match="pix2pix data split"):
        scan_pairs(root, "train")
    with pytest.raises(ValueError, match="pix2pix data split"):
        resize_dataset(root, tmp_path / "small", (32, 32))


# ---- earlier output is never mixed with a new run's ---------------------------------------------------

def test_tools_refuse_to_write_among_an_earlier_runs_images(tmp_path, capsys):
    a, b = two_folders(tmp_path / "in", ["x", "y", "z"])
    combine(a, b, tmp_path / "ds")
    (a / "z.png").unlink()  # the user drops a bad pair and runs again: z must not survive in ds
    with pytest.raises(ValueError, match=r"ds/train already holds 3 image\(s\).*nothing was written"):
        combine(a, b, tmp_path / "ds")
    code, _, err = run(capsys, "combine", a, b, "--out", tmp_path / "ds", "--no-progress")
    assert code == 2 and "already holds" in err
    # another split of the same dataset is a different folder: allowed
    assert combine(a, b, tmp_path / "ds", split="val").written == {"val": 2}

    resize_dataset(tmp_path / "ds", tmp_path / "ds32", (32, 32))
    with pytest.raises(ValueError, match="already holds"):
        resize_dataset(tmp_path / "ds", tmp_path / "ds32", (48, 48))
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(5):
        Image.fromarray(np.concatenate([crop(i), crop(i)], axis=1)).save(flat / f"p{i}.png")
    split_dataset(flat, out=tmp_path / "copy")
    with pytest.raises(ValueError, match="already holds"):
        split_dataset(flat, out=tmp_path / "copy", seed=1)

    Image.fromarray(data.astronaut()).save(tmp_path / "photo.png")
    make_pairs([tmp_path / "photo.png"], tmp_path / "gray", Grayscale(), tiling=Tiling(size=128))
    with pytest.raises(ValueError, match="already holds"):
        make_pairs([tmp_path / "photo.png"], tmp_path / "gray", Grayscale(), tiling=Tiling(size=64))
    with pytest.raises(ValueError, match="already holds"):  # refused before any photo is read
        make_example("gray2color", tmp_path / "gray", size=64)


def test_split_out_equal_to_the_dataset_moves_instead_of_copying(tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(5):
        Image.fromarray(np.concatenate([crop(i), crop(i)], axis=1)).save(flat / f"p{i}.png")
    counts = split_dataset(flat, val=0.2, test=0.2, out=flat)
    assert sum(counts.values()) == 5
    assert not list(flat.glob("*.png"))  # each pair once, in its split
    assert sum(len(list((flat / s).glob("*.png"))) for s in counts) == 5


# ---- bad options name the option ------------------------------------------------------------------------

def test_split_group_errors_name_the_option_and_move_nothing(tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(5):
        Image.fromarray(np.concatenate([crop(i), crop(i)], axis=1)).save(flat / f"p{i}_r0c{i}.png")
    with pytest.raises(ValueError, match=r"--group '\(' is not a valid regular expression"):
        split_dataset(flat, group="(")
    with pytest.raises(ValueError, match=r"--group 'tile_' matches none of the 5 names.*nothing was moved"):
        split_dataset(flat, group="tile_")
    assert len(list(flat.glob("*.png"))) == 5


def test_output_formats_pix2pix_cannot_read_back_are_refused(tmp_path):
    a, b = two_folders(tmp_path / "in", ["x"])
    with pytest.raises(ValueError, match=r"--ext 'gif': pix2pix writes and reads back png"):
        combine(a, b, tmp_path / "gif", ext="gif")
    assert not (tmp_path / "gif").exists()
    combine(a, b, tmp_path / "upper", ext="PNG")
    assert [p.name for p in (tmp_path / "upper" / "train").iterdir()] == ["x.png"]
    Image.fromarray(data.astronaut()).save(tmp_path / "photo.png")
    with pytest.raises(ValueError, match="--ext 'xyz'"):
        make_pairs([tmp_path / "photo.png"], tmp_path / "m", Grayscale(), ext="xyz")


# ---- broken photos do not take a held-out split's place --------------------------------------------------

def test_broken_and_tiny_photos_are_not_drawn_into_val_or_test(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name, img in (("astronaut", data.astronaut()), ("coffee", data.coffee()), ("chelsea", data.chelsea())):
        Image.fromarray(img).save(photos / f"{name}.jpg")
    for i in range(4):
        (photos / f"empty{i}.jpg").write_bytes(b"")
    Image.fromarray(data.astronaut()[:40, :40]).save(photos / "tiny.png")
    for seed in range(4):
        result = make_pairs([photos], tmp_path / f"out{seed}", Grayscale(), tiling=Tiling(size=128),
                            val=0.1, test=0.1, seed=seed)
        assert result["photos"] == {"train": 1, "val": 1, "test": 1}, (seed, result)
        assert all(result["pairs"][s] > 0 for s in ("train", "val", "test"))
        problems = "\n".join(result["problems"])
        assert "empty0.jpg" in problems and "tiny.png: 40x40 is smaller than a 128 px tile" in problems


def test_names_that_differ_only_in_case_are_pointed_out(tmp_path):
    """P20.png in A and p20.png in B are two unpaired files (names match case-sensitively); on a
    Mac or Windows the user does not see why: combine and check say it."""
    from pix2pix.data.prepare import combine, inspect_dataset

    rng = np.random.default_rng(0)
    for side, name in (("A", "P20.png"), ("B", "p20.png"), ("A", "ok.png"), ("B", "ok.png")):
        (tmp_path / side).mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(tmp_path / side / name)
    report = combine(tmp_path / "A", tmp_path / "B", tmp_path / "out")
    assert report.total == 1
    assert any("P20.png" in p and "p20.png on the other side differs only in letter case" in p
               for p in report.problems), report.problems
    ds = tmp_path / "ds" / "train"
    for side in ("A", "B"):
        (ds / side).mkdir(parents=True)
    (tmp_path / "A" / "P20.png").rename(ds / "A" / "P20.png")
    (tmp_path / "B" / "p20.png").rename(ds / "B" / "p20.png")
    errors = inspect_dataset(tmp_path / "ds")["errors"]
    assert any("differs only in letter case" in e for e in errors), errors
