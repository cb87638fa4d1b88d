"""One image path for users: an EXIF-rotated photo comes out the same through the Python API,
`pix2pix translate` and POST /api/translate (a real server on 127.0.0.1)."""
from __future__ import annotations

import io

import httpx
import numpy as np
from PIL import Image

from pix2pix import Translator
from pix2pix.cli import main as cli_main

from .serve_support import random_image


def exif_rotated_jpeg(path, orientation: int = 6) -> np.ndarray:
    """Write a 96 x 64 (W x H) JPEG whose EXIF says "rotate 90 degrees clockwise"; returns its raw pixels."""
    stored = random_image(64, 96, seed=13)
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(stored).save(path, format="JPEG", quality=95, exif=exif)
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def test_exif_rotated_photo_is_the_same_through_python_cli_and_server(server, model_dirs, tmp_path):
    photo = tmp_path / "photo.jpg"
    raw = exif_rotated_jpeg(photo)
    assert raw.shape == (64, 96, 3)
    translator = Translator.from_pretrained(model_dirs["edges"], device="cpu")

    with Image.open(photo) as im:
        via_pil = np.asarray(translator(im))
    via_path = np.asarray(translator(photo))

    assert cli_main(["translate", "--model", str(model_dirs["edges"]), str(photo), "--out",
                     str(tmp_path / "out"), "--device", "cpu", "--backend", "eager",
                     "--no-progress"]) == 0
    (written,) = sorted((tmp_path / "out").iterdir())
    via_cli = np.asarray(Image.open(written))

    resp = httpx.post(server + "/api/translate", params={"model": "edges"}, timeout=30,
                      files={"image": ("photo.jpg", photo.read_bytes(), "image/jpeg")})
    assert resp.status_code == 200, resp.text
    via_server = np.asarray(Image.open(io.BytesIO(resp.content)))

    # Orientation 6: the stored 96 x 64 landscape is shown as a 64 x 96 portrait.
    assert via_pil.shape == (96, 64, 3)
    assert np.array_equal(via_pil, via_path)
    assert np.array_equal(via_pil, via_cli)
    assert np.array_equal(via_pil, via_server)
    # The same as rotating the stored pixels by hand (and unlike translating them as stored).
    by_hand = np.asarray(translator(Image.fromarray(np.ascontiguousarray(np.rot90(raw, -1)))))
    assert np.array_equal(by_hand, via_pil)
