"""A real `pix2pix serve` process on 127.0.0.1, serving three tiny models, for the API, load and
browser tests. Tiny = unet_128 with 8 base channels (655k parameters, a few ms per image)."""
from __future__ import annotations

from pathlib import Path

import pytest

from .serve_support import (MAX_PIXELS, MAX_UPLOAD_MB, MAX_VIDEO_FRAMES, MAX_VIDEO_MB,
                            MAX_VIDEO_SECONDS, PALETTE, free_port, run_server, tiny_model)


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {"edges": tiny_model(root / "edges", seed=1),
            "labels": tiny_model(root / "labels" / "model", seed=2, palette=PALETTE),
            "gray": tiny_model(root / "gray", seed=3, in_channels=1, out_channels=1)}


@pytest.fixture(scope="session")
def server(model_dirs, tmp_path_factory) -> str:
    """Base URL of `pix2pix serve` started through the real CLI, stopped with SIGINT afterwards."""
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    args = ["--model", str(model_dirs["edges"]), "--model", str(model_dirs["labels"]),
            "--model", f"gray={model_dirs['gray']}",
            "--max-upload-mb", str(MAX_UPLOAD_MB), "--max-pixels", str(MAX_PIXELS),
            "--max-video-mb", str(MAX_VIDEO_MB), "--max-video-seconds", str(MAX_VIDEO_SECONDS),
            "--max-video-frames", str(MAX_VIDEO_FRAMES),
            # Answers are compared bit for bit with the eager Translator's; the ONNX Runtime
            # backend (the CLI's auto choice on CPU) is checked to within rounding in test_api.
            "--backend", "eager"]
    with run_server(args, port, log) as url:
        yield url


