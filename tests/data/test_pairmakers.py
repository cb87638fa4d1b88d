"""Pair makers on real photos from the scikit-image wheel: each output is checked for what it should
be (edges on strong gradients, luma equal to PIL's, blur/noise/JPEG of the drawn strength, ...)."""
import os

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data

from pix2pix.data.pairmakers import (PAIR_MAKERS, CannyEdges, Degrade, Downscale, Grayscale, Holes,
                                     Tiling, XdogSketch, assign_splits, build_pair_maker, make_pairs,
                                     tiles_of)
from pix2pix.util.imageio import read_image


@pytest.fixture(scope="module")
def tile() -> np.ndarray:
    """A real 128 px photo tile (the coffee cup and spoon: strong edges and flat areas)."""
    return data.coffee()[150:278, 250:378].astype(np.float32) / 255.0


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory):
    """Six real photos of different sizes, as a user's folder (one in a subfolder, one PNG)."""
    root = tmp_path_factory.mktemp("photos")
    (root / "sub").mkdir()
    for name, img in (("astronaut", data.astronaut()), ("coffee", data.coffee()), ("chelsea", data.chelsea()),
                      ("rocket", data.rocket()), ("motorcycle", data.stereo_motorcycle()[0])):
        Image.fromarray(img).save(root / f"{name}.jpg", quality=92)
    Image.fromarray(data.immunohistochemistry()).save(root / "sub" / "ihc.png")
    return root


def rng(seed=0):
    return np.random.default_rng(seed)


def gradient(rgb: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    g = cv2.GaussianBlur(rgb @ np.float32([0.299, 0.587, 0.114]), (0, 0), sigma)
    return np.hypot(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1))


def test_canny_lines_sit_on_strong_gradients_and_fragments_are_gone(tile):
    edges = CannyEdges(min_pixels=12)(tile, rng())
    assert edges.shape == (128, 128, 1) and set(np.unique(edges)) == {0.0, 1.0}
    ink = edges[:, :, 0] == 0
    assert 0.02 < ink.mean() < 0.2  # lines, not a blank or a black page
    mag = gradient(tile)
    assert np.median(mag[ink]) > 3 * np.median(mag[~ink])
    n, _, stats, _ = cv2.connectedComponentsWithStats(ink.astype(np.uint8), connectivity=8)
    assert stats[1:, cv2.CC_STAT_AREA].min() >= 12
    flat = np.full((64, 64, 3), 0.4, np.float32)
    assert CannyEdges()(flat, rng()).min() == 1.0  # nothing to draw on a flat tile
    assert (CannyEdges(thickness=3)(tile, rng())[:, :, 0] == 0).mean() > 1.8 * ink.mean()


def test_sketch_is_white_paper_with_dark_strokes_at_edges(tile):
    sketch = XdogSketch()(tile, rng())[:, :, 0]
    assert sketch.shape == (128, 128) and sketch.min() >= 0 and sketch.max() <= 1
    assert (sketch > 0.95).mean() > 0.6
    dark = sketch < 0.5
    mag = gradient(tile, 1.0)
    assert 0.01 < dark.mean() < 0.3 and np.median(mag[dark]) > 2 * np.median(mag[~dark])
    assert XdogSketch()(np.full((32, 32, 3), 0.3, np.float32), rng()).min() == 1.0


def test_gray_is_pil_luma(tile):
    gray = Grayscale()(tile, rng())
    expected = np.asarray(Image.fromarray((tile * 255 + 0.5).astype(np.uint8)).convert("L")) / 255.0
    assert gray.shape == (128, 128, 1) and np.abs(gray[:, :, 0] - expected).max() <= 1 / 255 + 1e-6


def test_degrade_steps_have_the_drawn_strength(tile):
    blur = Degrade(blur=(1.5, 1.5), noise=(0, 0), jpeg=(0, 0))(tile, rng())
    assert np.allclose(blur, cv2.GaussianBlur(tile, (0, 0), 1.5), atol=1e-6)
    flat = np.full((128, 128, 3), 0.5, np.float32)
    noisy = Degrade(blur=(0, 0), noise=(0.05, 0.05), jpeg=(0, 0))(flat, rng())
    assert abs(float((noisy - flat).std()) - 0.05) < 0.003
    low_q = Degrade(blur=(0, 0), noise=(0, 0), jpeg=(10, 10))(tile, rng())
    high_q = Degrade(blur=(0, 0), noise=(0, 0), jpeg=(95, 95))(tile, rng())
    assert np.abs(low_q - tile).mean() > 2 * np.abs(high_q - tile).mean() > 0
    a, b = Degrade()(tile, rng(5)), Degrade()(tile, rng(5))
    assert np.array_equal(a, b) and not np.array_equal(a, Degrade()(tile, rng(6)))


def test_downscale_keeps_the_coarse_image_and_drops_detail(tile):
    low = Downscale(factor=4)(tile, rng())
    assert low.shape == tile.shape
    area = lambda x: cv2.resize(x, (32, 32), interpolation=cv2.INTER_AREA)  # noqa: E731
    assert np.abs(area(low) - area(tile)).mean() < 0.02  # same picture at 1/4 scale
    detail = lambda x: np.abs(cv2.Laplacian(x, cv2.CV_32F)).mean()  # noqa: E731
    assert detail(low) < 0.5 * detail(tile)


def test_holes_cover_the_drawn_fraction_and_keep_the_rest(tile):
    holes = Holes(coverage=(0.2, 0.2), alpha=True)
    out = holes(tile, rng(1))
    hole = out[:, :, 3] == 0
    assert 0.19 < hole.mean() < 0.3
    assert np.all(out[hole, :3] == 1.0)  # filled white
    assert np.array_equal(out[~hole, :3], tile[~hole])  # untouched elsewhere
    assert np.array_equal(holes.mask(128, 128, rng(1)), hole)
    fractions = [Holes(coverage=(0.05, 0.4)).mask(128, 128, rng(s)).mean() for s in range(20)]
    assert min(fractions) >= 0.05 and max(fractions) < 0.5 and np.std(fractions) > 0.05


def test_grid_tiles_cover_the_photo():
    photo = np.arange(300 * 520, dtype=np.float32).reshape(300, 520, 1)
    tiles = tiles_of(photo, Tiling(size=128), rng())
    assert len(tiles) == 3 * 5 and tiles[0][0] == "r0c0" and tiles[-1][0] == "r2c4"
    assert tiles[-1][1][-1, -1, 0] == photo[-1, -1, 0]  # the last tile reaches the corner
    assert tiles_of(photo[:100], Tiling(size=128), rng()) == []
    crops = tiles_of(photo, Tiling(size=64, mode="random", per_photo=7), rng())
    assert len(crops) == 7 and all(c.shape == (64, 64, 1) for _, c in crops)
    assert len(tiles_of(photo, Tiling(size=128, per_photo=4), rng())) == 4


def test_assign_splits_by_photo():
    names = [f"p{i}" for i in range(20)]
    splits = assign_splits(names, 0.1, 0.2, seed=0)
    assert sorted(splits.values()).count("val") == 2 and list(splits.values()).count("test") == 4
    assert splits == assign_splits(names, 0.1, 0.2, seed=0) != assign_splits(names, 0.1, 0.2, seed=1)
    assert set(assign_splits(names[:3], 0.1, 0.1, seed=0).values()) == {"train", "val", "test"}
    with pytest.raises(ValueError, match="fractions"):
        assign_splits(names, 0.6, 0.5, seed=0)


def test_make_pairs_end_to_end_reproducible_split_by_photo(photo_dir, tmp_path):
    tiling = Tiling(size=96, stride=96, short_side=200)
    r1 = make_pairs([photo_dir], tmp_path / "a", Degrade(), tiling=tiling, val=0.2, test=0.2, seed=3,
                    workers=1)
    r2 = make_pairs([photo_dir], tmp_path / "b", Degrade(), tiling=tiling, val=0.2, test=0.2, seed=3,
                    workers=2)
    assert r1 == r2 and sum(r1["pairs"].values()) > 20
    assert r1["photos"] == {"train": 4, "val": 1, "test": 1}
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.png"))
    assert files == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*.png"))
    for f in files:  # the same bytes whatever the number of workers
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()
    owners = {}
    for f in files:
        owners.setdefault(f.name.rsplit("_", 1)[0], set()).add(f.parts[0])
    assert all(len(s) == 1 for s in owners.values()), owners  # no photo straddles two splits
    assert "sub__ihc" in owners
    ab = read_image(tmp_path / "a" / files[0])
    assert ab.shape == (96, 192, 3)


def test_make_pairs_folders_layout_and_problems(photo_dir, tmp_path):
    (tmp_path / "in").mkdir()
    Image.fromarray(data.astronaut()).save(tmp_path / "in" / "ok.png")
    Image.fromarray(data.astronaut()[:50, :50]).save(tmp_path / "in" / "tiny.png")
    (tmp_path / "in" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    Image.fromarray(np.full((300, 300, 3), 128, np.uint8)).save(tmp_path / "in" / "flat.png")
    # short_side above the photos' size: nothing is enlarged (512 px astronaut -> 4 x 4 tiles)
    result = make_pairs([tmp_path / "in"], tmp_path / "out", Grayscale(),
                        tiling=Tiling(size=128, short_side=1024), val=0, test=0, layout="folders")
    assert result["pairs"] == {"train": 16, "val": 0, "test": 0} and result["skipped_flat"] == 9
    problems = "\n".join(result["problems"])
    assert "tiny.png: 50x50 is smaller than a 128 px tile" in problems and "broken.jpg" in problems
    a = Image.open(tmp_path / "out" / "train" / "A" / "ok_r1c2.png")
    b = Image.open(tmp_path / "out" / "train" / "B" / "ok_r1c2.png")
    assert a.mode == "L" and b.mode == "RGB" and a.size == b.size == (128, 128)
    with pytest.raises(ValueError, match=r"no pairs were written:\n  .*broken\.jpg"):
        make_pairs([tmp_path / "in" / "broken.jpg"], tmp_path / "none", Grayscale())
    with pytest.raises(ValueError, match="alpha.*cannot be stored in JPEG"):
        make_pairs([tmp_path / "in"], tmp_path / "none", Holes(alpha=True), ext="jpg")
    with pytest.raises(ValueError, match="neither a photo nor a folder"):
        make_pairs([tmp_path / "missing"], tmp_path / "none", Grayscale())


@pytest.mark.parametrize("name", sorted(PAIR_MAKERS))
def test_every_table_entry_makes_an_aligned_input(tile, name):
    """Built with its defaults, each maker turns a photo tile into an input of the same size in
    [0, 1] that is not the photo, the same for the same seed."""
    spec = PAIR_MAKERS[name]
    assert spec.description and len({o.dest for o in spec.options}) == len(spec.options)
    maker = build_pair_maker(name, size=128)
    a = maker(tile, rng(3))
    assert a.dtype == np.float32 and a.shape[:2] == tile.shape[:2] and a.ndim == 3
    assert 0 <= a.min() and a.max() <= 1
    assert a.shape != tile.shape or not np.allclose(a, tile)
    np.testing.assert_array_equal(a, maker(tile, rng(3)))


@pytest.mark.parametrize("maker", sorted(PAIR_MAKERS))
def test_every_pair_maker_from_the_command_line(photo_dir, tmp_path, maker):
    from pix2pix.cli import main

    out = tmp_path / maker
    code = main(["data", maker, str(photo_dir / "astronaut.jpg"), str(photo_dir / "coffee.jpg"),
                 str(photo_dir / "chelsea.jpg"), "--out", str(out), "--size", "128", "--short-side", "256",
                 "--tiles", "random", "--per-photo", "3", "--no-progress", "--seed", "1"])
    assert code == 0
    files = sorted(out.rglob("*.png"))
    assert len(files) == 9 and {f.parent.name for f in files} == {"train", "val", "test"}
    ab = read_image(files[0])
    assert ab.shape == (128, 256, 3) and not np.allclose(ab[:, :128], ab[:, 128:])


def test_bad_options_are_named(photo_dir, capsys):
    from pix2pix.cli import main

    args = ["--out", os.devnull, "--no-progress"]
    assert main(["data", "degrade", str(photo_dir), *args, "--blur", "2"]) == 2
    assert "--blur '2' is not LO,HI" in capsys.readouterr().err
    assert main(["data", "downscale", str(photo_dir), *args, "--factor", "3"]) == 2
    assert "--factor 3 must be at least 2 and divide --size 256" in capsys.readouterr().err
    assert main(["data", "gray", str(photo_dir), *args, "--tiles", "random"]) == 2
    assert "random crops need --per-photo" in capsys.readouterr().err


def test_photo_keys_are_short_and_unique(tmp_path):
    from pix2pix.data.pairmakers import photo_keys

    paths = [tmp_path / "themes" / t / "contents" / "1920x1080.jpg" for t in ("Kite", "Path")]
    paths += [tmp_path / "mine" / "holiday" / "beach.jpg", tmp_path / "mine" / "cat.png"]
    keys = photo_keys(paths, [tmp_path / "mine"])
    assert keys == {paths[0]: "Kite__contents__1920x1080", paths[1]: "Path__contents__1920x1080",
                    paths[2]: "holiday__beach", paths[3]: "cat"}


def test_tiles_with_a_blank_input_are_skipped(tmp_path):
    Image.fromarray(np.full((200, 200, 3), 90, np.uint8)).save(tmp_path / "wall.png")
    with pytest.raises(ValueError, match="all 4 tiles were flat or gave a blank input"):
        make_pairs([tmp_path / "wall.png"], tmp_path / "o", CannyEdges(), tiling=Tiling(size=128, min_std=0))
