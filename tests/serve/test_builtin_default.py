"""`pix2pix serve` with no --model serves every built-in model, the default first, and says so."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request

from pix2pix.builtin import BUILTINS, DEFAULT_BUILTIN, builtin_model_dir

from .serve_support import free_port, wait_healthy


def test_serve_without_a_model_serves_the_builtin(tmp_path):
    port = free_port()
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "pix2pix", "serve", "--port", str(port),
                                 "--backend", "eager"], stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, log)
        with urllib.request.urlopen(f"{url}/api/models", timeout=30) as r:
            models = json.loads(r.read())
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    listed = models["models"]  # the documented shape: {"models": [...], ...}
    assert [m["name"] for m in listed][0] == DEFAULT_BUILTIN  # the studio opens on it
    assert sorted(m["name"] for m in listed) == sorted(BUILTINS)
    for m in listed:
        assert m["palette"] == json.loads((builtin_model_dir(m["name"]) / "config.json").read_text())["palette"]
    printed = log.read_text()
    assert "serving the built-in models" in printed
    assert all(f"{b.name}: {b.summary}" in printed for b in BUILTINS.values())
