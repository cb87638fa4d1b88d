"""Serving beyond loopback asks for an access token: real `pix2pix serve` processes on 0.0.0.0
(reached through 127.0.0.1), every route, the WebSocket and the studio page in Chromium."""
from __future__ import annotations

import json
import re

import httpx
import pytest
import websockets.exceptions
from websockets.sync.client import connect

from browser_support import SHOWN_OUTPUT, launch_browser
from browser_support import stroke as browser_stroke

from .serve_support import free_port, png_bytes, random_image, run_server

TOKEN = "studio-network-token_0123456789"
# Every kind of route: the page, its scripts, the API (GET and POST), the docs, the health check.
ROUTES = [("GET", "/"), ("GET", "/static/studio.js"), ("GET", "/api/models"), ("GET", "/health"),
          ("GET", "/docs"), ("GET", "/openapi.json"), ("POST", "/api/translate")]
IN_SYNC = "() => { " + SHOWN_OUTPUT + """
  const c = document.getElementById('input');
  return o.dataset.version === c.dataset.version && !document.body.dataset.busy && ow === c.width; }"""


@pytest.fixture(scope="module")
def tokened(model_dirs, tmp_path_factory):
    """A server on every interface with --token."""
    port = free_port()
    log = tmp_path_factory.mktemp("auth") / "server.log"
    args = ["--host", "0.0.0.0", "--model", f"edges={model_dirs['edges']}", "--backend", "eager",
            "--token", TOKEN]
    with run_server(args, port, log, up=(401,)) as url:
        yield url, log


def request(url: str, method: str, path: str, **kw) -> httpx.Response:
    body = png_bytes(random_image(64, 64, seed=1)) if method == "POST" else None
    return httpx.request(method, url + path, content=body, timeout=30, **kw)


def assert_refused(resp: httpx.Response, why: str) -> None:
    assert resp.status_code == 401, (resp.status_code, resp.text)
    body = resp.json()
    assert set(body) == {"error", "detail"} and body["error"] == "unauthorized"  # the documented shape
    assert why in body["detail"]
    assert resp.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("method,path", ROUTES)
def test_every_route_asks_for_the_token(tokened, method, path):
    url, _ = tokened
    assert_refused(request(url, method, path), "asks for an access token")
    assert_refused(request(url, method, path, headers={"Authorization": "Bearer " + TOKEN[:-1] + "X"}), "wrong")
    assert_refused(request(url, method, path, params={"token": "nope"}), "wrong")
    assert_refused(request(url, method, path, cookies={f"pix2pix_token_{url.rsplit(':', 1)[1]}": "nope"}), "wrong")
    assert request(url, method, path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    by_link = request(url, method, path, params={"token": TOKEN})
    assert by_link.status_code == 200
    # The link's token is kept in a cookie for the page's own requests, which then need nothing else.
    cookie = by_link.cookies.get(f"pix2pix_token_{url.rsplit(':', 1)[1]}")
    assert cookie == TOKEN and "HttpOnly" in by_link.headers["set-cookie"]
    assert request(url, method, path, cookies={f"pix2pix_token_{url.rsplit(':', 1)[1]}": TOKEN}).status_code == 200


def test_the_websocket_asks_for_the_token(tokened):
    url, _ = tokened
    ws_url = url.replace("http://", "ws://") + "/api/live"
    for extra in ({}, {"additional_headers": {"Authorization": "Bearer wrong"}}):
        with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
            connect(ws_url, **extra).close()
        assert refused.value.response.status_code == 401
        assert json.loads(refused.value.response.body)["error"] == "unauthorized"
    with connect(ws_url, additional_headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
        ws.send(b'{"seq": 1}\n' + png_bytes(random_image(64, 64, seed=2)))
        answer = ws.recv(timeout=60)
    assert isinstance(answer, bytes) and json.loads(answer.split(b"\n", 1)[0])["seq"] == 1


def test_the_studio_opened_from_the_tokened_link_works(tokened):
    """The page, its scripts, /api/models and the live socket all pass with the link's token."""
    url, _ = tokened
    for browser in launch_browser():
        page = browser.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{url}/?token={TOKEN}")
        page.wait_for_function("() => document.body.dataset.ready === '1'", timeout=30000)
        page.wait_for_function(IN_SYNC, timeout=30000)
        browser_stroke(page, [(0.2, 0.2), (0.8, 0.7)], 8)
        page.wait_for_function(IN_SYNC, timeout=30000)
        assert int(page.evaluate("() => { " + SHOWN_OUTPUT + " return o.dataset.version; }")) >= 2
        assert page.evaluate("() => window.pix2pixStats.transport") == "websocket"
        assert not errors, errors
        page.close()


def test_a_generated_token_is_printed_once_with_its_link(model_dirs, tmp_path):
    port = free_port()
    log = tmp_path / "server.log"
    with run_server(["--host", "0.0.0.0", "--model", str(model_dirs["edges"]), "--backend", "eager"],
                    port, log, up=(401,)) as url:
        printed = re.findall(r"http://\S+:%d/\?token=([A-Za-z0-9_-]+)" % port, log.read_text())
        assert len(printed) == 1 and len(printed[0]) >= 32
        assert httpx.get(url + "/api/models", timeout=30).status_code == 401
        assert httpx.get(url + "/api/models", params={"token": printed[0]}, timeout=30).status_code == 200


def test_no_auth_opts_out_and_loopback_is_unchanged(model_dirs, tmp_path, server):
    port = free_port()
    log = tmp_path / "server.log"
    with run_server(["--host", "0.0.0.0", "--no-auth", "--model", str(model_dirs["edges"]),
                     "--backend", "eager"], port, log) as url:
        assert httpx.get(url + "/api/models", timeout=30).status_code == 200
    assert "--no-auth: anyone who can reach this server" in log.read_text()
    # The shared loopback server (no --token) asks nothing, and sets no cookie.
    resp = httpx.get(server + "/api/models", timeout=30)
    assert resp.status_code == 200 and "set-cookie" not in resp.headers


def test_contradicting_or_unsafe_tokens_are_refused_at_once(capsys):
    from pix2pix.cli import main

    assert main(["serve", "--host", "0.0.0.0", "--token", TOKEN, "--no-auth"]) == 2
    assert "contradict" in capsys.readouterr().err
    assert main(["serve", "--host", "0.0.0.0", "--token", "two words;"]) == 2
    assert "A-Z a-z 0-9" in capsys.readouterr().err
