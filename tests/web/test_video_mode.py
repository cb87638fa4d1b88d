"""The studio's video mode in real Chromium: a fake camera fed from a Y4M clip
(--use-fake-device-for-media-stream --use-file-for-fake-video-capture), translated frame by frame
in the exported page; frames flow, the output follows the input, the recording has one frame per
translated frame."""
from __future__ import annotations

import numpy as np

from pix2pix.export.web import read_model_bytes

from .web_support import (IN_SYNC, VIDEO_STATS as STATS, block_network, canvas_pixels, export,
                          lively_model, ort_reference, output_pixels, record_frames)


def reference(folder, rgb: np.ndarray, multiple: int = 128) -> np.ndarray:
    """Python ONNX Runtime on the page's model, the input padded by reflection to the model's
    multiple as the page pads it, then cropped back."""
    h, w = rgb.shape[:2]
    H, W = -(-h // multiple) * multiple, -(-w // multiple) * multiple
    padded = np.pad(rgb, ((0, H - h), (0, W - w), (0, 0)), mode="reflect")
    return ort_reference(read_model_bytes(folder), padded)[:h, :w].astype(int)


def input_rgb(page) -> np.ndarray:
    return canvas_pixels(page, "input")[:, :, :3]


def test_camera_frames_flow_follow_and_record(camera_browser, tmp_path):
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
    # Record a stretch of translated frames: every translated frame is in the file, the one drawn
    # just before the click included (the page flushes the encoder before MediaRecorder.stop()).
    recorded, written, decoded = record_frames(page, 6)
    print(f"\nvideo mode: {frames} frames at {fps} fps, {latency} ms frame to output; recorded {recorded}, "
          f"counted in the WebM by the page {written}, decoded {decoded}")
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
