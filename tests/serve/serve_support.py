"""Helpers for the serve tests: tiny models, a free port, waiting for a server, test images."""
from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import socket
import time
from pathlib import Path
from typing import Iterator

import httpx
import numpy as np
import torch
from PIL import Image

from pix2pix.checkpoint import PretrainedInfo, save_pretrained
from pix2pix.config import ModelConfig
from pix2pix.models import build_generator

PALETTE = [[255, 255, 255], [0, 0, 255], [255, 0, 0], [0, 160, 0], [250, 220, 0]]
# Limits of the test server: small, so the over-limit requests stay cheap to send.
MAX_UPLOAD_MB = 1
MAX_PIXELS = 512 * 512
MAX_VIDEO_MB, MAX_VIDEO_SECONDS, MAX_VIDEO_FRAMES = 2, 4, 30


def tiny_model(out: Path, *, seed: int, in_channels: int = 3, out_channels: int = 3,
               palette=None) -> Path:
    torch.manual_seed(seed)
    cfg = ModelConfig(generator="unet_128", base_channels=8, in_channels=in_channels,
                      out_channels=out_channels)
    g = build_generator(cfg)
    # Calibrate batch norm so that each layer's output is normalised in eval mode: with the
    # N(0, 0.02) init and default running statistics, every output would be a flat mid-gray,
    # and "the server's answer equals the Translator's" would be true of any wrong answer too.
    for m in g.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative average: the running statistics become the batch's
    g.train()
    with torch.no_grad():
        g(torch.rand(4, in_channels, 128, 128) * 2 - 1)
        # A bolder last layer spreads the outputs over the whole 0..255 range.
        for p in g.up[0].parameters():
            p.mul_(6.0)
    return save_pretrained(g, PretrainedInfo(model=cfg, image_size=128, palette=palette), out)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90.0,
                 up: tuple[int, ...] = (200,)) -> None:
    """Until GET /health answers one of ``up`` (a server asking for a token answers 401)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code in up:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server not healthy after {timeout} s:\n{log.read_text()}")


def png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def random_image(h: int, w: int, seed: int, channels: int = 3) -> np.ndarray:
    """Blocky random colours: structure a U-Net output depends on, distinct per seed."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (-(-h // 8), -(-w // 8), channels), dtype=np.uint8)
    out = np.kron(small, np.ones((8, 8, 1), dtype=np.uint8))[:h, :w]
    return out if channels > 1 else out[:, :, 0]


@contextlib.contextmanager
def run_server(args: list[str], port: int, log: Path, up: tuple[int, ...] = (200,)) -> Iterator[str]:
    """`python -m pix2pix serve --port PORT ARGS...` as a real process; yields its base URL once
    /health answers, stops it with SIGINT, and checks its log holds no traceback."""
    cmd = [sys.executable, "-m", "pix2pix", "serve", "--port", str(port), *args]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, log, up=up)
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert "Traceback" not in log.read_text(), log.read_text()


@contextlib.contextmanager
def serve_in_thread(app) -> Iterator[str]:
    """``app`` under a real uvicorn server on 127.0.0.1 in this process (for tests that look inside
    the server while real HTTP requests arrive); yields its base URL, stops it afterwards."""
    import threading

    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, name="test-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the in-process server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(30)
