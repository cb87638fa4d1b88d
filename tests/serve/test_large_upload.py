"""A large upload (3000 x 2000) is translated tile by tile, as `pix2pix translate --tile` does,
instead of being refused; each tile's forward pass runs on the inference worker."""
from __future__ import annotations

import httpx
import numpy as np

from pix2pix import Translator
from pix2pix.serve import Limits, create_app, load_models

from .serve_support import decode, png_bytes, random_image, serve_in_thread
from .test_one_way_in import Recorder


def test_a_3000x2000_upload_is_tiled_like_the_cli(model_dirs):
    (served,) = load_models([f"edges={model_dirs['edges']}"], device="cpu", backend="eager")
    recorder = Recorder(served.translator.backend)
    served.translator.backend = recorder
    image = random_image(2000, 3000, seed=4)
    with serve_in_thread(create_app([served], tile=512)) as url:  # the default pixel limit
        resp = httpx.post(url + "/api/translate", content=png_bytes(image), timeout=300)
        assert resp.status_code == 200, resp.text
        assert resp.headers["x-tile"] == "512"
    reference = Translator.from_pretrained(model_dirs["edges"], device="cpu", backend="eager")
    want = np.round(reference.translate_array(image / 255.0, tile=512) * 255).astype(np.uint8)
    got = decode(resp.content)
    assert got.shape == (2000, 3000, 3)
    assert np.abs(got.astype(int) - want).max() <= 1
    assert recorder.most == 1 and len(recorder.calls) > 1
    assert {name for name, _ in recorder.calls} == {"pix2pix-inference"}
    assert {shape[-2:] for _, shape in recorder.calls} == {(512, 512)}  # tiles, never the whole image


def test_the_pixel_limit_stays_and_names_its_option(model_dirs):
    (served,) = load_models([f"edges={model_dirs['edges']}"], device="cpu", backend="eager")
    assert Limits().max_pixels >= 6000 * 4000  # a 24 Mpx photo is accepted by default
    with serve_in_thread(create_app([served], limits=Limits(max_pixels=1000 * 1000))) as url:
        resp = httpx.post(url + "/api/translate", content=png_bytes(random_image(2000, 3000, seed=1)), timeout=60)
    assert resp.status_code == 413 and resp.json()["error"] == "too_many_pixels"
    assert "--max-pixels" in resp.json()["detail"]
