"""`pix2pix export --web`: the exported page in real Chromium (Playwright), opened from file://
with the network blocked, checked against Python ONNX Runtime on the same model file."""
from __future__ import annotations

import base64
import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from PIL import Image

from pix2pix.export.stages import MIN_STAGES
from pix2pix.export.web import read_model_bytes

from .web_support import (FAILED, IN_SYNC, block_network, canvas_pixels, export, lively_model,
                          ort_reference, output_pixels, stroke, stroke_latencies, summary)

# fp16 weights and compute against fp32 on the same input, in 8-bit output levels: the documented
# tolerance of the default export (docs/studio.md, "The studio in the browser"). Measured: max 1, mean 0.07 levels.
FP16_MAX_LEVELS, FP16_MEAN_LEVELS = 4, 0.5


@pytest.fixture(scope="module")
def exported(tmp_path_factory, lively_model_dir):
    root = tmp_path_factory.mktemp("web")
    return {"fp16": export(lively_model_dir, root / "fp16"), "fp32": export(lively_model_dir, root / "fp32", fp32=True)}


def open_page(browser, folder):
    context = browser.new_context(viewport={"width": 1280, "height": 820})
    tried = block_network(context)
    page = context.new_page()
    page.requests, page.errors = [], []
    page.on("request", lambda r: page.requests.append(r.url))
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
    page.goto((folder / "index.html").as_uri())
    return context, page, tried


def test_exported_page_runs_offline_from_disk_and_follows_each_edit(browser, exported):
    report = exported["fp16"]
    assert report.precision == "fp16" and report.max_abs_diff < 2e-2
    assert report.folder_mb < 1.45 * (report.model_mb + report.runtime_mb) + 0.2  # base64 + page
    context, page, tried = open_page(browser, report.folder)
    page.wait_for_function(IN_SYNC, timeout=60000)
    assert page.locator("#engine").get_attribute("data-ep") == "wasm"
    # From a file the page is not cross-origin isolated: one thread, and it says how to get more.
    assert page.locator("#engine").get_attribute("data-threads") == "1"
    hint = page.locator("#run-hint").inner_text()
    assert "python -m http.server" in hint and "Cross-Origin-Embedder-Policy: require-corp" in hint
    assert page.locator("[data-served-only]").first.is_hidden()  # no Run menu, no API docs link
    previous = output_pixels(page)
    for points in ([(0.1, 0.2), (0.9, 0.3)], [(0.5, 0.1), (0.4, 0.9)], [(0.2, 0.8), (0.8, 0.8)]):
        stroke(page, points)
        page.wait_for_function(IN_SYNC, timeout=30000)
        now = output_pixels(page)
        assert np.abs(now.astype(int) - previous.astype(int)).mean() > 0.5  # the output followed
        previous = now
    latency = page.locator("#latency").inner_text()
    assert "ms" in latency and "inference" in latency
    assert page.locator("#download").get_attribute("aria-disabled") == "false"
    assert not tried and not page.errors, (tried, page.errors)
    assert all(u.startswith(("file:", "blob:", "data:")) for u in page.requests), page.requests
    context.close()


def open_image(page, path) -> None:
    page.set_input_files("#upload", str(path))
    # The file is read asynchronously: first the canvas takes the image's size, then its output is
    # waited for (the page is in sync with the canvas it showed before the upload, too).
    w, h = Image.open(path).size
    page.wait_for_function(f"() => {{ const c = document.getElementById('input'); "
                           f"return c.width === {w} && c.height === {h}; }}", timeout=30000)
    page.wait_for_function(IN_SYNC, timeout=30000)


def test_page_output_matches_python_onnxruntime_on_the_same_file(browser, exported, tmp_path):
    rng = np.random.default_rng(3)
    img = np.kron(rng.integers(0, 256, (16, 32, 3), dtype=np.uint8), np.ones((8, 8, 1), np.uint8))  # 128x256
    path = tmp_path / "input.png"
    Image.fromarray(img).save(path)
    outputs = {}
    for kind in ("fp16", "fp32"):
        folder = exported[kind].folder
        context, page, _ = open_page(browser, folder)
        page.wait_for_function("() => document.body.dataset.ready === '1'", timeout=60000)
        open_image(page, path)
        got = output_pixels(page)
        assert got.shape == (128, 256, 4) and (got[:, :, 3] == 255).all()
        want = ort_reference(read_model_bytes(folder), img)
        diff = np.abs(got[:, :, :3].astype(int) - want.astype(int))
        print(f"\n{kind}: page vs Python ONNX Runtime, same file: max {diff.max()}/255, mean {diff.mean():.3f}")
        assert diff.max() <= 2, diff.max()
        assert want.std() > 20  # a lively output: equality would not be trivially true
        outputs[kind] = got[:, :, :3].astype(int)
        context.close()
    d = np.abs(outputs["fp16"] - outputs["fp32"])
    print(f"fp16 vs fp32 export, in the page: max {d.max()}/255, mean {d.mean():.3f}")
    assert d.max() <= FP16_MAX_LEVELS and d.mean() <= FP16_MEAN_LEVELS
    assert json.loads((exported["fp16"].folder / "config.json").read_text())["precision"] == "fp16"


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_pen_up_drops_the_stale_run_and_shows_the_strokes_last_edit(browser, exported, tmp_path, precision):
    """The page runs its model in stages (pix2pix.export.stages). Pen-up while the run for the
    stroke's first edit is in flight preempts that run between two stages; what is shown is the
    translation of the canvas as the stroke left it (Python ONNX Runtime on the same file). The
    float16 page also holds the stages joined (export.web.WHOLE), which the last edit runs on."""
    folder = exported[precision].folder
    stages = (folder / "model.onnx.js").read_text().count('["model.onnx#')
    assert stages >= MIN_STAGES  # as many as its work calls for (export.stages.stage_count)
    img = np.kron(np.random.default_rng(5).integers(0, 256, (96, 96, 3), dtype=np.uint8), np.ones((8, 8, 1), np.uint8))
    Image.fromarray(img).save(tmp_path / "big.png")  # 768²: a run lasts well beyond the stroke's end
    context, page, _ = open_page(browser, folder)
    page.wait_for_function("() => document.body.dataset.ready === '1'", timeout=60000)
    open_image(page, tmp_path / "big.png")
    info = page.evaluate("() => window.pix2pixEngine.info()")
    assert info["stages"] == stages and info["whole"] == (precision == "fp16")
    box = page.locator("#input").bounding_box()
    at = lambda fx, fy: (box["x"] + fx * box["width"], box["y"] + fy * box["height"])  # noqa: E731
    # On a loaded machine the test's own mouse events can arrive after the stale run has already
    # finished (then there is nothing to preempt): up to three strokes, one of which must preempt.
    for attempt in range(3):
        runs = page.evaluate("() => window.pix2pixStats.runs")
        page.mouse.move(*at(0.2, 0.2 + 0.1 * attempt))
        page.mouse.down()
        page.wait_for_function(f"() => window.pix2pixStats.runs > {runs}")  # the first edit's run started
        page.mouse.move(*at(0.8, 0.7 - 0.1 * attempt), steps=2)  # edits made while it runs
        page.mouse.up()  # the stroke's end: its last edit preempts the stale run
        page.wait_for_function(IN_SYNC, timeout=60000)
        stats = page.evaluate("() => window.pix2pixStats")
        if stats["preempted"]:
            break
    assert stats["preempted"] >= 1 and stats["runs"] - runs >= 2
    canvas = canvas_pixels(page, "input")[:, :, :3]
    assert (canvas != img).any()  # the stroke is on the canvas
    want = ort_reference(read_model_bytes(folder), canvas)
    diff = np.abs(output_pixels(page)[:, :, :3].astype(int) - want.astype(int))
    assert diff.max() <= 2, diff.max()
    last = stats["shown"][-1]
    assert set(last["steps"]) == {"wait", "to_worker", "prepare", "inference", "finish", "from_worker", "draw"}
    assert abs(sum(last["steps"].values()) - last["stroke_to_output_ms"]) < 5  # the steps add up to it
    context.close()


def test_config_json_is_the_servers_description_plus_the_runtime_it_holds(exported, lively_model_dir):
    """One description of a model: config.json = the /api/models entry (ModelDescription) + the
    export's facts + the flavours the folder holds (the page reads them from here, not from JS)."""
    from pix2pix.export.web_runtime import FLAVOURS, VERSION
    from pix2pix.inference.description import describe
    from pix2pix.inference.translator import Translator

    config = json.loads((exported["fp32"].folder / "config.json").read_text())
    t = Translator.from_pretrained(lively_model_dir, device="cpu")
    assert config == {"format": "pix2pix-web", "format_version": 1,
                      **describe(t, lively_model_dir.name).to_dict(), "precision": "fp32",
                      "onnxruntime_web": VERSION, "flavours": {"wasm": list(FLAVOURS["wasm"])},
                      "examples": []}  # this model folder holds no held-out examples
    web_js = (exported["fp32"].folder / "web.js").read_text()
    assert json.loads(web_js.split("self.PIX2PIX_WEB = ", 1)[1].rstrip().rstrip(";"))["config"] == config


def _with_model(src, dst, model_bytes: bytes):
    import shutil

    shutil.copytree(src, dst)
    (dst / "model.onnx.js").write_text('self.PIX2PIX_FILES = self.PIX2PIX_FILES || {};\n'
                                       f'self.PIX2PIX_FILES["model.onnx"] = "{base64.b64encode(model_bytes).decode()}";\n')
    return dst


def rank3_model() -> bytes:
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [3, "h", "w"])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, [3, "h", "w"])
    graph = helper.make_graph([helper.make_node("Identity", ["input"], ["output"])], "rank3", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10  # what ONNX Runtime Web 1.30 reads
    return model.SerializeToString()


@pytest.mark.parametrize("case", ["corrupt", "rank3"])
def test_a_model_that_cannot_load_shows_a_readable_error(browser, exported, tmp_path, case):
    good = read_model_bytes(exported["fp32"].folder)
    bad = good[: len(good) // 3] if case == "corrupt" else rank3_model()
    folder = _with_model(exported["fp32"].folder, tmp_path / case, bad)
    context, page, _ = open_page(browser, folder)
    page.wait_for_function(FAILED, timeout=60000)
    text = page.locator("#status").inner_text()
    print(f"\n{case}: {text}")
    assert text.startswith("Cannot run model in this browser:")
    if case == "rank3":
        assert "rank 3" in text and "re-export" in text
    else:
        assert "cannot load the model file (corrupt, truncated or not ONNX?)" in text
    assert page.locator("#engine").inner_text() == "in browser: no model"
    assert page.locator("#output-canvas").is_hidden()  # no blank canvas posing as a result
    context.close()


def test_stroke_to_output_latency_small_model(browser, tmp_path):
    """unet_128, 32 base channels (the `make demo` model), exported fp16, opened from disk."""
    report = export(lively_model(tmp_path / "unet128-32", "unet_128", 32, 128), tmp_path / "page")
    context, page, _ = open_page(browser, report.folder)
    page.wait_for_function(IN_SYNC, timeout=60000)
    ms = stroke_latencies(page, 20)
    inference = [e["inference_ms"] for e in page.evaluate("() => window.pix2pixStats.shown")[1:]]
    print(f"\nunet_128/32 fp16 ({report.folder_mb:.1f} MB folder), file://, wasm 1 thread: stroke-to-output "
          f"{summary(ms)}; inference median {np.median(inference):.0f} ms")
    assert np.median(ms) < 2000  # a broken coalescing rule (queued strokes) would blow past this
    want = ort_reference(read_model_bytes(report.folder), canvas_pixels(page, "input")[:, :, :3])
    diff = np.abs(output_pixels(page)[:, :, :3].astype(int) - want.astype(int))
    assert diff.max() <= 2, diff.max()  # the page's stages compute what Python ONNX Runtime does
    context.close()


def test_served_by_a_plain_static_server_the_page_gets_wasm_threads(browser, exported):
    """`python -m http.server -d DIR` sends no COOP/COEP; the page's service worker adds them."""
    import subprocess
    import sys

    from serve.serve_support import free_port  # tests/serve, on sys.path as `serve`

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", "-d", str(exported["fp16"].folder),
                             "--bind", "127.0.0.1", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        context = browser.new_context(viewport={"width": 1280, "height": 820})
        tried = block_network(context)
        page = context.new_page()
        for _ in range(50):
            try:
                page.goto(f"http://127.0.0.1:{port}/")
                break
            except Exception:  # noqa: BLE001 - the server is still starting
                page.wait_for_timeout(100)
        # The first load registers the worker and reloads once; wait for the isolated document.
        page.wait_for_function("() => self.crossOriginIsolated", timeout=60000)
        page.wait_for_function(IN_SYNC, timeout=60000)
        assert page.evaluate("() => self.crossOriginIsolated")
        assert int(page.locator("#engine").get_attribute("data-threads")) >= 2
        assert page.locator("#run-hint").is_hidden()
        stroke(page, [(0.2, 0.2), (0.8, 0.7)])
        page.wait_for_function(IN_SYNC, timeout=30000)
        assert not tried
        context.close()
    finally:
        proc.terminate()
        proc.wait()
