"""Helpers for the in-browser studio tests: models, exported folders, Chromium, page probes."""
from __future__ import annotations

import base64
import re
import statistics
from pathlib import Path

import numpy as np
import torch

from browser_support import stroke as browser_stroke
from lively import enliven

# In the page: a canvas's pixels (by element id) as base64 RGBA.
CANVAS_PIXELS = """(id) => {
  const c = document.getElementById(id);
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let s = '';
  for (let i = 0; i < d.length; i += 8192) s += String.fromCharCode(...d.subarray(i, i + 8192));
  return [c.width, c.height, btoa(s)];
}"""
# The output shows the canvas's latest version and nothing is in flight.
IN_SYNC = """() => {
  const o = document.getElementById('output-canvas'), c = document.getElementById('input');
  // null while a page is still parsing, e.g. just after the service worker's reload on a plain server
  if (!o || !c) return false;
  return o.dataset.version === c.dataset.version && !document.body.dataset.busy && !o.hidden;
}"""
FAILED = "() => !!document.getElementById('status')?.classList.contains('error')"


def lively_model(out: Path, generator: str, base: int, size: int, seed: int = 0, upsample: str = "transpose") -> Path:
    """A generator whose output uses the whole range and depends on every level (He-scaled weights,
    batch-norm statistics measured on noise): an untrained N(0, 0.02) one is nearly constant, which
    would let a broken page pass a parity test."""
    from pix2pix.checkpoint import PretrainedInfo, save_pretrained
    from pix2pix.config import ModelConfig
    from pix2pix.models import build_generator

    torch.manual_seed(seed)
    cfg = ModelConfig(generator=generator, base_channels=base, upsample=upsample)
    g = enliven(build_generator(cfg), lambda: torch.rand(4, 3, size, size) * 2 - 1)
    return save_pretrained(g, PretrainedInfo(model=cfg, image_size=size), out)


def export(model_dir: Path, folder: Path, *, fp32: bool = False):
    from pix2pix.inference.translator import Translator
    from pix2pix.export.web import export_web

    t = Translator.from_pretrained(model_dir, device="cpu")
    return export_web(t, folder, source=model_dir, name=model_dir.name, fp32=fp32, webgpu=False)


def block_network(context) -> list[str]:
    """Abort every request that would leave the machine; returns the list of those tried."""
    tried: list[str] = []

    def abort(route):
        tried.append(route.request.url)
        route.abort()

    context.route(re.compile(r"^(https?|wss?|ftp)://(?!127\.0\.0\.1[:/]|localhost[:/])"), abort)
    return tried


def canvas_pixels(page, element_id: str) -> np.ndarray:
    """(H, W, 4) uint8 RGBA of the page's canvas ``element_id``."""
    w, h, data = page.evaluate(CANVAS_PIXELS, element_id)
    return np.frombuffer(base64.b64decode(data), np.uint8).reshape(h, w, 4)


def output_pixels(page) -> np.ndarray:
    return canvas_pixels(page, "output-canvas")


def stroke(page, points, steps: int = 6) -> None:
    """Drag the mouse through ``points`` given as fractions of the canvas."""
    browser_stroke(page, points, steps)


def stroke_entries(page, n: int = 20, sync: str = IN_SYNC) -> list[dict]:
    """The page's record (pix2pixStats.shown: stroke_to_output_ms, inference/forward ms and the
    steps it spent them on) of each stroke's last edit, for ``n`` strokes, each waited for."""
    rng = np.random.default_rng(7)
    out = []
    for _ in range(n):
        a, b = rng.uniform(0.1, 0.9, 2), rng.uniform(0.1, 0.9, 2)
        stroke(page, [tuple(a), tuple(b)])
        page.wait_for_function(sync, timeout=30000)
        version = int(page.evaluate("() => document.getElementById('input').dataset.version"))
        shown = page.evaluate("() => window.pix2pixStats.shown")
        out.append(next(e for e in reversed(shown) if e["version"] == version))
    return out


def stroke_latencies(page, n: int = 20, sync: str = IN_SYNC) -> list[float]:
    """Stroke-to-output ms (as the page measures it: last edit of the stroke to the output shown)
    for ``n`` strokes, each waited for."""
    return [e["stroke_to_output_ms"] for e in stroke_entries(page, n, sync)]


def breakdown(entries: list[dict]) -> str:
    """Where the stroke-to-output milliseconds went: the median of each step the page recorded
    (``steps`` of pix2pixStats.shown entries), in the page's order."""
    names = list((entries[0].get("steps") or {}) if entries else {})
    parts = []
    for name in names:
        values = [e["steps"][name] for e in entries if (e.get("steps") or {}).get(name) is not None]
        if values:
            parts.append(f"{name} {statistics.median(values):.1f}")
    return ", ".join(parts) or "none recorded"


def summary(ms: list[float]) -> str:
    return f"median {statistics.median(ms):.0f} ms (min {min(ms):.0f}, max {max(ms):.0f}, n={len(ms)})"


def ort_reference(onnx_bytes: bytes, rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 through Python ONNX Runtime on the same model bytes -> (H, W, 3) uint8,
    pre- and post-processed as pix2pix.inference.Translator does."""
    from pix2pix.inference.onnx import ort_session, run_onnx

    x = (rgb.astype(np.float32) / 255.0 * 2 - 1).transpose(2, 0, 1)[None]
    y = run_onnx(ort_session(onnx_bytes, threads=1), x)[0]
    return (np.clip((y + 1) / 2, 0, 1) * 255.0 + 0.5).astype(np.uint8).transpose(1, 2, 0)


# ---- video mode ------------------------------------------------------------------------------

# The video stats the page shows: [frames translated, fps, frame-to-output ms].
VIDEO_STATS = ("() => { const s = document.getElementById('video-stats').dataset; "
               "return [+(s.frames || 0), +(s.fps || 0), +(s.latency || -1)]; }")
# The finished recording: [frames the page requested, frames the page counted in its WebM, the
# requestData rounds its flush took].
RECORDED = ("() => { const a = document.getElementById('video-download'); "
            "return [+a.dataset.frames, +a.dataset.written, +a.dataset.rounds]; }")


def write_y4m(path: Path, w: int = 160, h: int = 120, frames: int = 40, fps: int = 20) -> None:
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


def camera_args(clip: Path) -> list[str]:
    """Chromium flags for a fake camera that plays ``clip`` (Y4M) in a loop, granted without asking."""
    from browser_support import ARGS

    return ARGS + ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                   f"--use-file-for-fake-video-capture={clip}", "--autoplay-policy=no-user-gesture-required"]


def record_frames(page, n: int) -> tuple[int, int, int]:
    """Record while the page translates ``n`` more frames, stop; (frames the page requested,
    frames it counted in the WebM, frames PyAV decodes from the file)."""
    import av

    page.locator("#video-record").click()
    start = page.evaluate(VIDEO_STATS)[0]
    page.wait_for_function(f"() => ({VIDEO_STATS})()[0] >= {start + n}", timeout=60000)
    page.locator("#video-record").click()
    page.wait_for_function("() => !document.getElementById('video-download').hidden", timeout=30000)
    recorded, written, rounds = page.evaluate(RECORDED)
    print(f"\nrecording: {recorded} frames requested, {written} in the WebM after {rounds} requestData round(s)")
    with page.expect_download() as download:  # the Recording link, as a user saves the file
        page.locator("#video-download").click()
    with av.open(str(download.value.path())) as container:
        decoded = sum(1 for _ in container.decode(video=0))
    return recorded, written, decoded
