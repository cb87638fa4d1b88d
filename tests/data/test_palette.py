"""find_palette: label colours from label maps (PNG or JPEG), edge maps; None for photos."""
import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from pix2pix.data.palette import find_palette
from conftest import cut_pairs

LABELS = np.array([[255, 255, 255], [0, 0, 255], [255, 0, 0], [0, 200, 0], [255, 255, 0],
                   [128, 0, 128]], dtype=np.uint8)


def label_map(seed: int, size: int = 256) -> np.ndarray:
    """Rectangles of the LABELS colours on white; class 0 (white) the most frequent."""
    rng = np.random.default_rng(seed)
    ids = np.zeros((size, size), dtype=int)
    for _ in range(30):
        y, x = rng.integers(0, size - 20, 2)
        h, w = rng.integers(8, 80, 2)
        ids[y:y + h, x:x + w] = rng.integers(1, len(LABELS))
    return LABELS[ids]


def jpeg(arr: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(buf))


def f(arr: np.ndarray) -> np.ndarray:
    return arr.astype(np.float32) / 255.0


def test_exact_label_maps_give_their_colours_most_frequent_first():
    maps = [label_map(s) for s in range(4)]
    palette = find_palette(f(m) for m in maps)
    assert sorted(map(tuple, palette)) == sorted(map(tuple, LABELS.tolist()))
    counts = {tuple(c): int((np.concatenate(maps).reshape(-1, 3) == c).all(1).sum()) for c in LABELS}
    assert [counts[tuple(c)] for c in palette] == sorted(counts.values(), reverse=True)
    assert palette[0] == [255, 255, 255]


@pytest.mark.parametrize("quality", [95, 75, 50])
def test_jpeg_label_maps_give_one_colour_per_label(quality):
    """JPEG shifts flat colours by a few levels and rings at edges; neither adds a label."""
    palette = find_palette(f(jpeg(label_map(s), quality)) for s in range(4))
    assert palette is not None and len(palette) == len(LABELS)
    for true in LABELS.astype(int):
        assert min(np.abs(np.array(palette) - true).max(axis=1)) <= 6


def test_edge_maps_give_white_and_black():
    def edges(seed):
        rng = np.random.default_rng(seed)
        im = Image.new("RGB", (256, 256), "white")
        draw = ImageDraw.Draw(im)
        for _ in range(40):
            draw.line([tuple(rng.integers(0, 256, 2)), tuple(rng.integers(0, 256, 2))], fill="black")
        return np.asarray(im)

    assert find_palette(f(edges(s)) for s in range(3)) == [[255, 255, 255], [0, 0, 0]]
    # Anti-aliased (upscaled) lines: the gray edge pixels are mixtures, not labels.
    smooth = np.asarray(Image.fromarray(edges(0)).resize((512, 512), Image.BILINEAR))
    palette = find_palette([f(smooth)])
    assert palette[0] == [255, 255, 255] and len(palette) == 2 and max(palette[1]) < 100


def test_photos_have_no_palette(world):
    satellite = [a for a, _ in cut_pairs(world, 8, 256, seed=3)]
    relief = [b for _, b in cut_pairs(world, 8, 256, seed=3)]
    assert find_palette(f(a) for a in satellite) is None
    assert find_palette(f(b) for b in relief) is None
    # One photo among label maps is enough to say "not a label-map set".
    assert find_palette([f(label_map(0)), f(relief[0]), f(label_map(1))]) is None


def test_too_many_colours_gray_and_rgba_inputs_and_bad_shapes():
    grid = np.array([[r, g, b] for r in (0, 85, 170, 255) for g in (0, 85, 170, 255)
                     for b in (0, 85, 170, 255)], dtype=np.uint8)  # 64 well-separated colours
    many = np.kron(grid.reshape(8, 8, 3), np.ones((32, 32, 1), np.uint8))
    assert find_palette([f(many)], max_colours=32) is None
    assert sorted(map(tuple, find_palette([f(many)], max_colours=64))) == sorted(map(tuple, grid.tolist()))
    gray = np.where(np.arange(64)[None, :] < 20, 0, 255).repeat(64, 0).astype(np.uint8)
    assert find_palette([f(gray)[:, :, None]]) == [[255, 255, 255], [0, 0, 0]]
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[:, :16] = [255, 0, 0, 255]  # the transparent right half counts as white
    assert sorted(find_palette([f(rgba)])) == [[255, 0, 0], [255, 255, 255]]
    assert find_palette([]) is None
    with pytest.raises(ValueError, match="shape"):
        find_palette([np.zeros((8, 8, 2))])
    with pytest.raises(ValueError, match="max_colours"):
        find_palette([f(gray)[:, :, None]], max_colours=0)
