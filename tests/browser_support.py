"""Debian's Chromium driven by Playwright, for the studio tests (tests/serve) and the in-browser
tests (tests/web): one launch recipe, one missing-browser rule, one stroke."""
from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import pytest

from conftest import missing_install

CHROMIUM = Path("/usr/bin/chromium")
# As root, headless, and quiet on a closed network (no background connections to refuse).
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# In the page, a statement: `o`, the studio's shown output, whichever element shows it (the <img>
# of PNG answers, or the output canvas of raw answers, video frames and the in-browser engine),
# and `ow`, `oh`: its size in pixels (0 while an <img> is still loading).
SHOWN_OUTPUT = """const img = document.getElementById('output');
  const o = img.hidden ? document.getElementById('output-canvas') : img;
  const [ow, oh] = o.tagName !== 'IMG' ? [o.width, o.height] : o.complete ? [o.naturalWidth, o.naturalHeight] : [0, 0];"""
# The served studio's output shows the canvas's latest version and nothing is in flight.
SERVED_SYNC = "() => { " + SHOWN_OUTPUT + """
  const c = document.getElementById('input');
  return o.dataset.version === c.dataset.version && !document.body.dataset.busy && ow > 0; }"""
# The shown output's pixels as [width, height, base64 RGBA], drawn onto a scratch canvas: an <img>
# has no pixels of its own to read, and for an opaque canvas the copy is exact.
OUTPUT_PIXELS = "() => { " + SHOWN_OUTPUT + """
  const c = document.createElement('canvas');
  c.width = ow; c.height = oh;
  const g = c.getContext('2d');
  g.drawImage(o, 0, 0);
  const d = g.getImageData(0, 0, ow, oh).data;
  let s = '';
  for (let i = 0; i < d.length; i += 8192) s += String.fromCharCode(...d.subarray(i, i + 8192));
  return [ow, oh, btoa(s)]; }"""


def need_chromium() -> None:
    """Fail when `make test` could have installed Chromium here; skip (fail under CI=true) when not."""
    if CHROMIUM.exists():
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        pytest.fail(f"{CHROMIUM} is missing although apt-get can install it here: run `make test` "
                    f"(its setup installs it) or `apt-get install -y chromium`")
    missing_install("Chromium", f"{CHROMIUM} is not installed and cannot be installed here (installing "
                    f"it needs root and apt-get; uid {os.geteuid()}, apt-get "
                    f"{'found' if shutil.which('apt-get') else 'missing'})")


def launch_browser(args: Optional[list[str]] = None) -> Iterator:
    """A headless Chromium (Playwright Browser) for a fixture to yield; closed afterwards.
    ``args`` replaces the usual command-line flags (ARGS) where a test needs others."""
    need_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS if args is None else args,
                              headless=True)
        try:
            yield b
        finally:
            b.close()


def stroke(page, points, steps: int) -> None:
    """Drag the mouse through ``points`` given as fractions of the #input canvas, ``steps`` mouse
    moves per segment."""
    box = page.locator("#input").bounding_box()
    xy = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    page.mouse.move(*xy[0])
    page.mouse.down()
    for p in xy[1:]:
        page.mouse.move(*p, steps=steps)
    page.mouse.up()


def shown_output_pixels(page) -> np.ndarray:
    """(H, W, 4) uint8 RGBA of the studio's shown output, <img> or canvas alike."""
    w, h, data = page.evaluate(OUTPUT_PIXELS)
    return np.frombuffer(base64.b64decode(data), np.uint8).reshape(h, w, 4)
