"""Every command in a venv with only the core installed (`make test` builds it as .venv-core):
each one works, or says which extra to install; none ends in a traceback."""
from __future__ import annotations

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import missing_install

ROOT = Path(__file__).resolve().parents[1]
EXTRA_MODULES = ("mpl_toolkits.basemap_data", "skimage", "sklearn", "fastapi", "uvicorn", "onnx",
                 "onnxruntime", "onnxscript", "h5py", "tensorboard", "av", "websockets", "kornia")


@pytest.fixture(scope="module")
def core_python() -> Path:
    python = Path(os.environ.get("PIX2PIX_CORE_PYTHON") or ROOT / ".venv-core" / "bin" / "python")
    if not python.is_file():
        missing_install("the core-only venv", f"{python} does not exist (make test builds .venv-core)")
    # It must really lack every extra, or this test proves nothing.
    probe = "import importlib.util as u, sys\n" \
            "def has(m):\n try: return u.find_spec(m) is not None\n except ImportError: return False\n" \
            f"print(','.join(m for m in {EXTRA_MODULES!r} if has(m)))"
    present = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, check=True)
    assert present.stdout.strip() == "", f"the core venv has optional packages: {present.stdout}"
    return python


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, world) -> dict:
    """A tiny pretrained model, a 2-pair dataset and a photo folder, written with this venv."""
    from pix2pix.checkpoint import PretrainedInfo, save_pretrained
    from pix2pix.config import ModelConfig
    from pix2pix.models import build_generator
    from conftest import cut_pairs, write_combined

    root = tmp_path_factory.mktemp("core")
    cfg = ModelConfig(generator="unet_128", base_channels=4, d_base_channels=4)
    torch.manual_seed(0)
    model = save_pretrained(build_generator(cfg).eval(), PretrainedInfo(model=cfg, image_size=128),
                            root / "model")
    data = root / "data"
    write_combined(data, "train", cut_pairs(world, 2, 128, seed=4))
    write_combined(data, "val", cut_pairs(world, 2, 128, seed=5))
    photos = root / "photos"
    photos.mkdir()
    Image.fromarray(world[0][600:900, 1000:1300]).save(photos / "p.png")
    Image.fromarray(np.asarray(world[0][600:728, 2000:2128])).save(root / "in.png")
    # Only its name says "clip": the commands must name the video extra before reading it.
    (root / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(64))
    return {"root": root, "model": model, "data": data, "photos": photos, "image": root / "in.png",
            "clip": root / "clip.mp4"}


def _commands(i: dict) -> list[tuple[list, str | None]]:
    """(arguments, None when the command must succeed, else the extra its error must name)."""
    r = i["root"]
    tiny = ["--arch", "unet_128", "--base-channels", "4", "--set", "model.d_base_channels=4",
            "--image-size", "128", "--no-progress", "--device", "cpu", "--max-steps", "1"]
    return [
        (["--help"], None),
        (["data", "example", "--list"], None),
        (["data", "example", "maps", "--out", r / "maps"], "examples"),
        (["data", "example", "edges2photos", "--out", r / "e2p"], "examples"),
        (["demo", "--out", r / "demo"], "examples"),
        (["data", "check", i["data"]], None),
        (["data", "edges", i["photos"], "--out", r / "edges", "--size", "128"], None),
        (["data", "edges", i["photos"], "--out", r / "hed", "--size", "128", "--detector", "hed"], "hed"),
        (["train", "--data", i["data"], "--out", r / "run", *tiny], None),
        (["train", "--data", i["data"], "--out", r / "run-aug", *tiny, "--d-augment", "translation"], "augment"),
        (["translate", "--model", i["model"], i["image"], "--out", r / "out"], None),
        (["evaluate", "--model", i["model"], "--data", i["data"], "--split", "val", "--device", "cpu"], None),
        (["export", "--model", i["model"], "--out", r / "m.onnx"], "export"),
        (["serve", "--model", i["model"]], "serve"),
        (["translate", "--model", i["model"], i["clip"], "--out", r / "clip-out"], "video"),
        (["evaluate-video", i["clip"], "--input", i["clip"]], "video"),
        (["data", "download", "--list"], None),
    ]


def test_every_command_with_only_the_core_installed(core_python, inputs):
    # This checkout's source first (the core venv's editable install may point at another copy).
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT / "src"))

    def run(item):
        args, _ = item
        return subprocess.run([str(core_python), "-m", "pix2pix", *map(str, args)], capture_output=True,
                              text=True, timeout=240, env=env, cwd=inputs["root"])

    commands = _commands(inputs)
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(run, commands))
    problems = []
    for (args, extra), proc in zip(commands, results):
        name = " ".join(map(str, args[:3]))
        if "Traceback" in proc.stderr:
            problems.append(f"{name}: traceback\n{proc.stderr[-1500:]}")
        elif extra is None and proc.returncode != 0:
            problems.append(f"{name}: exit {proc.returncode}\n{proc.stderr[-1500:]}")
        elif extra is not None and (proc.returncode != 2 or f'pix2pix[{extra}]' not in proc.stderr):
            problems.append(f"{name}: expected exit 2 naming pix2pix[{extra}], got {proc.returncode}: "
                            f"{proc.stderr[-800:]}")
    assert not problems, "\n\n".join(problems)


def test_default_recipe_trains_offline_from_a_core_install_with_an_empty_home(core_python, inputs,
                                                                              tmp_path):
    """`pix2pix train` with no --recipe uses the default recipe, whose perceptual loss reads the
    AlexNet backbone shipped inside the package: no cache, no HOME, no network needed."""
    from pix2pix.recipes import DEFAULT_RECIPE, recipe_overrides

    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("PIX2PIX_CACHE", "XDG_CACHE_HOME", "PIX2PIX_LPIPS_WEIGHTS", "TORCH_HOME")}
    # An empty HOME (no ~/.cache) and every proxy pointing at a closed port: any download fails.
    env.update(HOME=str(home), OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT / "src"),
               http_proxy="http://127.0.0.1:9", https_proxy="http://127.0.0.1:9",
               HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9", PIP_NO_INDEX="1")
    run = tmp_path / "run"
    proc = subprocess.run(
        [str(core_python), "-m", "pix2pix", "train", "--data", str(inputs["data"]), "--out", str(run),
         "--arch", "unet_128", "--base-channels", "4", "--set", "model.d_base_channels=4",
         "--image-size", "128", "--no-progress", "--device", "cpu", "--max-steps", "2", "--log-every", "1"],
        capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    import json

    cfg = json.loads((run / "config.json").read_text())
    assert DEFAULT_RECIPE != "paper" and "perceptual_weight=10" in recipe_overrides(DEFAULT_RECIPE)
    assert cfg["perceptual_weight"] == 10 and cfg["model"]["upsample"] == "resize" and cfg["ema"] > 0
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]
    perceptual = [x["loss/g_perceptual"] for x in lines if "loss/g_perceptual" in x]
    assert len(perceptual) == 2 and all(v > 0 for v in perceptual)
    assert list(home.iterdir()) == [] or not (home / ".cache" / "pix2pix" / "lpips").exists()
