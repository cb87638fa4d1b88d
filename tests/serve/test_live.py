"""/api/live, the studio's WebSocket, on the real `pix2pix serve` process: edits in, translations out
(the same pixels as POST /api/translate), the latest edit wins, errors answered by name."""
from __future__ import annotations

import json

import httpx
import numpy as np
from websockets.sync.client import connect

from .serve_support import decode, png_bytes, random_image


def edit(seq: int, image: np.ndarray, model: str | None = "edges") -> bytes:
    return json.dumps({"seq": seq, "model": model}).encode() + b"\n" + png_bytes(image)


def answer(ws) -> tuple[dict, bytes | None]:
    msg = ws.recv(timeout=120)
    if isinstance(msg, str):
        return json.loads(msg), None
    head, _, png = msg.partition(b"\n")
    return json.loads(head), png


def test_edits_are_answered_like_the_rest_api_and_the_latest_wins(server):
    images = [random_image(96, 128, seed=s) for s in range(6)]
    big = random_image(512, 512, seed=9)  # slower: the next edits arrive while it is translated
    with connect(server.replace("http://", "ws://") + "/api/live") as ws:
        ws.send(edit(1, images[0], model="labels"))
        head, png = answer(ws)
        assert head["seq"] == 1 and head["model"] == "labels" and head["forward_ms"] > 0
        rest = httpx.post(server + "/api/translate", params={"model": "labels"}, content=png_bytes(images[0]),
                          timeout=60)
        assert np.array_equal(decode(png), decode(rest.content))  # the same translation as REST

        ws.send(edit(2, big))
        for seq, image in enumerate(images[1:], start=3):
            ws.send(edit(seq, image))
        answered, dropped = [], 0
        while not answered or answered[-1]["seq"] != 7:
            head, png = answer(ws)
            answered.append(head)
            dropped += head["dropped"]
    # Every edit is answered or dropped, the answers in order, and the last is the last edit's.
    seqs = [h["seq"] for h in answered]
    assert seqs == sorted(seqs) and len(seqs) + dropped == 6
    assert dropped >= 1  # edits superseded before their turn (behind the big one) were skipped
    rest = httpx.post(server + "/api/translate", params={"model": "edges"}, content=png_bytes(images[-1]), timeout=60)
    assert np.array_equal(decode(png), decode(rest.content))


def test_bad_edits_are_named_and_the_socket_stays_open(server):
    with connect(server.replace("http://", "ws://") + "/api/live") as ws:
        ws.send(b"no header line")
        head, png = answer(ws)
        assert png is None and head["error"] == "bad_message" and set(head) == {"seq", "error", "detail"}
        ws.send(edit(5, random_image(64, 64, seed=1), model="nope"))
        head, _ = answer(ws)
        assert (head["seq"], head["error"]) == (5, "unknown_model") and "'edges'" in head["detail"]
        ws.send(b'{"seq": 6}\n' + b"GIF89a not an image")
        head, _ = answer(ws)
        assert (head["seq"], head["error"]) == (6, "unsupported_format")
        ws.send(edit(7, random_image(64, 64, seed=1), model=None))  # the default model
        head, png = answer(ws)
        assert head["seq"] == 7 and head["model"] == "edges" and decode(png).shape == (64, 64, 3)


def test_video_frames_are_translated_like_edits_and_counted_apart(server):
    before = httpx.get(server + "/health").json()
    image = random_image(64, 96, seed=3)
    with connect(server.replace("http://", "ws://") + "/api/live") as ws:
        ws.send(json.dumps({"seq": 1, "model": "edges", "type": "frame"}).encode() + b"\n" + png_bytes(image))
        head, png = answer(ws)
        assert (head["seq"], head["type"]) == (1, "frame")
        ws.send(edit(2, image))
        head, png_edit = answer(ws)
        assert (head["seq"], head["type"]) == (2, "edit") and png_edit == png
        ws.send(json.dumps({"seq": 3, "type": "movie"}).encode() + b"\n" + png_bytes(image))
        head, _ = answer(ws)
        assert (head["seq"], head["error"]) == (3, "bad_message") and "'frame'" in head["detail"]
    after = httpx.get(server + "/health").json()
    assert (after["live_frames"] - before["live_frames"], after["live_edits"] - before["live_edits"]) == (1, 1)


def raw_edit(seq: int, rgba: np.ndarray, model: str = "edges", reply: str | None = "rgba", size=None) -> bytes:
    h, w = rgba.shape[:2]
    head = {"seq": seq, "model": model, "rgba": size or [w, h], **({"reply": reply} if reply else {})}
    return json.dumps(head).encode() + b"\n" + rgba.tobytes()


def test_raw_rgba_edits_get_the_rest_apis_pixels_and_say_where_the_time_went(server):
    """The studio's form: the canvas as raw RGBA in, raw RGBA (or PNG) out, no image codec on
    either side; the same translation as POST /api/translate of the same pixels as PNG."""
    rgba = random_image(96, 128, seed=4, channels=4)
    rgba[:, :, 3] = 255  # the studio's canvas is opaque
    rest = decode(httpx.post(server + "/api/translate", params={"model": "edges"}, content=png_bytes(rgba),
                             timeout=60).content)
    with connect(server.replace("http://", "ws://") + "/api/live") as ws:
        ws.send(raw_edit(1, rgba))
        head, body = answer(ws)
        assert head["seq"] == 1 and head["rgba"] == [128, 96]
        got = np.frombuffer(body, np.uint8).reshape(96, 128, 4)
        assert np.array_equal(got, rest)  # RGBA in, RGBA out: the REST answer to the same pixels
        assert set(head["timing"]) == {"wait", "decode", "queue", "forward", "encode"}
        assert head["timing"]["forward"] == head["forward_ms"] > 0
        assert head["server_ms"] >= head["timing"]["forward"]

        ws.send(raw_edit(2, rgba, reply=None))  # raw in, PNG out
        head, body = answer(ws)
        assert "rgba" not in head and np.array_equal(decode(body), rest)

        ws.send(raw_edit(3, rgba[:, :-1], size=[128, 96]))  # one column short of what the header says
        head, body = answer(ws)
        assert body is None and (head["seq"], head["error"]) == (3, "bad_message")
        assert "a 128x96 RGBA edit is 49,152 bytes after the header line, got 48,768" in head["detail"]
        ws.send(raw_edit(6, rgba, size=[1024, 1024]))  # over the server's --max-pixels
        head, _ = answer(ws)
        assert (head["seq"], head["error"]) == (6, "too_many_pixels") and "--max-pixels" in head["detail"]
        ws.send(raw_edit(4, rgba, size=[128, "96"]))
        head, _ = answer(ws)
        assert head["error"] == "bad_message" and "[width, height]" in head["detail"]
        ws.send(raw_edit(5, rgba, size=[128, 96]))  # the socket is still open and answers
        head, body = answer(ws)
        assert head["seq"] == 5 and np.array_equal(np.frombuffer(body, np.uint8).reshape(96, 128, 4), rest)
