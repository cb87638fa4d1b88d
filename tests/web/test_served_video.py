"""Video mode on a real `pix2pix serve`, in real Chromium with a fake camera fed from a Y4M clip:
each frame goes to the server as a "frame" message on /api/live and comes back (raw RGBA) onto the
output canvas. Frames flow through the server (its /health counts them), the output is the translation
of the input frame (as `pix2pix translate` makes it), the temporal blend averages with the previous
frame, and the recording holds every translated frame."""
from __future__ import annotations

import json

import httpx
import numpy as np
import pytest

from .web_support import IN_SYNC, VIDEO_STATS, block_network, canvas_pixels, lively_model, record_frames


@pytest.fixture(scope="module")
def video_server(tmp_path_factory):
    from serve.serve_support import free_port, run_server  # tests/serve, on sys.path as `serve`

    root = tmp_path_factory.mktemp("served-video")
    model = lively_model(root / "small", "unet_128", 8, 128)
    port, log = free_port(), root / "server.log"
    with run_server(["--model", str(model)], port, log) as url:
        yield url, model


@pytest.fixture
def context(camera_browser):
    """A fresh browser context, closed even when the test fails: a page left streaming camera
    frames to the module's server would count in the next test's /health figures."""
    ctx = camera_browser.new_context(viewport={"width": 1280, "height": 820})
    yield ctx
    ctx.close()


def translated(model, rgb: np.ndarray) -> np.ndarray:
    """What `pix2pix translate` makes of ``rgb`` (its default backend), as int 0..255."""
    from pix2pix.inference.translator import Translator

    out = Translator.from_pretrained(model, device="cpu", backend="auto").translate_array(rgb)
    return (out * 255.0 + 0.5).astype(int)


def frames_until(page, n: int) -> None:
    page.wait_for_function(f"() => ({VIDEO_STATS})()[0] >= {n}", timeout=60000)


def stopped(page) -> tuple[np.ndarray, np.ndarray]:
    """Stop the video, wait for the last frame's output; (input RGB, output RGB) as int."""
    page.locator("#video-stop").click()
    page.wait_for_function(IN_SYNC, timeout=30000)
    return (canvas_pixels(page, "input")[:, :, :3].astype(int),
            canvas_pixels(page, "output-canvas")[:, :, :3].astype(int))


def test_served_video_frames_go_through_the_server(context, video_server):
    url, model = video_server
    tried = block_network(context)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    answers: list[bytes] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda m: answers.append(m)))
    page.goto(url + "/")
    page.wait_for_function("() => document.body.dataset.ready && !document.body.dataset.busy", timeout=60000)
    assert page.evaluate("() => window.pix2pixStats.run + '/' + window.pix2pixStats.transport") == "server/websocket"
    assert page.locator("#video-controls").is_visible()
    before = httpx.get(url + "/health").json()

    # Frames flow through the server, shown with fps and latency; the recording has them all.
    page.locator("#video-camera").click()
    frames_until(page, 4)
    frames, fps, latency = page.evaluate(VIDEO_STATS)
    assert fps > 0 and latency >= 0 and "on the server" in page.locator("#video-stats").inner_text()
    recorded, written, decoded = record_frames(page, 6)
    print(f"\nserved video mode: {frames} frames at {fps} fps, {latency} ms frame to output; "
          f"recorded {recorded}, counted in the WebM {written}, decoded {decoded}")
    assert recorded >= 6 and decoded == recorded == written

    # The output follows the input: once stopped, the output canvas is the translation of the
    # frame on the input canvas.
    first_in, first_out = stopped(page)
    shown = page.evaluate(VIDEO_STATS)[0]
    assert first_in.shape == (96, 128, 3)
    assert np.abs(first_out - translated(model, first_in.astype(np.uint8))).max() <= 2
    # ... whose answers came back as raw RGBA (put on the canvas as they are, no PNG to decode).
    heads = [(json.loads(a.partition(b"\n")[0]), len(a.partition(b"\n")[2])) for a in answers if isinstance(a, bytes)]
    frames_back = [(head, n) for head, n in heads if head["type"] == "frame"]
    assert frames_back and all("rgba" in head and n == head["rgba"][0] * head["rgba"][1] * 4 for head, n in frames_back)

    # Blend on: each output is the average of the frame's translation and the previous output, so
    # it differs from the translation alone by half the step from the previous one.
    page.locator("#video-blend").check()
    page.locator("#video-camera").click()
    frames_until(page, 4)
    blended_in, blended_out = stopped(page)
    shown += page.evaluate(VIDEO_STATS)[0]
    alone = translated(model, blended_in.astype(np.uint8))
    assert np.abs(blended_in - first_in).mean() > 2  # another moment of the clip
    assert np.abs(blended_out - alone).mean() > 1    # blended: not the translation alone
    previous = 2 * blended_out - alone               # what the previous output must have been
    assert previous.min() >= -4 and previous.max() <= 259, (previous.min(), previous.max())

    after = httpx.get(url + "/health").json()
    # Every frame shown was translated by the server, sent as a frame (not a still edit).
    assert after["live_frames"] - before["live_frames"] >= shown >= 8
    assert after["live_edits"] == before["live_edits"]
    assert not tried and not errors, (tried, errors)


def test_served_video_over_http_when_there_is_no_socket(context, video_server):
    """Without the WebSocket (`?transport=http`, as behind a proxy that drops it) each frame is one
    POST /api/translate, one at a time; the same output canvas and stats."""
    url, model = video_server
    tried = block_network(context)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url + "/?transport=http")
    page.wait_for_function("() => document.body.dataset.ready && !document.body.dataset.busy", timeout=60000)
    assert page.evaluate("() => window.pix2pixStats.transport") == "http"
    before = httpx.get(url + "/health").json()
    page.locator("#video-camera").click()
    frames_until(page, 4)
    rgb_in, rgb_out = stopped(page)
    shown = page.evaluate(VIDEO_STATS)[0]
    assert np.abs(rgb_out - translated(model, rgb_in.astype(np.uint8))).max() <= 2
    after = httpx.get(url + "/health").json()
    assert after["images"] - before["images"] >= shown and after["live_frames"] == before["live_frames"]
    assert not tried and not errors, (tried, errors)
