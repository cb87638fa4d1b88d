"""The folder pipeline: batches of equal sizes, outputs identical to one-by-one, errors name files."""
import numpy as np
import pytest
from PIL import Image

from pix2pix import Translator
from pix2pix.cli import main
from pix2pix.util.imageio import ImageReadError
from pix2pix.inference.folders import translate_files


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    items = []
    for i, (w, h) in enumerate([(96, 64), (96, 64), (96, 64), (50, 70), (96, 64), (130, 40)]):
        p = tmp_path / "in" / f"img{i}.png"
        p.parent.mkdir(exist_ok=True)
        Image.fromarray((rng.random((h, w, 3)) * 255).astype(np.uint8)).save(p)
        items.append((p, p.relative_to(tmp_path / "in")))
    return items


def test_batches_equal_sizes_and_matches_one_by_one(lively_model_dir, folder, tmp_path, monkeypatch):
    t = Translator.from_pretrained(lively_model_dir, device="cpu")
    batches = []
    original = t.translate_batch
    monkeypatch.setattr(t, "translate_batch", lambda arrays: batches.append(len(arrays)) or original(arrays))
    written = []
    stats = translate_files(t, folder, tmp_path / "out", batch_size=2, on_image=written.append)
    # Runs of equal size are batched (2 + 1), a size change closes a batch.
    assert batches == [2, 1, 1, 1, 1] and stats.images == 6 and sum(written) == 6
    assert stats.images_per_second > 0 and 0 < stats.inference_seconds <= stats.seconds
    for src, rel in folder:
        expected = np.asarray(t(Image.open(src)))
        got = np.asarray(Image.open(tmp_path / "out" / rel))
        assert np.array_equal(got, expected), rel


def test_a_broken_file_is_skipped_and_named_or_stops_when_strict(lively_model_dir, folder, tmp_path):
    folder[3][0].write_bytes(b"not a png")
    t = Translator.from_pretrained(lively_model_dir, device="cpu")
    stats = translate_files(t, folder, tmp_path / "out", batch_size=2)
    assert stats.images == len(folder) - 1 and [p.name for p, _ in stats.skipped] == ["img3.png"]
    assert "PIL can read" in stats.skipped[0][1]
    assert len(list((tmp_path / "out").rglob("*.png"))) == len(folder) - 1
    with pytest.raises(ImageReadError, match="img3.png"):
        translate_files(t, folder, tmp_path / "strict", batch_size=2, strict=True)


def test_cli_errors_for_export_and_translate_options(lively_model_dir, tmp_path, capsys):
    assert main(["export", "--model", str(lively_model_dir), "--out", str(tmp_path / "m.txt")]) == 2
    assert "--out" in capsys.readouterr().err
    assert main(["export", "--model", str(tmp_path / "nothing"), "--out", str(tmp_path / "m.onnx")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["export", "--model", str(lively_model_dir), "--out", str(tmp_path / "m.onnx"),
                 "--opset", "13"]) == 2
    assert "--opset 13 is too old" in capsys.readouterr().err
    Image.new("RGB", (8, 8)).save(tmp_path / "x.png")
    assert main(["translate", "--model", str(lively_model_dir), str(tmp_path / "x.png"), "--out",
                 str(tmp_path / "o"), "--batch-size", "0", "--backend", "eager"]) == 2
    assert "batch size 0 must be at least 1" in capsys.readouterr().err
