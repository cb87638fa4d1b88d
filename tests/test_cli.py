"""The `pix2pix` command end to end, as a user runs it (real subprocesses, real files)."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from conftest import sigterm_after_logging

SMALL = ["--arch", "unet_128", "--base-channels", "8", "--image-size", "128", "--batch-size", "2",
         "--set", "model.d_base_channels=8", "--no-progress"]


def cli(*args, check=True, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "pix2pix", *map(str, args)], capture_output=True,
                          text=True, timeout=300, **kw)
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_train_then_translate_files_and_folders(tiny_dataset, tmp_path):
    run = tmp_path / "run"
    out = cli("train", "--data", tiny_dataset, "--out", run, "--max-steps", 3, *SMALL)
    assert '"generator": "unet_128"' in out.stdout  # the resolved config is printed
    assert (run / "config.json").is_file() and (run / "latest.json").is_file()
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    Image.new("RGB", (300, 171), (20, 90, 40)).save(inputs / "odd.jpg")
    Image.new("L", (64, 64), 100).save(inputs / "gray.png")
    Image.new("RGBA", (50, 70), (0, 0, 255, 128)).save(inputs / "alpha.png")
    single = tmp_path / "single.png"
    Image.new("RGB", (128, 128)).save(single)
    res = cli("translate", "--model", run, inputs, single, "--out", tmp_path / "out", "--device", "cpu")
    assert "translated 4 image(s)" in res.stdout
    sizes = {p.name: Image.open(p).size for p in (tmp_path / "out").iterdir()}
    assert sizes == {"odd.png": (300, 171), "gray.png": (64, 64), "alpha.png": (50, 70),
                     "single.png": (128, 128)}
    assert Image.open(tmp_path / "out" / "alpha.png").mode == "RGBA"


def test_bad_data_exits_2_naming_the_problem(tmp_path):
    (tmp_path / "d" / "train").mkdir(parents=True)
    Image.fromarray(np.zeros((64, 129, 3), np.uint8)).save(tmp_path / "d" / "train" / "x.png")
    res = cli("train", "--data", tmp_path / "d", "--out", tmp_path / "r", *SMALL, check=False)
    assert res.returncode == 2
    assert "x.png: width 129 is odd" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "r" / "latest.json").exists()


def test_bad_option_value_is_named(tiny_dataset, tmp_path):
    res = cli("train", "--data", tiny_dataset, "--out", tmp_path / "r", "--norm", "group", check=False)
    assert res.returncode == 2 and "model.norm='group'" in res.stderr


def test_translate_missing_input(tmp_path):
    res = cli("translate", "--model", tmp_path, "--out", tmp_path / "o", tmp_path / "nope.png", check=False)
    assert res.returncode == 2 and "nope.png does not exist" in res.stderr


def test_dry_run_and_config_file(tiny_dataset, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model:\n  norm: instance\nlr: 0.001\n")
    res = cli("train", "--data", tiny_dataset, "--out", tmp_path / "r", "--config", cfg, *SMALL, "--dry-run")
    printed = json.loads(res.stdout[: res.stdout.rindex("}") + 1])
    assert printed["model"]["norm"] == "instance" and printed["lr"] == 0.001
    assert "dry run: 4 training pairs, 2 sample pairs" in res.stdout
    assert not (tmp_path / "r" / "latest.json").exists()


def test_sigterm_saves_checkpoint_then_resume(tiny_dataset, tmp_path):
    run = tmp_path / "run"
    code, err = sigterm_after_logging(["--data", tiny_dataset, "--out", run, "--max-steps", 100000,
                                       "--log-every", 1, *SMALL], run)
    assert code == 130, err[-2000:]
    assert "checkpoint saved" in err and "--resume" in err
    step = json.loads((run / "latest.json").read_text())["step"]
    assert step >= 2
    res = cli("train", "--resume", "--out", run, "--max-steps", step + 2, "--no-progress")
    assert json.loads((run / "latest.json").read_text())["step"] == step + 2
    steps = [json.loads(l)["step"] for l in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps[-2:] == [step + 1, step + 2]


def test_data_example_list():
    res = cli("data", "example", "--list")
    assert "maps:" in res.stdout and "public domain" in res.stdout
