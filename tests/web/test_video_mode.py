"""The studio's video mode in real Chromium: a fake camera fed from a Y4M clip
(--use-fake-device-for-media-stream --use-file-for-fake-video-capture), translated frame by frame
in the exported page; frames flow, the output follows the input, the recording has one frame per
translated frame."""
from __future__ import annotations

import base64
import io

import numpy as np
import pytest

from browser_support import ARGS, launch_browser
from pix2pix.export.web import read_model_bytes

from .web_support import IN_SYNC, block_network, export, lively_model, ort_reference, output_pixels

STATS = "() => { const s = document.getElementById('video-stats').dataset; return [+(s.frames || 0), +(s.fps || 0), +(s.latency || -1)]; }"
INPUT_RGB = """() => { const c = document.getElementById('input');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let s = '';
  for (let i = 0; i < d.length; i += 8192) s += String.fromCharCode(...d.subarray(i, i + 8192));
  return [c.width, c.height, btoa(s)]; }"""
RECORDING = """async () => { const a = document.getElementById('video-download');
  const b = new Uint8Array(await (await fetch(a.href)).arrayBuffer()); let s = '';
  for (let i = 0; i < b.length; i += 8192) s += String.fromCharCode(...b.subarray(i, i + 8192));
  return [btoa(s), +a.dataset.frames, +a.dataset.written]; }"""


def write_y4m(path, w: int = 160, h: int = 120, frames: int = 40, fps: int = 20) -> None:
    """A clip whose every frame differs: a bright square sweeping across a shifting gradient."""
    y, x = np.mgrid[0:h, 0:w]
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for k in range(frames):
            luma = (40 + 120 * ((x + 4 * k) % w) / w + 40 * y / h).astype(np.uint8)
            cx = (k * 7) % (w - 30)
            luma[40:70, cx:cx + 30] = 235
            u = np.full((h // 2, w // 2), 128 + int(60 * np.sin(k / 5)), np.uint8)
            v = np.full((h // 2, w // 2), 128 - int(60 * np.cos(k / 7)), np.uint8)
            f.write(b"FRAME\n" + luma.tobytes() + u.tobytes() + v.tobytes())


@pytest.fixture(scope="module")
def camera_browser(tmp_path_factory):
    clip = tmp_path_factory.mktemp("camera") / "clip.y4m"
    write_y4m(clip)
    args = ARGS + ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                   f"--use-file-for-fake-video-capture={clip}", "--autoplay-policy=no-user-gesture-required"]
    yield from launch_browser(args)


def reference(folder, rgb: np.ndarray, multiple: int = 128) -> np.ndarray:
    """Python ONNX Runtime on the page's model, the input padded by reflection to the model's
    multiple as the page pads it, then cropped back."""
    h, w = rgb.shape[:2]
    H, W = -(-h // multiple) * multiple, -(-w // multiple) * multiple
    padded = np.pad(rgb, ((0, H - h), (0, W - w), (0, 0)), mode="reflect")
    return ort_reference(read_model_bytes(folder), padded)[:h, :w].astype(int)


def input_rgb(page) -> np.ndarray:
    w, h, data = page.evaluate(INPUT_RGB)
    return np.frombuffer(base64.b64decode(data), np.uint8).reshape(h, w, 4)[:, :, :3]


def test_camera_frames_flow_follow_and_record(camera_browser, tmp_path):
    import av

    report = export(lively_model(tmp_path / "model", "unet_128", 8, 128), tmp_path / "page")
    context = camera_browser.new_context(viewport={"width": 1280, "height": 820})
    tried = block_network(context)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto((report.folder / "index.html").as_uri())
    page.wait_for_function(IN_SYNC, timeout=60000)
    assert page.locator("#video-controls").is_visible()
    page.locator("#video-camera").click()
    page.wait_for_function(f"() => ({STATS})()[0] >= 4", timeout=60000)
    # Frames flow: the input canvas is the camera frame (160x120 scaled to 128 on its long side).
    assert page.evaluate("() => [document.getElementById('input').width, document.getElementById('input').height]") == [128, 96]
    frames, fps, latency = page.evaluate(STATS)
    assert fps > 0 and latency >= 0
    assert "fps" in page.locator("#video-stats").inner_text()
    # Record a stretch of translated frames; the file has one frame per translated frame.
    page.locator("#video-record").click()
    start = page.evaluate(STATS)[0]
    page.wait_for_function(f"() => ({STATS})()[0] >= {start + 6}", timeout=60000)
    page.locator("#video-record").click()
    page.wait_for_function("() => !document.getElementById('video-download').hidden", timeout=30000)
    data, recorded, written = page.evaluate(RECORDING)
    with av.open(io.BytesIO(base64.b64decode(data))) as container:
        decoded = sum(1 for _ in container.decode(video=0))
    print(f"\nvideo mode: {frames} frames at {fps} fps, {latency} ms frame to output; recorded {recorded}, "
          f"counted in the WebM by the page {written}, decoded {decoded}")
    # Every translated frame is in the file, the one drawn just before the click included: the
    # page flushes the encoder before MediaRecorder.stop() (which would drop a frame in flight).
    assert recorded >= 6 and decoded == recorded == written
    # The output follows the input: two moments, two different inputs, two different outputs;
    # once stopped, the output is the translation of the frame on the canvas.
    page.locator("#video-stop").click()
    page.wait_for_function(IN_SYNC, timeout=30000)
    first_in, first_out = input_rgb(page).copy(), output_pixels(page)[:, :, :3].astype(int)
    assert np.abs(first_out - reference(report.folder, first_in)).max() <= 2
    page.locator("#video-camera").click()
    page.wait_for_function(f"() => ({STATS})()[0] >= 3", timeout=60000)
    page.locator("#video-stop").click()
    page.wait_for_function(IN_SYNC, timeout=30000)
    second_in, second_out = input_rgb(page), output_pixels(page)[:, :, :3].astype(int)
    assert np.abs(second_in.astype(int) - first_in.astype(int)).mean() > 2
    assert np.abs(second_out - first_out).mean() > 1
    assert np.abs(second_out - reference(report.folder, second_in)).max() <= 2
    assert not tried and not errors, (tried, errors)
    context.close()
