"""The studio opens on the model's own held-out examples (export.examples), in real Chromium: the
exported page's first output equals `pix2pix translate` of the stored example, the picker switches,
a photo model paints over its photo with the photo's colours, no stray borders at any zoom, and
the served studio opens on the same examples."""
from __future__ import annotations

import io
import json

import httpx
import numpy as np
import pytest
from PIL import Image

from browser_support import SERVED_SYNC, shown_output_pixels

from pix2pix.export.examples import ExampleInput, held_out_inputs, read_index, stored

from .web_support import IN_SYNC, block_network, canvas_pixels, export, lively_model, output_pixels, stroke

SWATCHES = "() => [...document.querySelectorAll('#palette .swatch')].map((b) => b.dataset.colour)"


def input_pixels(page) -> np.ndarray:
    return canvas_pixels(page, "input")


def set_size(page, px: int) -> None:
    page.evaluate(f"() => {{ const s = document.getElementById('size'); s.value = '{px}'; "
                  "s.dispatchEvent(new Event('input')); }")


def rgb(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def hex_rgb(h: str) -> list[int]:
    return [int(h[i:i + 2], 16) for i in (1, 3, 5)]


# builtin_page: tests/web/conftest.py (shared with test_webgpu).


def open_page(browser, folder, **context_args):
    context = browser.new_context(viewport={"width": 1280, "height": 820}, **context_args)
    tried = block_network(context)
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
    page.goto((folder / "index.html").as_uri())
    page.wait_for_function(IN_SYNC, timeout=60000)
    return context, page, tried


def test_the_stored_reference_is_what_pix2pix_translate_writes(builtin_page, tmp_path):
    from pix2pix.cli import main

    entry = read_index(builtin_page.folder / "examples")[0]
    assert main(["translate", str(builtin_page.folder / "examples" / entry["input"]), "--model",
                 str(_builtin()), "--out", str(tmp_path),
                 "--backend", "eager"]) == 0
    made = next(p for p in tmp_path.iterdir() if p.suffix == ".png")
    assert np.array_equal(rgb(made), rgb(builtin_page.folder / "examples" / entry["output"]))


def _builtin():
    from pix2pix.builtin import builtin_model_dir

    return builtin_model_dir()


def test_builtin_page_opens_on_a_painted_example_equal_to_translate(browser, builtin_page):
    folder = builtin_page.folder
    entries = read_index(folder / "examples")
    assert len(entries) >= 2
    config = json.loads((folder / "config.json").read_text())
    context, page, tried = open_page(browser, folder)
    # This Chromium has no GPU: the page (WASM and WebGPU flavours) runs on WASM.
    assert page.locator("#engine").get_attribute("data-ep") == "wasm", page.locator("#engine").inner_text()
    # The canvas holds the first stored example, byte for byte (a painted label map).
    assert page.locator("#input").get_attribute("data-example") == entries[0]["name"]
    assert np.array_equal(input_pixels(page)[:, :, :3].astype(int), rgb(folder / "examples" / entries[0]["input"]))
    # The label palette stays the model's own.
    assert [hex_rgb(h) for h in page.evaluate(SWATCHES)] == config["palette"]
    for i, entry in enumerate(entries[:2]):
        if i:
            page.locator(f".example[data-example='{entry['name']}']").click()
            page.wait_for_function(IN_SYNC, timeout=30000)
            assert page.locator(f".example[data-example='{entry['name']}']").get_attribute("aria-selected") == "true"
        got = output_pixels(page)[:, :, :3].astype(int)
        want = rgb(folder / "examples" / entry["output"])
        diff = np.abs(got - want)
        print(f"\n{entry['name']}: page (fp16 weights, WASM) vs pix2pix translate: max {diff.max()}/255, mean {diff.mean():.3f}")
        assert diff.max() <= 2 and want.std() > 10
    assert not page.locator("#undo").is_disabled()  # picking an example is undoable
    assert not tried and not page.errors, (tried, page.errors)
    context.close()


# Snapped: the #input canvas covers whole device pixels, so every device pixel it paints is a
# palette colour; a fractional edge would blend the map with the page behind it (a stray border).
STRAY = """() => { const r = document.getElementById('input').getBoundingClientRect();
  return [r.left, r.top, r.right, r.bottom]; }"""


@pytest.mark.parametrize("zoom", [1.25, 1.75])
def test_no_stray_border_around_the_canvas_at_fractional_zoom(browser, builtin_page, zoom):
    palette = np.array(json.loads((builtin_page.folder / "config.json").read_text())["palette"])
    context, page, _ = open_page(browser, builtin_page.folder, device_scale_factor=zoom)
    for width in (1280, 555):
        page.set_viewport_size({"width": width, "height": 820})
        page.wait_for_timeout(100)  # two frames: the layout observer re-snaps
        left, top, right, bottom = (v * zoom for v in page.evaluate(STRAY))
        assert all(abs(v - round(v)) < 0.05 for v in (left, top, right, bottom)), (left, top, right, bottom)
        shot = np.asarray(Image.open(io.BytesIO(page.screenshot(full_page=True))).convert("RGB")).astype(int)
        region = shot[round(top):round(bottom), round(left):round(right)]
        foreign = ~(np.abs(region[:, :, None] - palette[None, None]).sum(-1) == 0).any(-1)
        assert region.size and not foreign.any(), f"{foreign.sum()} blended pixels at zoom {zoom}, width {width}"
    context.close()


def photo(size: int = 128) -> np.ndarray:
    """A photo-like (size, size, 3) float image: smooth gradients and a few flat blobs."""
    y, x = np.mgrid[0:size, 0:size] / size
    img = np.stack([0.2 + 0.6 * x, 0.3 + 0.5 * y, 0.5 + 0.3 * np.sin(6 * x * y)], axis=2)
    for cx, cy, r, c in ((0.3, 0.3, 0.15, (0.9, 0.2, 0.1)), (0.7, 0.6, 0.2, (0.1, 0.4, 0.8))):
        img[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = c
    return img.astype(np.float32)


def test_photo_model_paints_over_its_example_with_the_photos_colours(browser, tmp_path):
    from pix2pix.export.web import export_web
    from pix2pix.inference.translator import Translator

    model = lively_model(tmp_path / "photo-model", "unet_128", 8, 128)
    t = Translator.from_pretrained(model, device="cpu")
    report = export_web(t, tmp_path / "page", source=model, name="photo", webgpu=False,
                        examples=[ExampleInput("street", photo(), "a test photo")])
    context, page, _ = open_page(browser, report.folder)
    original = input_pixels(page).copy()
    assert np.array_equal(original[:, :, :3].astype(int), rgb(report.folder / "examples" / "street.png"))
    got = output_pixels(page)[:, :, :3].astype(int)
    assert np.abs(got - rgb(report.folder / "examples" / "street.out.png")).max() <= 2
    # The palette offers the photo's colours (its two flat blobs among them), not the sketch pens.
    swatches = np.array([hex_rgb(h) for h in page.evaluate(SWATCHES)])
    pixels = original[:, :, :3].reshape(-1, 3).astype(int)
    assert len(swatches) >= 5
    assert all(np.abs(pixels - s).sum(1).min() <= 24 for s in swatches)
    for blob in ((230, 51, 26), (26, 102, 204)):
        assert np.abs(swatches - blob).sum(1).min() <= 6, blob
    # A pen stroke paints over the photo; the eraser along the same path brings the photo back.
    page.locator("#palette .swatch").nth(1).click()
    set_size(page, 12)
    stroke(page, [(0.2, 0.5), (0.8, 0.5)])
    page.wait_for_function(IN_SYNC, timeout=30000)
    painted = input_pixels(page)
    assert (painted != original).any(axis=2).sum() > 500
    page.locator("#tool-eraser").click()
    set_size(page, 20)
    stroke(page, [(0.2, 0.5), (0.8, 0.5)])
    page.wait_for_function(IN_SYNC, timeout=30000)
    assert np.array_equal(input_pixels(page), original)
    assert not page.errors, page.errors
    context.close()


def test_held_out_inputs_come_from_the_runs_test_split(tmp_path):
    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    for split, n in (("train", 3), ("test", 6)):
        (data / split).mkdir(parents=True)
        for i in range(n):
            a = np.full((16, 16, 3), 40 * i, np.uint8)
            b = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
            Image.fromarray(np.concatenate([a, b], axis=1)).save(data / split / f"{split}{i}.png")
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "latest.json").write_text("{}")
    for direction in ("AtoB", "BtoA"):
        (run / "config.json").write_text(json.dumps({"data": {"root": str(data), "direction": direction}}))
        picked = held_out_inputs(run / "checkpoints", count=4)
        assert [p.name for p in picked] == ["test-test0", "test-test2", "test-test3", "test-test5"]
        first = (picked[0].image * 255 + 0.5).astype(np.uint8)
        want = np.asarray(Image.open(data / "test" / "test0.png"))[:, :16] if direction == "AtoB" else \
            np.asarray(Image.open(data / "test" / "test0.png"))[:, 16:]
        assert np.array_equal(first, want)
    assert held_out_inputs(tmp_path / "data") == []  # not a run: no examples, a blank canvas
    # Examples stored in the run are found from any of its checkpoints too.
    (run / "examples").mkdir()
    (run / "examples" / "examples.json").write_text('{"examples": []}')
    assert stored(run / "checkpoints") == run / "examples"
    # An index naming a missing file or a path out of the folder lists only the good entries.
    ex = tmp_path / "model" / "examples"
    ex.mkdir(parents=True)
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(ex / "ok.png")
    (ex / "examples.json").write_text(json.dumps({"examples": [
        {"name": "ok", "input": "ok.png", "output": "gone.png"}, {"name": "bad", "input": "../secret.png"},
        {"name": "missing", "input": "missing.png"}]}))
    assert stored(tmp_path / "model") == ex
    assert read_index(ex) == [{"name": "ok", "input": "ok.png", "output": None, "source": ""}]


def test_served_studio_opens_on_the_models_examples(browser, tmp_path):
    from serve.serve_support import free_port, run_server  # tests/serve, on sys.path as `serve`

    builtin = _builtin()
    entries = read_index(builtin / "examples")
    with run_server(["--model", f"relief={builtin}", "--backend", "eager"], free_port(), tmp_path / "server.log") as url:
        listed = httpx.get(f"{url}/api/models/relief/examples").json()["examples"]
        assert listed == entries
        png = httpx.get(f"{url}/api/models/relief/examples/{entries[0]['input']}")
        assert png.status_code == 200 and png.content == (builtin / "examples" / entries[0]["input"]).read_bytes()
        for bad in ("..%2Fconfig.json", "generator.safetensors", "nothing.png"):
            r = httpx.get(f"{url}/api/models/relief/examples/{bad}")
            assert r.status_code == 404 and r.headers["content-type"] == "application/json", (bad, r.text)
        assert httpx.get(f"{url}/api/models/nope/examples").status_code == 404
        context = browser.new_context(viewport={"width": 1280, "height": 820})
        tried = block_network(context)
        page = context.new_page()
        page.goto(url + "/")
        page.wait_for_function(SERVED_SYNC, timeout=60000)
        assert page.locator("#input").get_attribute("data-example") == entries[0]["name"]
        got = shown_output_pixels(page)[:, :, :3].astype(int)
        diff = np.abs(got - rgb(builtin / "examples" / entries[0]["output"]))
        print(f"\nserved studio's first output vs pix2pix translate: max {diff.max()}/255")
        assert diff.max() <= 2
        assert page.locator(".example").count() == len(entries)
        assert not tried
        context.close()
