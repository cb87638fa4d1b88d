"""The REST API end to end: a real `pix2pix serve` process, real HTTP on 127.0.0.1."""
from __future__ import annotations

import http.client
import io
import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import httpx
import numpy as np
import pytest
from PIL import Image

import pix2pix.serve
from pix2pix import Translator
from pix2pix.util.imageio import pil_to_array

from .serve_support import MAX_UPLOAD_MB, PALETTE, decode, png_bytes, random_image


def expected(model_dir, data: bytes) -> np.ndarray:
    """What the server must answer: the Translator applied to the same decoded upload."""
    t = Translator.from_pretrained(model_dir, device="cpu")
    out = t.translate_array(pil_to_array(Image.open(io.BytesIO(data))))
    out = (np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8)
    return out[:, :, 0] if out.shape[2] == 1 else out


def post(server: str, data: bytes, **kw) -> httpx.Response:
    return httpx.post(server + "/api/translate", content=data, timeout=30, **kw)


def assert_error(resp: httpx.Response, status: int, code: str, *words: str) -> None:
    assert resp.status_code == status, (resp.status_code, resp.text)
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert body["error"] == code, body
    for w in words:
        assert w.lower() in body["detail"].lower(), body


def test_health_and_models(server, model_dirs):
    health = httpx.get(server + "/health").json()
    assert health["status"] == "ok" and health["models"] == ["edges", "labels", "gray"]
    models = {m["name"]: m for m in httpx.get(server + "/api/models").json()["models"]}
    assert list(models) == ["edges", "labels", "gray"]  # run dir "labels/model" is named "labels"
    assert models["labels"]["palette"] == PALETTE and models["edges"]["palette"] is None
    for m in models.values():
        assert m["generator"] == "unet_128" and m["image_size"] == 128 and m["multiple"] == 128
        assert m["test_statistics"] == "running"
        assert m["direction"] == "AtoB"
    assert models["edges"]["parameters"] == 655_443
    assert (models["gray"]["in_channels"], models["gray"]["out_channels"]) == (1, 1)


@pytest.mark.parametrize("size", [(128, 128), (200, 77), (5, 9)])
def test_raw_png_translates_exactly_like_the_translator(server, model_dirs, size):
    data = png_bytes(random_image(size[1], size[0], seed=sum(size)))
    resp = post(server, data, params={"model": "edges"}, headers={"Content-Type": "image/png"})
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "image/png"
    assert resp.headers["x-model"] == "edges" and resp.headers["x-batch-size"] == "1"
    assert float(resp.headers["x-forward-ms"]) > 0 and "forward;dur=" in resp.headers["server-timing"]
    out = decode(resp.content)
    assert out.shape == (size[1], size[0], 3)
    assert np.array_equal(out, expected(model_dirs["edges"], data))


def test_models_differ_and_default_is_the_first(server, model_dirs):
    data = png_bytes(random_image(128, 128, seed=7))
    default = decode(post(server, data).content)
    edges = decode(post(server, data, params={"model": "edges"}).content)
    labels = decode(post(server, data, params={"model": "labels"}).content)
    assert np.array_equal(default, edges)
    assert np.abs(edges.astype(int) - labels.astype(int)).mean() > 5  # different weights, different output
    assert np.array_equal(labels, expected(model_dirs["labels"], data))


def test_multipart_with_model_field_and_misleading_names(server, model_dirs):
    """A JPEG named .png and labelled image/png is still read as the JPEG it is."""
    buf = io.BytesIO()
    Image.fromarray(random_image(96, 160, seed=3)).save(buf, format="JPEG", quality=90)
    data = buf.getvalue()
    resp = httpx.post(server + "/api/translate", files={"image": ("photo.png", data, "image/png")},
                      data={"model": "labels"}, timeout=30)
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-model"] == "labels"
    assert np.array_equal(decode(resp.content), expected(model_dirs["labels"], data))
    # The query parameter wins over the form field.
    resp = httpx.post(server + "/api/translate?model=edges", files={"file": ("x", data)},
                      data={"model": "labels"}, timeout=30)
    assert resp.headers["x-model"] == "edges"


@pytest.mark.parametrize("fmt", ["WEBP", "BMP", "TIFF"])
def test_other_formats_by_content(server, model_dirs, fmt):
    buf = io.BytesIO()
    Image.fromarray(random_image(64, 64, seed=11)).save(buf, format=fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    # curl --data-binary labels any body application/x-www-form-urlencoded: must not matter.
    resp = post(server, buf.getvalue(), headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status_code == 200, resp.text
    assert np.array_equal(decode(resp.content), expected(model_dirs["edges"], buf.getvalue()))


def test_gray_model_and_rgba_input(server, model_dirs):
    rgba = np.dstack([random_image(64, 64, seed=5), np.full((64, 64), 255, np.uint8)])
    rgba[:8, :8, 3] = 0
    data = png_bytes(rgba)
    gray = post(server, data, params={"model": "gray"})
    assert gray.status_code == 200
    out = Image.open(io.BytesIO(gray.content))
    assert out.mode == "LA"  # one output channel, and the input's alpha put back
    assert np.array_equal(np.asarray(out), expected(model_dirs["gray"], data))
    plain = Image.open(io.BytesIO(post(server, png_bytes(rgba[:, :, :3]), params={"model": "gray"}).content))
    assert plain.mode == "L" and plain.size == (64, 64)
    rgb = decode(post(server, data, params={"model": "edges"}).content)
    assert rgb.shape == (64, 64, 4) and rgb[0, 0, 3] == 0 and rgb[20, 20, 3] == 255  # alpha kept


def test_empty_body(server):
    assert_error(post(server, b""), 400, "empty_body", "empty")
    resp = httpx.post(server + "/api/translate", files={"image": ("a.png", b"", "image/png")})
    assert_error(resp, 400, "empty_body", "empty")


@pytest.mark.parametrize("data", [b"hello, I am text", b"GIF89a" + bytes(100), b"%PDF-1.4\n" + bytes(64),
                                  json.dumps({"image": "x"}).encode()])
def test_not_an_image(server, data):
    assert_error(post(server, data, headers={"Content-Type": "image/png"}), 415,
                 "unsupported_format", "PNG, JPEG")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_file(server, fmt):
    buf = io.BytesIO()
    noise = np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    Image.fromarray(noise).save(buf, format=fmt)
    data = buf.getvalue()
    assert_error(post(server, data[: len(data) // 2]), 400, "corrupt_image", "truncated")


def test_unknown_model(server):
    resp = post(server, png_bytes(random_image(32, 32, 0)), params={"model": "nope"})
    assert_error(resp, 404, "unknown_model", "'nope'", "'edges'", "'labels'", "'gray'")


def test_multipart_without_a_file(server):
    resp = httpx.post(server + "/api/translate", data={"model": "edges"},
                      files={"other": (None, "not a file")})
    assert_error(resp, 400, "no_image_field", "'image'")
    resp = post(server, b"--xyz\r\nContent-Disposition: form-data\r\n\r\ngarbage",
                headers={"Content-Type": "multipart/form-data; boundary=xyz"})
    assert resp.status_code == 400 and resp.json()["error"] in ("bad_multipart", "no_image_field")


def test_too_many_pixels_counts_the_padding(server):
    # 2,100 pixels, but padded to 128 x 2176 for the U-Net: over the 512x512 limit.
    assert_error(post(server, png_bytes(np.zeros((1, 2100, 3), np.uint8))), 413, "too_many_pixels",
                 "2100x1", "padding")
    assert post(server, png_bytes(np.zeros((1, 2000, 3), np.uint8))).status_code == 200  # 128x2048 fits
    # A 6000x6000 PNG is small on the wire; it is refused from its header, before decoding.
    bomb = png_bytes(np.zeros((6000, 6000), np.uint8))
    assert len(bomb) < MAX_UPLOAD_MB * 1024 * 1024
    assert_error(post(server, bomb), 413, "too_many_pixels", "6000x6000")


def _conn(server: str) -> http.client.HTTPConnection:
    u = urlparse(server)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=20)


def test_too_large_refused_from_content_length(server):
    """Refused before the body is sent (as curl does for large uploads with Expect: 100-continue)."""
    conn = _conn(server)
    conn.putrequest("POST", "/api/translate")
    conn.putheader("Content-Type", "image/png")
    conn.putheader("Content-Length", str(50 * 1024 * 1024))
    conn.endheaders()
    resp = conn.getresponse()
    body = json.loads(resp.read())
    assert resp.status == 413 and body["error"] == "too_large" and "byte limit" in body["detail"]


def test_too_large_refused_while_streaming(server):
    """Chunked upload, no Content-Length: counted as it arrives."""
    limit = MAX_UPLOAD_MB * 1024 * 1024
    conn = _conn(server)
    conn.putrequest("POST", "/api/translate")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    chunk = b"\x89PNG\r\n\x1a\n" + bytes(64 * 1024 - 8)
    payload = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(limit // len(chunk) + 1))
    conn.send(payload + b"0\r\n\r\n")
    resp = conn.getresponse()
    body = json.loads(resp.read())
    assert resp.status == 413 and body["error"] == "too_large"


def test_server_survives_bad_requests(server):
    assert httpx.get(server + "/health").json()["status"] == "ok"
    assert post(server, png_bytes(random_image(16, 16, 1))).status_code == 200


def test_openapi_and_offline_docs(server):
    spec = httpx.get(server + "/openapi.json").json()
    assert {"/api/translate", "/api/models", "/health"} <= set(spec["paths"])
    body = spec["paths"]["/api/translate"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in body and "image/png" in body
    assert "413" in spec["paths"]["/api/translate"]["post"]["responses"]
    for page in ("/docs", "/redoc"):
        html = httpx.get(server + page).text
        srcs = [part.split('"')[1] for part in html.split("src=")[1:]] + \
               [part.split('"')[1] for part in html.split("href=")[1:]]
        assert srcs and all(s.startswith("/") for s in srcs), srcs  # nothing from outside
    assert httpx.get(server + "/static-offline-docs/swagger-ui-bundle.js").status_code == 200
    page = httpx.get(server + "/")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "studio.js" in page.text and "http" not in page.text.split("<body>")[0].replace("http-equiv", "")


def test_cli_refuses_a_missing_model(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pix2pix", "serve", "--model", str(tmp_path / "nope")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "does not exist" in proc.stderr


def test_onnxruntime_backend_server_agrees_with_eager_and_idles_between_requests(model_dirs, tmp_path):
    """`pix2pix serve` with its default backend (auto: ONNX Runtime on CPU) answers like eager
    PyTorch to within one 8-bit level, and once it has answered it uses no CPU: ONNX Runtime's
    threads sleep instead of spin-waiting (they held both cores for 30-40 ms after each answer)."""
    import os
    import signal
    import time

    import psutil

    from .serve_support import free_port, wait_healthy

    port = free_port()
    log = tmp_path / "server.log"
    cmd = [sys.executable, "-m", "pix2pix", "serve", "--port", str(port), "--device", "cpu",
           "--model", str(model_dirs["edges"])]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                # Two threads: with one, ONNX Runtime has no pool to spin.
                                env={**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "2",
                                     "PIX2PIX_CACHE": str(tmp_path / "cache")})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, log)
        data = png_bytes(random_image(96, 160, 7))
        resp = post(url, data)
        assert resp.status_code == 200, resp.text
        got = decode(resp.content).astype(int)
        want = expected(model_dirs["edges"], data).astype(int)
        assert got.shape == want.shape and np.abs(got - want).max() <= 1
        # CPU seconds the server spends in the 0.3 s after each of three answers.
        server, idle = psutil.Process(proc.pid), 0.0
        for _ in range(3):
            assert post(url, data).status_code == 200
            before = sum(server.cpu_times()[:2])
            time.sleep(0.3)
            idle += sum(server.cpu_times()[:2]) - before
        assert idle < 0.05, f"the server used {idle:.2f} CPU-s in 0.9 s of waiting for requests (spinning: ~0.1)"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    assert "onnxruntime" in log.read_text()


def test_models_are_listed_with_the_one_description_and_the_runtime_files(server, model_dirs):
    """/api/models entries are ModelDescription (the web export's config.json starts with the same),
    and the studio's runtime flavours come from the server, not from a copy in its JavaScript."""
    from dataclasses import fields

    from pix2pix.export.web_runtime import FLAVOURS, VERSION
    from pix2pix.inference.description import ModelDescription, describe

    listed = httpx.get(server + "/api/models").json()
    assert set(listed) == {"models", "onnxruntime_web", "flavours"}
    assert listed["flavours"] == {k: list(v) for k, v in FLAVOURS.items()} and listed["onnxruntime_web"] == VERSION
    entry = listed["models"][0]
    assert list(entry) == [f.name for f in fields(ModelDescription)]
    t = Translator.from_pretrained(model_dirs["edges"], device="cpu")
    assert entry == describe(t, "edges").to_dict()
    spec = httpx.get(server + "/openapi.json").json()
    assert set(spec["components"]["schemas"]["ModelDescription"]["properties"]) == set(entry)
    js = (Path(pix2pix.serve.__file__).parent / "static" / "inbrowser.js").read_text()
    assert not any(name in js for pair in FLAVOURS.values() for name in pair)
