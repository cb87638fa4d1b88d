"""`pix2pix translate` as a user runs it on images: an --out that is a file or the input folder
itself, Ctrl-C part way through a folder, an empty array. Real files and real signals."""
import os
import signal

import numpy as np
import pytest
from PIL import Image

from pix2pix import Translator
from pix2pix.checkpoint import PretrainedInfo, save_pretrained
from pix2pix.cli import main
from pix2pix.config import ModelConfig
from pix2pix.inference.folders import translate_files
from pix2pix.models import build_generator


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    cfg = ModelConfig(generator="unet_128", base_channels=8)
    return save_pretrained(build_generator(cfg), PretrainedInfo(model=cfg),
                           tmp_path_factory.mktemp("m") / "model")


def pngs(folder, n: int, size=(96, 64)) -> list:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        paths.append(folder / f"img {i:02d}.png")
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(paths[-1])
    return paths


def test_out_that_is_a_file_is_an_error_that_names_it(model, tmp_path, capsys):
    (src,) = pngs(tmp_path / "in", 1)
    out = tmp_path / "result.png"
    out.write_bytes(b"an earlier result")
    assert main(["translate", "--model", str(model), str(src), "--out", str(out), "--device", "cpu",
                 "--backend", "eager", "--no-progress"]) == 2
    assert f"--out {out} is a file; give a folder" in capsys.readouterr().err
    assert out.read_bytes() == b"an earlier result"


def test_outputs_over_their_own_inputs_are_refused_before_anything_is_written(model, tmp_path, capsys):
    folder = tmp_path / "shots"
    paths = pngs(folder, 3)
    before = {p: p.read_bytes() for p in paths}
    assert main(["translate", "--model", str(model), str(folder), "--out", str(folder), "--device", "cpu",
                 "--backend", "eager", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "would be overwritten by its own translation" in err and "give another --out folder" in err
    assert {p: p.read_bytes() for p in paths} == before
    t = Translator.from_pretrained(model, device="cpu")
    with pytest.raises(ValueError, match="overwritten by its own translation"):
        translate_files(t, [(p, p.relative_to(folder)) for p in paths], folder)
    assert {p: p.read_bytes() for p in paths} == before
    # Beside the inputs is fine when the names differ (JPEG in, PNG out).
    jpg = folder / "still.jpg"
    Image.open(paths[0]).save(jpg)
    stats = translate_files(t, [(jpg, jpg.relative_to(folder))], folder)
    assert stats.images == 1 and (folder / "still.png").is_file()


def test_ctrl_c_in_a_folder_stops_cleanly_with_the_written_images_whole(model, tmp_path):
    paths = pngs(tmp_path / "in", 12)
    t = Translator.from_pretrained(model, device="cpu")
    sent = []

    def on_image(n: int) -> None:
        if not sent:  # Ctrl-C once the first image is written
            sent.append(True)
            os.kill(os.getpid(), signal.SIGINT)

    before = signal.getsignal(signal.SIGINT)
    stats = translate_files(t, [(p, p.relative_to(tmp_path / "in")) for p in paths], tmp_path / "out",
                            batch_size=2, workers=1, on_image=on_image)
    assert signal.getsignal(signal.SIGINT) is before
    written = sorted((tmp_path / "out").glob("*.png"))
    assert stats.interrupted and 1 <= stats.images < len(paths) and len(written) == stats.images
    for p in written:  # every file there is complete
        assert Image.open(p).convert("RGB").size == (96, 64)


def test_sigterm_inside_a_tiled_image_stops_at_its_next_tiles(model, tmp_path):
    (big,) = pngs(tmp_path / "in", 1, size=(600, 400))
    t = Translator.from_pretrained(model, device="cpu")
    calls = []

    def on_tile(done: int, total: int) -> None:
        calls.append(done)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGTERM)

    stats = translate_files(t, [(big, big.relative_to(tmp_path / "in"))], tmp_path / "out", tile=128,
                            batch_size=1, on_tile=on_tile)
    assert stats.interrupted and stats.images == 0 and calls == [1]
    assert not list((tmp_path / "out").glob("*"))  # no half-made image


def test_an_empty_array_is_a_value_error_that_says_so(model):
    t = Translator.from_pretrained(model, device="cpu")
    for empty in (np.zeros((0, 5, 3), np.uint8), np.zeros((4, 0), np.float32)):
        with pytest.raises(ValueError, match="has no pixels"):
            t(empty)
        with pytest.raises(ValueError, match="input image 1 is .* no pixels"):
            t.translate_batch([np.zeros((4, 4, 3), np.uint8), empty])


def test_workers_below_one_names_the_option(model, tmp_path, capsys):
    (src,) = pngs(tmp_path / "in", 1)
    assert main(["translate", "--model", str(model), str(src), "--out", str(tmp_path / "out"),
                 "--device", "cpu", "--backend", "eager", "--workers", "0"]) == 2
    assert "--workers 0 must be at least 1" in capsys.readouterr().err


def test_one_file_named_twice_is_translated_once(model, tmp_path, monkeypatch, capsys):
    paths = pngs(tmp_path / "in", 2)
    monkeypatch.chdir(tmp_path)
    assert main(["translate", "--model", str(model), "in", str(paths[0]), "in/../in/img 00.png", "--out",
                 "out", "--device", "cpu", "--backend", "eager", "--no-progress"]) == 0
    assert "translated 2 image(s)" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["img 00.png", "img 01.png"]


def test_out_named_like_a_file_is_a_folder_and_says_so(model, tmp_path, caplog):
    (src,) = pngs(tmp_path / "in", 1)
    out = tmp_path / "result.png"
    with caplog.at_level("WARNING", logger="pix2pix.cli.translate"):
        assert main(["translate", "--model", str(model), str(src), "--out", str(out), "--device", "cpu",
                     "--backend", "eager", "--no-progress"]) == 0
    assert (out / "img 00.png").is_file()
    assert any(f"--out {out} is a folder" in r.message for r in caplog.records)
    caplog.clear()
    with caplog.at_level("WARNING", logger="pix2pix.cli.translate"):  # now it exists as a folder
        main(["translate", "--model", str(model), str(src), "--out", str(tmp_path / "plain"),
              "--device", "cpu", "--backend", "eager", "--no-progress"])
    assert not any("is a folder" in r.message for r in caplog.records)
