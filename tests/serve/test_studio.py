"""The studio in a real browser: Debian's Chromium, headless, driven by Playwright.

`make test` installs Chromium with apt-get when it is missing and we are root; these tests skip
only where that cannot happen (not root, or no apt-get), and say so.
"""
from __future__ import annotations

import base64
import json
import io

import httpx
import numpy as np
import pytest
from PIL import Image

from browser_support import SHOWN_OUTPUT, launch_browser
from browser_support import shown_output_pixels as output_pixels
from browser_support import stroke as browser_stroke

from .serve_support import PALETTE

CANVAS_PNG = "() => document.getElementById('input').toDataURL('image/png')"
# Page predicates are always functions: a bare expression string would be eval'ed in the page,
# which the studio's Content-Security-Policy (rightly) forbids.
IN_SYNC = "() => { " + SHOWN_OUTPUT + """
  const c = document.getElementById('input');
  return o.dataset.version === c.dataset.version && o.dataset.model === document.getElementById('model').value
    && !document.body.dataset.busy && ow === c.width && oh === c.height; }"""


@pytest.fixture(scope="module")
def browser():
    yield from launch_browser()


@pytest.fixture
def studio(browser, server):
    """A fresh page on the studio; records every request and console error."""
    context = browser.new_context(viewport={"width": 1280, "height": 820})
    page = context.new_page()
    page.requests, page.errors = [], []
    page.on("request", lambda r: page.requests.append(r.url))
    page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.goto(server + "/")
    page.wait_for_function("() => document.body.dataset.ready === '1'", timeout=20000)
    page.wait_for_function(IN_SYNC, timeout=20000)
    yield page
    # Offline: the page asked nothing of anyone but this server, and the CSP never fired.
    assert all(u.startswith(server) or u.startswith(("blob:", "data:")) for u in page.requests), page.requests
    assert not page.errors, page.errors
    context.close()


def canvas_png(page) -> bytes:
    return base64.b64decode(page.evaluate(CANVAS_PNG).split(",", 1)[1])


def api_translation(server: str, png: bytes, model: str) -> np.ndarray:
    resp = httpx.post(server + "/api/translate", params={"model": model}, content=png, timeout=30)
    assert resp.status_code == 200, resp.text
    return np.asarray(Image.open(io.BytesIO(resp.content)).convert("RGBA"))


def stroke(page, points, steps: int = 12) -> None:
    """Drag the mouse through ``points`` given as fractions of the canvas."""
    browser_stroke(page, points, steps)


def canvas_rgba(page) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(canvas_png(page))).convert("RGBA"))


def test_drawing_updates_the_output_to_the_apis_translation(studio, server, tmp_path):
    page = studio
    assert page.locator("#model option").all_inner_texts() == ["edges", "labels", "gray"]
    before = output_pixels(page)
    assert before.shape == (128, 128, 4)
    blank = canvas_rgba(page)
    assert (blank[:, :, :3] == 255).all()  # a sketch model starts on white

    stroke(page, [(0.15, 0.2), (0.85, 0.3), (0.5, 0.85)])
    page.locator("#size").fill("12")
    stroke(page, [(0.2, 0.8), (0.8, 0.75)])
    page.wait_for_function(IN_SYNC, timeout=20000)

    drawn = canvas_rgba(page)
    changed = (drawn[:, :, :3] != 255).any(axis=2)
    assert changed.mean() > 0.02  # the strokes are on the canvas
    assert set(map(tuple, drawn[changed][:, :3].tolist())) == {(0, 0, 0)}  # hard-edged, pure pen colour
    after = output_pixels(page)
    assert np.abs(after.astype(int) - before.astype(int)).mean() > 2  # the output followed
    # ... to exactly what the API answers for the same input.
    assert np.array_equal(after, api_translation(server, canvas_png(page), "edges"))
    assert page.locator("#latency").inner_text().endswith(")") and "ms" in page.locator("#latency").inner_text()
    assert page.locator("#download").get_attribute("aria-disabled") == "false"

    shot = tmp_path / "studio.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    print(f"\nscreenshot: {shot}")


def test_label_palette_fill_undo_redo_and_model_switch(studio, server):
    page = studio
    page.select_option("#model", "labels")
    page.wait_for_function(IN_SYNC, timeout=20000)
    swatches = page.locator(".swatch")
    colours = [s.get_attribute("data-colour") for s in swatches.all()]
    assert colours == ["#%02x%02x%02x" % tuple(c) for c in PALETTE]  # the model's label colours
    assert (canvas_rgba(page)[:, :, :3] == PALETTE[0]).all()  # background = the commonest label

    swatches.nth(2).click()  # red
    # Edge to edge (the pointer is captured, so the stroke may leave the canvas): top | bottom.
    stroke(page, [(0.005, 0.5), (1.1, 0.5)])
    one = canvas_rgba(page)
    assert (one[64, :, :3] == PALETTE[2]).all()

    swatches.nth(3).click()  # green
    page.click("#tool-fill")
    box = page.locator("#input").bounding_box()
    page.mouse.click(box["x"] + 0.5 * box["width"], box["y"] + 0.1 * box["height"])
    filled = canvas_rgba(page)
    assert (filled[5, :, :3] == PALETTE[3]).all() and (filled[120, 60, :3] == PALETTE[0]).all()
    labels = set(map(tuple, filled[:, :, :3].reshape(-1, 3).tolist()))
    assert labels <= set(map(tuple, PALETTE))  # nothing but label colours: no blended edges

    page.click("#undo")
    assert np.array_equal(canvas_rgba(page), one)
    page.keyboard.press("Control+Shift+Z")
    assert np.array_equal(canvas_rgba(page), filled)
    page.wait_for_function(IN_SYNC, timeout=20000)
    assert np.array_equal(output_pixels(page), api_translation(server, canvas_png(page), "labels"))

    page.select_option("#model", "edges")  # the drawing stays, the output is the other model's
    page.wait_for_function(IN_SYNC, timeout=20000)
    assert np.array_equal(canvas_rgba(page), filled)
    assert np.array_equal(output_pixels(page), api_translation(server, canvas_png(page), "edges"))

    page.click("#clear")
    assert (canvas_rgba(page)[:, :, :3] == 255).all()  # edges' background is white


def test_opened_image_is_translated_at_its_own_size(studio, server, tmp_path):
    page = studio
    rng = np.random.default_rng(0)
    img = np.kron(rng.integers(0, 256, (10, 25, 3), dtype=np.uint8), np.ones((8, 8, 1), np.uint8))
    path = tmp_path / "upload.png"
    Image.fromarray(img).save(path)
    page.set_input_files("#upload", str(path))
    page.wait_for_function("() => document.getElementById('input').width === 200", timeout=10000)
    page.wait_for_function(IN_SYNC, timeout=20000)
    assert np.array_equal(canvas_rgba(page)[:, :, :3], img)
    out = output_pixels(page)
    assert out.shape == (80, 200, 4)
    assert np.array_equal(out, api_translation(server, canvas_png(page), "edges"))


def test_tablet_layout_and_offline_docs(browser, server, tmp_path):
    context = browser.new_context(viewport={"width": 768, "height": 1024}, has_touch=True)
    page = context.new_page()
    urls = []
    page.on("request", lambda r: urls.append(r.url))
    page.goto(server + "/")
    page.wait_for_function("() => document.body.dataset.ready === '1'", timeout=20000)
    page.wait_for_function(IN_SYNC, timeout=20000)
    # Input and output both wholly on screen, side by side, big enough to draw on with a finger.
    canvas = page.locator("#input").bounding_box()
    out = page.locator("#output:visible, #output-canvas:visible").bounding_box()  # whichever shows it
    for box in (canvas, out):
        assert box["x"] >= 0 and box["x"] + box["width"] <= 768 and box["width"] >= 300
        assert box["y"] >= 0 and box["y"] + box["height"] <= 1024
    assert out["x"] >= canvas["x"] + canvas["width"]
    for button in page.locator(".toolbar button").all():
        assert button.bounding_box()["height"] >= 40  # big enough for a finger
    # A finger drag draws too: real touch input through the DevTools protocol, as a tablet sends it.
    cdp = context.new_cdp_session(page)
    cx, cy = canvas["x"] + canvas["width"] / 2, canvas["y"] + canvas["height"] / 2
    for kind, dx in (("touchStart", 0), ("touchMove", 30), ("touchMove", 60), ("touchEnd", 60)):
        points = [] if kind == "touchEnd" else [{"x": cx + dx, "y": cy}]
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})
    page.wait_for_function(IN_SYNC, timeout=20000)
    drawn = canvas_rgba(page)
    assert (drawn[64, 64:80, :3] == 0).all()  # a black line where the finger went
    assert int(page.evaluate("document.getElementById('input').dataset.version")) >= 2
    page.screenshot(path=str(tmp_path / "studio-tablet.png"))

    page.goto(server + "/docs")
    page.wait_for_selector(".swagger-ui .info .title", timeout=20000)
    assert "pix2pix" in page.locator(".swagger-ui .info .title").inner_text()
    page.get_by_text("/api/translate").first.wait_for(timeout=10000)
    assert all(u.startswith(server) or u.startswith(("blob:", "data:")) for u in urls), urls
    context.close()


def test_strokes_are_answered_over_the_live_socket(studio, server):
    """Served studio: every edit goes over /api/live (no POST per edit), and what it shows is the
    API's translation of the canvas."""
    page = studio
    assert page.evaluate("() => window.pix2pixStats.transport") == "websocket"
    posts = [u for u in page.requests if "/api/translate" in u]
    for k in range(3):
        stroke(page, [(0.1 + 0.2 * k, 0.2), (0.3 + 0.2 * k, 0.8)], steps=10)
    page.wait_for_function(IN_SYNC, timeout=20000)
    shown = page.evaluate("() => window.pix2pixStats.shown")
    assert shown[-1]["transport"] == "websocket" and shown[-1]["forward_ms"] > 0
    assert shown[-1]["version"] == int(page.evaluate("() => document.getElementById('input').dataset.version"))
    assert [u for u in page.requests if "/api/translate" in u] == posts
    assert np.array_equal(output_pixels(page), api_translation(server, canvas_png(page), "edges"))


def test_without_the_socket_each_edit_is_a_request(browser, server):
    page = browser.new_page()
    page.goto(server + "/?transport=http")
    page.wait_for_function("() => document.body.dataset.ready === '1'", timeout=20000)
    stroke(page, [(0.2, 0.5), (0.8, 0.5)])
    page.wait_for_function(IN_SYNC, timeout=20000)
    assert page.evaluate("() => window.pix2pixStats.transport") == "http"
    assert page.evaluate("() => window.pix2pixStats.shown.at(-1).transport") == "http"
    assert np.array_equal(output_pixels(page), api_translation(server, canvas_png(page), "edges"))
    page.close()


@pytest.mark.parametrize("query, raw", [("/", True), ("/?live=png", False)])
def test_the_studio_sends_its_canvas_raw_over_the_socket(browser, server, query, raw):
    """Each edit on the socket is the canvas's raw RGBA (no PNG built in the page nor decoded on the
    server); `?live=png` sends PNG messages instead. Either way the output is the API's answer."""
    page = browser.new_page(viewport={"width": 1280, "height": 820})
    sent: list[bytes] = []
    page.on("websocket", lambda ws: ws.on("framesent", lambda payload: sent.append(
        payload if isinstance(payload, bytes) else payload.encode())))
    page.goto(server + query)
    page.wait_for_function("() => document.body.dataset.ready === '1'", timeout=20000)
    stroke(page, [(0.2, 0.3), (0.7, 0.6)])
    page.wait_for_function(IN_SYNC, timeout=20000)
    assert sent
    head, _, body = sent[-1].partition(b"\n")
    head = json.loads(head)
    w, h = page.evaluate("() => [document.getElementById('input').width, document.getElementById('input').height]")
    if raw:
        assert head["rgba"] == [w, h] and len(body) == w * h * 4
        assert np.array_equal(np.frombuffer(body, np.uint8).reshape(h, w, 4)[:, :, :3],
                              np.asarray(Image.open(io.BytesIO(canvas_png(page))).convert("RGB")))
    else:
        assert "rgba" not in head and body.startswith(b"\x89PNG")
    assert np.array_equal(output_pixels(page), api_translation(server, canvas_png(page), "edges"))
    steps = page.evaluate("() => window.pix2pixStats.shown.at(-1).steps")
    assert {"network", "server_wait", "forward", "show"} <= set(steps)
    page.close()


def test_the_answers_come_back_raw_onto_the_canvas_and_png_shows_the_same(browser, server):
    """The default studio asks for raw RGBA answers on the socket ("reply": "rgba") and puts them
    on the output canvas, with no PNG to decode; `?live=png` gets PNG answers, shown in the <img>.
    The same stroke shows the same pixels both ways (the API's translation of the canvas), and the
    Download link gives the shown output as a PNG."""
    shown = {}
    for query, raw in (("/", True), ("/?live=png", False)):
        page = browser.new_page(viewport={"width": 1280, "height": 820})
        sent, got, errors = [], [], []
        page.on("websocket", lambda ws: (ws.on("framesent", lambda m: sent.append(m)),
                                         ws.on("framereceived", lambda m: got.append(m))))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(server + query)
        page.wait_for_function("() => document.body.dataset.ready === '1'", timeout=20000)
        stroke(page, [(0.25, 0.2), (0.6, 0.8)])
        page.wait_for_function(IN_SYNC, timeout=20000)
        out = output_pixels(page)
        w, h = page.evaluate("() => [document.getElementById('input').width, document.getElementById('input').height]")
        seq = int(page.evaluate("() => { " + SHOWN_OUTPUT + " return o.dataset.seq; }"))
        answers = {json.loads(a.partition(b"\n")[0])["seq"]: a.partition(b"\n")[::2] for a in got if isinstance(a, bytes)}
        head, body = answers[seq]  # the answer the page shows
        head = json.loads(head)
        asked = json.loads(sent[-1].partition(b"\n")[0])
        if raw:
            assert asked["reply"] == "rgba" and head["rgba"] == [w, h] and len(body) == w * h * 4
            assert np.array_equal(np.frombuffer(body, np.uint8).reshape(h, w, 4), out)  # put as it came
            assert page.locator("#output-canvas").is_visible() and page.locator("#output").is_hidden()
        else:
            assert "reply" not in asked and "rgba" not in head and body.startswith(b"\x89PNG")
            assert np.array_equal(np.asarray(Image.open(io.BytesIO(body)).convert("RGBA")), out)
            assert page.locator("#output").is_visible() and page.locator("#output-canvas").is_hidden()
        assert np.array_equal(out, api_translation(server, canvas_png(page), "edges"))
        steps = page.evaluate("() => window.pix2pixStats.shown.at(-1).steps")
        assert {"network", "forward", "show"} <= set(steps) and steps["show"] >= 0
        with page.expect_download() as download:
            page.locator("#download").click()
        assert download.value.suggested_filename == "pix2pix-edges.png"
        saved = Image.open(download.value.path())
        assert saved.format == "PNG" and np.array_equal(np.asarray(saved.convert("RGBA")), out)
        shown[query] = (canvas_rgba(page), out)
        assert not errors, errors
        page.close()
    assert np.array_equal(shown["/"][0], shown["/?live=png"][0])  # the same stroke, the same canvas,
    assert np.array_equal(shown["/"][1], shown["/?live=png"][1])  # the same output shown
