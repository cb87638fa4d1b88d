"""Small things a new user sees (issue 20, item 9): log lines never land inside a progress bar,
printing a clip's stats does not dump every frame, and `evaluate` warns about FID only when FID
was asked for, and once."""
import io
import logging
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from tqdm import tqdm

from pix2pix.cli import BarAwareHandler
from pix2pix.checkpoint import PretrainedInfo, save_pretrained
from pix2pix.config import ModelConfig
from pix2pix.metrics.quality import Evaluator
from pix2pix.models import build_generator
from pix2pix.video.flow import WarpingError
from pix2pix.video.stream import VideoStats


def test_a_log_line_during_a_progress_bar_gets_its_own_line():
    stream = io.StringIO()
    handler = BarAwareHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("pix2pix.test_polish")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with tqdm(total=10, desc="clip.mp4", unit="frame", file=stream, mininterval=0) as bar:
            bar.update(1)
            logger.warning("writing out.mp4")
            bar.update(1)
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    at = text.index("WARNING pix2pix.test_polish: writing out.mp4")
    assert at > 0 and text[at - 1] in "\r\n"  # the bar's line was cleared first
    assert text[at:].split("writing out.mp4", 1)[1].startswith("\n")
    # Without a bar it is an ordinary log line.
    plain = io.StringIO()
    handler = BarAwareHandler(plain)
    handler.emit(logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None))
    assert plain.getvalue() == "hello\n"


def test_printing_video_stats_does_not_dump_every_frame():
    stats = VideoStats(frames=5000)
    stats.output_error.per_frame = [0.0123] * 4999
    stats.output_error.total, stats.output_error.count = 0.0123 * 4999, 4999
    text = repr(stats)
    assert len(text) < 600 and "WarpingError(mean=0.0123, frames=4999)" in text
    assert repr(WarpingError()) == "WarpingError(mean=nan, frames=0)"


@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    """A user without FID (or LPIPS) weights: every place they are looked for is empty."""
    env = {"TORCH_HOME": str(tmp_path / "torch"), "PIX2PIX_CACHE": str(tmp_path / "cache")}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("PIX2PIX_FID_WEIGHTS", raising=False)
    return env


def test_missing_fid_weights_are_warned_about_once(no_weights, caplog):
    with caplog.at_level(logging.WARNING, logger="pix2pix.metrics.quality"):
        for _ in range(3):
            ev = Evaluator(["l1", "fid"])
            assert "fid" in ev.skipped and ev.metrics == ["l1"]
    assert sum("fid is skipped" in r.getMessage() for r in caplog.records) == 1


def test_evaluate_says_nothing_about_fid_unless_asked(no_weights, tmp_path):
    cfg = ModelConfig(generator="unet_128", base_channels=8)
    model = save_pretrained(build_generator(cfg), PretrainedInfo(model=cfg), tmp_path / "model")
    (tmp_path / "data" / "test").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (128, 256, 3), dtype=np.uint8)).save(
            tmp_path / "data" / "test" / f"{i}.png")
    env = {**os.environ, **no_weights, "OMP_NUM_THREADS": "1"}
    env.pop("PIX2PIX_FID_WEIGHTS", None)
    cmd = [sys.executable, "-m", "pix2pix", "evaluate", "--model", str(model), "--data", str(tmp_path / "data")]
    default = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert default.returncode == 0, default.stderr[-2000:]
    assert "fid" not in (default.stdout + default.stderr).lower() and "l1" in default.stdout
    asked = subprocess.run(cmd + ["--metrics", "l1,fid"], capture_output=True, text=True, env=env, timeout=300)
    assert asked.returncode == 2 and asked.stderr.count("Inception weights") == 1
