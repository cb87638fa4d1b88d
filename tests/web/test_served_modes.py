"""`pix2pix serve` with the demo-sized model (unet_128, 32 base channels), in real Chromium: the
studio on the server and in the browser (`/?run=browser`), side by side."""
from __future__ import annotations

import io
import statistics

import httpx
import numpy as np
import pytest
from PIL import Image

from browser_support import SERVED_SYNC

from .web_support import IN_SYNC, block_network, lively_model, output_pixels, stroke_latencies, summary


@pytest.fixture(scope="module")
def small_server(tmp_path_factory):
    from serve.serve_support import free_port, run_server  # tests/serve, on sys.path as `serve`

    root = tmp_path_factory.mktemp("served")
    model = lively_model(root / "small", "unet_128", 32, 128)
    port, log = free_port(), root / "server.log"
    # --backend auto: what a user gets (ONNX Runtime on CPU); its fp32 export is cached and is
    # also the file the in-browser mode downloads.
    with run_server(["--model", str(model)], port, log) as url:
        yield url


def test_served_studio_server_and_browser_modes_side_by_side(browser, small_server):
    context = browser.new_context(viewport={"width": 1280, "height": 820})
    tried = block_network(context)
    errors: list[str] = []
    results = {}
    for run, sync in (("server", SERVED_SYNC), ("browser", IN_SYNC)):
        page = context.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(small_server + ("/?run=browser" if run == "browser" else "/"))
        page.wait_for_function(sync, timeout=120000)
        assert page.locator("#run").input_value() == run
        ms = stroke_latencies(page, 20, sync)
        shown = page.evaluate("() => window.pix2pixStats.shown")[1:]
        cost = [e["forward_ms"] if run == "server" else e["inference_ms"] for e in shown]
        results[run] = (ms, cost)
        if run == "browser":
            # Served with COOP/COEP, the page is cross-origin isolated: WASM threads.
            assert page.evaluate("() => self.crossOriginIsolated")
            engine = page.locator("#engine")
            assert engine.get_attribute("data-ep") == "wasm" and int(engine.get_attribute("data-threads")) >= 2
            assert page.locator("#run-hint").is_hidden()
            # The page's output equals the server's answer for the same canvas, within 2/255
            # (both run the same fp32 ONNX file; ONNX Runtime Web vs Python ONNX Runtime).
            png = page.evaluate("() => document.getElementById('input').toDataURL('image/png')")
            import base64

            resp = httpx.post(small_server + "/api/translate", content=base64.b64decode(png.split(",", 1)[1]), timeout=30)
            want = np.asarray(Image.open(io.BytesIO(resp.content)).convert("RGB")).astype(int)
            got = output_pixels(page)[:, :, :3].astype(int)
            assert got.shape == want.shape and want.std() > 20
            assert np.abs(got - want).max() <= 2, np.abs(got - want).max()
        page.close()
    for run, (ms, cost) in results.items():
        what = "server forward" if run == "server" else "in-browser inference"
        print(f"\nunet_128/32 served, {run} mode: stroke-to-output {summary(ms)}; {what} median "
              f"{statistics.median(cost):.0f} ms")
    ms, forward = results["server"]
    # The report was 1033 ms beside a 12 ms forward (86x): stay far from that. The goal,
    # <= 2x the forward at training size, is measured in benchmarks/browser.py on an idle machine.
    assert statistics.median(ms) < 10 * statistics.median(forward) + 50
    assert not tried and not errors, (tried, errors)
    context.close()
