"""Debian's Chromium driven by Playwright, for the studio tests (tests/serve) and the in-browser
tests (tests/web): one launch recipe, one missing-browser rule, one stroke."""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterator, Optional

import pytest

from conftest import missing_install

CHROMIUM = Path("/usr/bin/chromium")
# As root, headless, and quiet on a closed network (no background connections to refuse).
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


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
