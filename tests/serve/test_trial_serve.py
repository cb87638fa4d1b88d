"""What a user trial of `pix2pix serve` found: routing errors in the API's error shape, HEAD
answered as GET, the clip route's query parameters checked (and named) before the upload, the
live socket refusing a ``reply`` it does not know, and a built-in model given by name keeping the
examples shipped with it. Real servers, real HTTP."""
from __future__ import annotations

import json

import httpx
from websockets.sync.client import connect

from pix2pix.builtin import builtin_model_dir
from pix2pix.export.examples import read_index, stored

from .serve_support import decode, free_port, png_bytes, random_image, run_server


def test_unknown_path_and_wrong_method_answer_in_the_error_shape(server):
    resp = httpx.get(f"{server}/no/such/route")
    assert resp.status_code == 404
    assert resp.json() == {"error": "not_found",
                           "detail": "no such path: /no/such/route; the API's routes are listed at /docs"}
    resp = httpx.delete(f"{server}/api/models")
    assert resp.status_code == 405 and resp.headers["allow"] == "GET"
    body = resp.json()
    assert body["error"] == "method_not_allowed" and "GET, not DELETE" in body["detail"]
    assert httpx.get(f"{server}/static/missing.js").json()["error"] == "not_found"


def test_head_is_answered_as_get_without_a_body(server):
    for path in ("/health", "/", "/api/models", "/static/studio.js"):
        got, head = httpx.get(server + path), httpx.head(server + path)
        assert head.status_code == 200, (path, head.status_code)
        assert head.content == b""
        assert head.headers["content-type"] == got.headers["content-type"]
        if path != "/health":  # /health's counters may move between the two requests
            assert head.headers["content-length"] == str(len(got.content))
    # A POST-only route still says which method it takes.
    resp = httpx.head(f"{server}/api/translate")
    assert resp.status_code == 405 and resp.headers["allow"] == "POST"


def test_clip_options_are_checked_by_query_name_before_the_upload(server):
    url = f"{server}/api/translate-video"
    # No clip at all: the options are refused first, so a typo costs no upload.
    resp = httpx.post(url, params={"temporal": "blnd"}, content=b"")
    assert resp.status_code == 400
    assert resp.json() == {"error": "bad_parameter",
                           "detail": "query.temporal: 'blnd' is not a temporal method; use one of none, blend"}
    resp = httpx.post(url, params={"temporal": "blend", "strength": "1.5"}, content=b"not a clip")
    assert resp.status_code == 400
    body = resp.json()
    assert body["error"] == "bad_parameter" and body["detail"].startswith("query.strength: 1.5")
    assert "[0, 1)" in body["detail"] and "--temporal" not in body["detail"]


def test_live_refuses_a_reply_it_does_not_know(server):
    png = png_bytes(random_image(64, 64, seed=4))
    with connect(server.replace("http", "ws") + "/api/live") as ws:
        ws.send(b'{"seq": 1, "reply": "RGBA"}\n' + png)
        error = json.loads(ws.recv())
        assert (error["seq"], error["error"]) == (1, "bad_message")
        assert "'png', 'rgba'" in error["detail"] and "'RGBA'" in error["detail"]
        ws.send(b'{"seq": 2, "reply": "png"}\n' + png)  # the default, spelled out
        head, _, image = ws.recv().partition(b"\n")
        assert json.loads(head)["seq"] == 2 and decode(image).shape[:2] == (64, 64)


def test_a_builtin_served_by_name_keeps_its_examples(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no file named like the model here: the name means the built-in
    name = "sketch2photo"
    shipped = read_index(builtin_model_dir(name) / "examples")
    assert shipped and stored(name) == builtin_model_dir(name) / "examples"
    with run_server(["--model", name, "--backend", "eager"], free_port(), tmp_path / "server.log") as url:
        listed = httpx.get(f"{url}/api/models/{name}/examples").json()["examples"]
        assert [e["input"] for e in listed] == [e["input"] for e in shipped]
        assert httpx.get(f"{url}/api/models/{name}/examples/{listed[0]['input']}").status_code == 200


def test_a_clip_for_a_model_that_cannot_make_video_is_named(tmp_path):
    """A 4-channel (RGBA) model cannot make a clip: 400 cannot_translate says why, with no temp path."""
    from pix2pix.serve import create_app, load_models

    from video.clips import write_clip
    from .serve_support import serve_in_thread, tiny_model

    model = tiny_model(tmp_path / "rgba", seed=1, in_channels=3, out_channels=4)
    (served,) = load_models([f"rgba={model}"], device="cpu", backend="eager")
    src = write_clip(tmp_path / "c.mp4", [random_image(64, 64, seed=i) for i in range(3)], fps=10, audio=False)
    with serve_in_thread(create_app([served])) as url:
        resp = httpx.post(url + "/api/translate-video", content=src.read_bytes(), timeout=120)
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert body["error"] == "cannot_translate" and "4-channel" in body["detail"]
    assert str(tmp_path) not in body["detail"] and "/tmp" not in body["detail"]


def test_an_empty_model_parameter_means_the_default_model(server):
    png = png_bytes(random_image(64, 64, seed=7))
    default = httpx.post(server + "/api/translate", content=png, timeout=30)
    empty = httpx.post(server + "/api/translate?model=", content=png, timeout=30)
    assert empty.status_code == 200, empty.text
    assert empty.headers["x-model"] == default.headers["x-model"] and empty.content == default.content
