"""`pix2pix translate` on a messy folder (issue 20, item 2): every readable file is translated,
the unreadable ones are listed with the reason at the end and the exit status is 1; --strict
stops at the first. Real files, a real subprocess."""
import io
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from pix2pix.checkpoint import PretrainedInfo, save_pretrained
from pix2pix.config import ModelConfig
from pix2pix.models import build_generator


def cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pix2pix", *map(str, args)], capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    cfg = ModelConfig(generator="unet_128", base_channels=8)
    return save_pretrained(build_generator(cfg), PretrainedInfo(model=cfg),
                           tmp_path_factory.mktemp("m") / "model")


@pytest.fixture
def messy(tmp_path):
    folder = tmp_path / "messy"
    folder.mkdir()
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    Image.fromarray(noise).save(folder / "a_plain.png")
    Image.fromarray(noise).convert("CMYK").save(folder / "b_cmyk.jpg")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 160x120, shown rotated: 120x160
    Image.fromarray(noise).save(folder / "c_rotated.jpg", exif=exif.tobytes())
    cv2.imwrite(str(folder / "d_deep16.png"), noise.astype(np.uint16) * 257)  # 16-bit colour
    Image.fromarray(noise[:, :, 0].astype(np.uint16) * 257).save(folder / "e_gray16.png")
    buf = io.BytesIO()
    Image.fromarray(np.repeat(np.repeat(noise, 4, 0), 4, 1)).save(buf, "JPEG", quality=95)
    (folder / "f_truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (folder / "g_notes.png").write_text("not an image")
    Image.fromarray(noise).save(folder / "h_last.png")
    return folder


def test_folder_with_bad_files_translates_the_rest_and_lists_them(model, messy, tmp_path):
    out = tmp_path / "out"
    res = cli("translate", "--model", model, messy, "--out", out, "--device", "cpu", "--batch-size", 2)
    assert res.returncode == 1, res.stderr[-3000:]
    assert "translated 6 of 8 image(s)" in res.stdout
    summary = res.stderr[res.stderr.index("skipped 2 unreadable file(s)"):]
    assert f"{messy / 'f_truncated.jpg'}: " in summary and "truncated" in summary
    assert f"{messy / 'g_notes.png'}: " in summary
    sizes = {p.name: Image.open(p).size for p in out.iterdir()}
    assert sizes == {"a_plain.png": (160, 120), "b_cmyk.png": (160, 120), "c_rotated.png": (120, 160),
                     "d_deep16.png": (160, 120), "e_gray16.png": (160, 120), "h_last.png": (160, 120)}


def test_strict_stops_at_the_first_bad_file(model, messy, tmp_path):
    out = tmp_path / "out"
    res = cli("translate", "--model", model, messy, "--out", out, "--device", "cpu", "--strict",
              "--batch-size", 1)
    assert res.returncode == 2
    assert "f_truncated.jpg" in res.stderr and "g_notes" not in res.stderr
    written = {p.name for p in out.iterdir()}
    assert {"a_plain.png", "e_gray16.png"} <= written and "h_last.png" not in written
