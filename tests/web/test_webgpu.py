"""The exported page on WebGPU, in headless Chromium through its software adapter (SwiftShader):
ONNX Runtime Web's WebGPU execution provider gives the same output as `pix2pix translate` within
2/255. Correctness only: a software adapter says nothing about speed on a real GPU."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from browser_support import ARGS, launch_browser

from .web_support import IN_SYNC, block_network, output_pixels

WEBGPU_ARGS = [a for a in ARGS if a != "--disable-gpu"] + [
    "--enable-unsafe-webgpu", "--use-webgpu-adapter=swiftshader", "--use-angle=swiftshader"]


@pytest.fixture(scope="module")
def gpu_browser():
    yield from launch_browser(WEBGPU_ARGS)


def test_page_on_webgpu_matches_translate(gpu_browser, builtin_page):
    report = builtin_page  # the default export of the built-in model (tests/web/conftest.py)
    assert "webgpu" in report.flavours
    context = gpu_browser.new_context()
    tried = block_network(context)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto((report.folder / "index.html").as_uri())
    page.wait_for_function(IN_SYNC, timeout=180000)
    assert page.locator("#engine").get_attribute("data-ep") == "webgpu", page.locator("#engine").inner_text()
    entries = json.loads((report.folder / "examples" / "examples.json").read_text())["examples"]
    got = output_pixels(page)[:, :, :3].astype(int)
    want = np.asarray(Image.open(report.folder / "examples" / entries[0]["output"]).convert("RGB")).astype(int)
    diff = np.abs(got - want)
    print(f"\nWebGPU (SwiftShader) page vs pix2pix translate: max {diff.max()}/255, mean {diff.mean():.4f}")
    assert diff.max() <= 2 and want.std() > 10
    assert not tried and not errors, (tried, errors)
    context.close()
