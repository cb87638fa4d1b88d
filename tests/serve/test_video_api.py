"""POST /api/translate-video on the real `pix2pix serve` process: a clip with audio in, the clip
translated out; the limits (bytes, duration, frames, pixels) and bad uploads answered by name."""
from __future__ import annotations

import httpx
import numpy as np
import pytest

from pix2pix import Translator
from pix2pix.video.stream import translate_video
from pix2pix.video.temporal import TemporalBlend

from video.clips import read_clip, write_clip
from .serve_support import MAX_VIDEO_MB, random_image


def clip(tmp_path, n: int, size=(128, 96), name="c.mp4", **kw):
    frames = [np.roll(random_image(size[1], size[0], seed=1), 2 * i, axis=1) for i in range(n)]
    return write_clip(tmp_path / name, frames, fps=10, **kw)


def post(server, data: bytes, **kw) -> httpx.Response:
    return httpx.post(server + "/api/translate-video", content=data, timeout=120, **kw)


def test_clip_in_translated_clip_out(server, model_dirs, tmp_path):
    src = clip(tmp_path, 12)
    resp = post(server, src.read_bytes(), params={"model": "edges", "temporal": "blend"},
                headers={"Content-Type": "video/mp4"})
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "video/mp4" and resp.headers["x-frames"] == "12"
    assert float(resp.headers["x-input-warping-error"]) >= 0 and resp.headers["x-encoder"] == "libx264"
    out = tmp_path / "out.mp4"
    out.write_bytes(resp.content)
    frames, times, facts = read_clip(out)
    frames_in, times_in, facts_in = read_clip(src)
    assert len(frames) == 12 and times == pytest.approx(times_in)
    assert (facts["width"], facts["height"]) == (128, 96)
    assert facts["audio_packets"] == facts_in["audio_packets"]
    # The same as translating the clip here (the same encoder: the same bytes up to its rounding).
    t = Translator.from_pretrained(model_dirs["edges"], device="cpu", backend="eager")
    translate_video(t, src, tmp_path / "here.mp4", temporal=TemporalBlend(0.5))
    here, _, _ = read_clip(tmp_path / "here.mp4")
    assert max(np.abs(a.astype(np.float32) - b).mean() for a, b in zip(frames, here)) < 1.0
    assert np.abs(frames[5].astype(np.float32) - frames_in[5]).mean() > 10  # not the input sent back


def test_multipart_and_gif(server, tmp_path):
    src = clip(tmp_path, 5, size=(64, 64), name="c.gif", codec="gif", audio=False)
    resp = httpx.post(server + "/api/translate-video", files={"video": ("c.gif", src.read_bytes())},
                      data={"model": "labels"}, timeout=120)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "image/gif" and resp.headers["x-model"] == "labels"


@pytest.mark.parametrize("case,status,code", [
    ("text", 415, "not_a_video"), ("frames", 413, "too_many_frames"), ("pixels", 413, "too_many_pixels"),
    ("bytes", 413, "too_large"), ("audio_only", 400, "no_video_stream")])
def test_limits_and_bad_uploads_are_named(server, tmp_path, case, status, code):
    import av

    if case == "text":
        data = b"not a clip at all" * 100
    elif case == "frames":
        data = clip(tmp_path, 31, size=(32, 32), audio=False).read_bytes()
    elif case == "pixels":
        data = clip(tmp_path, 2, size=(640, 480), audio=False).read_bytes()
    elif case == "bytes":
        data = b"\x00\x00\x00\x20ftypisom" + bytes(int(MAX_VIDEO_MB * 1024 * 1024) + 10)
    else:
        path = tmp_path / "a.mp4"
        with av.open(str(path), "w") as out:
            a = out.add_stream("aac", rate=16000)
            for k in range(4):
                f = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
                f.sample_rate, f.pts = 16000, k * 1024
                out.mux(a.encode(f))
            out.mux(a.encode())
        data = path.read_bytes()
    resp = post(server, data)
    assert resp.status_code == status, resp.text
    assert resp.json()["error"] == code


def test_a_malformed_query_parameter_is_a_named_400(server):
    """FastAPI's own 422 body has another shape; ours names the field and the value (found by the
    schema fuzzer: ?strength=null)."""
    resp = httpx.post(server + "/api/translate-video?strength=null", content=b"x", timeout=30)
    assert resp.status_code == 400
    body = resp.json()
    assert set(body) == {"error", "detail"} and body["error"] == "bad_parameter"
    assert "strength" in body["detail"] and "'null'" in body["detail"]


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.97])
def test_a_truncated_mp4_is_called_truncated(server, tmp_path, keep):
    """A recording stopped early or a cut-off transfer: named as such, not as `not_a_video`."""
    data = clip(tmp_path, 12).read_bytes()
    resp = post(server, data[: int(len(data) * keep)])
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert body["error"] == "truncated_video" and "truncated MP4" in body["detail"]
    assert "send the whole file" in body["detail"]


def test_a_clip_sent_as_an_image_points_to_the_video_route(server, tmp_path):
    resp = httpx.post(server + "/api/translate", content=clip(tmp_path, 3, audio=False).read_bytes(), timeout=60)
    assert resp.status_code == 415 and resp.json()["error"] == "unsupported_format"
    assert "POST /api/translate-video" in resp.json()["detail"] and "MP4" in resp.json()["detail"]
