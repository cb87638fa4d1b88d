"""Every bad file or setting ends with one message naming the file, field or value and what to
do, and exit status 2 (never a traceback). Run through the CLI's own entry point."""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import cut_pairs, write_combined, write_folders
from pix2pix.checkpoint import PretrainedInfo, save_pretrained
from pix2pix.cli import main
from pix2pix.config import ModelConfig
from pix2pix.models import build_generator
from pix2pix.util.precision import cpu_flags, cpu_native, resolve_precision
from pix2pix.training.preflight import check_world

TINY = ["--arch", "unet_128", "--base-channels", "4", "--set", "model.d_base_channels=4",
        "--image-size", "128", "--no-progress", "--device", "cpu", "--tensorboard", "off"]


def cli(capsys, *args) -> tuple[int, str]:
    code = main([str(a) for a in args])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def error(capsys, *args) -> str:
    code, err = cli(capsys, *args)
    assert code == 2, err
    assert err.count("error:") == 1, err  # one clear message
    return err


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    cfg = ModelConfig(generator="unet_128", base_channels=4)
    torch.manual_seed(0)
    return save_pretrained(build_generator(cfg).eval(), PretrainedInfo(model=cfg, image_size=128),
                           tmp_path_factory.mktemp("m") / "model")


@pytest.fixture
def image(tmp_path) -> Path:
    path = tmp_path / "in.png"
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(path)
    return path


def copy_model(model_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(model_dir, tmp_path / "copy"))


def test_config_json_not_json_without_model_and_mismatched(model_dir, tmp_path, image, capsys):
    bad = copy_model(model_dir, tmp_path)
    (bad / "config.json").write_text('{"format_version": 1, "model": {')
    err = error(capsys, "translate", "--model", bad, image, "--out", tmp_path / "o")
    assert f"{bad / 'config.json'} is not valid JSON" in err
    (bad / "config.json").write_text('{"format_version": 1, "direction": "AtoB"}')
    err = error(capsys, "translate", "--model", bad, image, "--out", tmp_path / "o")
    assert "has no 'model' section" in err and "config.json" in err
    raw = json.loads((model_dir / "config.json").read_text())
    raw["model"]["generator"] = "unet_9000"
    (bad / "config.json").write_text(json.dumps(raw))
    err = error(capsys, "translate", "--model", bad, image, "--out", tmp_path / "o")
    assert "model.generator='unet_9000' is not valid" in err and "config.json" in err
    raw["model"].update(generator="unet_128", base_channels=8)  # the file holds base 4 weights
    (bad / "config.json").write_text(json.dumps(raw))
    err = error(capsys, "translate", "--model", bad, image, "--out", tmp_path / "o")
    assert "generator.safetensors does not match" in err and "base_channels 8" in err
    assert "in the file" in err and "different models" in err


@pytest.mark.parametrize("cut", [0, 5, 100, -10])
def test_truncated_generator_weights(model_dir, tmp_path, image, capsys, cut):
    bad = copy_model(model_dir, tmp_path)
    data = (bad / "generator.safetensors").read_bytes()
    (bad / "generator.safetensors").write_bytes(data[:cut] if cut >= 0 else data[:cut])
    err = error(capsys, "translate", "--model", bad, image, "--out", tmp_path / "o")
    assert "generator.safetensors is damaged" in err and "older checkpoint" in err


def test_garbage_and_truncated_onnx_for_translate_evaluate_and_serve(lively_model_dir, tmp_path, image,
                                                                     tiny_dataset, capsys):
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"this is not a protobuf at all" * 10)
    from pix2pix.inference.onnx import export_onnx
    from pix2pix.checkpoint import load_pretrained

    g, info = load_pretrained(lively_model_dir)
    real = export_onnx(g, info, tmp_path / "real.onnx")
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(real.read_bytes()[: real.stat().st_size // 2])
    for bad in (garbage, truncated):
        err = error(capsys, "translate", "--model", bad, image, "--out", tmp_path / "o")
        assert str(bad) in err and "re-export it with `pix2pix export`" in err
        err = error(capsys, "evaluate", "--model", bad, "--data", tiny_dataset, "--split", "val",
                    "--device", "cpu")
        assert str(bad) in err and "re-export" in err
        err = error(capsys, "serve", "--model", bad, "--port", "0")
        assert str(bad) in err and "re-export" in err


def test_config_file_syntax_errors_name_file_and_line(tmp_path, capsys):
    yml = tmp_path / "bad.yaml"
    yml.write_text("model:\n  norm: instance\n lr: [1e-4\n")
    err = error(capsys, "train", "--data", tmp_path, "--out", tmp_path / "r", "--config", yml)
    assert f"config file {yml} is not valid YAML at line 3" in err
    js = tmp_path / "bad.json"
    js.write_text('{\n  "lr": 1e-4,\n  "model": {"norm": "instance",}\n}\n')
    err = error(capsys, "train", "--data", tmp_path, "--out", tmp_path / "r", "--config", js)
    assert f"config file {js} is not valid JSON at line 3" in err


def test_values_that_would_only_fail_later(tiny_dataset, tmp_path, capsys):
    err = error(capsys, "train", "--data", tiny_dataset, "--out", tmp_path / "r", *TINY, "--d-layers", 6)
    assert "model.d_layers=6 is too deep for data.image_size=128" in err and "--d-layers 5" in err
    err = error(capsys, "train", "--data", tiny_dataset, "--out", tmp_path / "r", *TINY,
                "--set", "num_samples=0")
    assert "num_samples=0 must be > 0" in err
    err = error(capsys, "train", "--data", tiny_dataset, "--out", tmp_path / "r", *TINY, "--set", "beta1=1.5")
    assert "beta1=1.5 must be in [0, 1)" in err
    assert not (tmp_path / "r").exists()


def test_image_geometry_is_checked_for_the_whole_split_before_step_1(world, tmp_path, capsys):
    root = tmp_path / "data"
    pairs = cut_pairs(world, 3, 128, seed=7) + cut_pairs(world, 1, 200, seed=8)
    write_combined(root, "train", pairs)
    run = tmp_path / "run"
    err = error(capsys, "train", "--data", root, "--out", run, *TINY, "--preprocess", "none",
                "--max-steps", 5)
    assert "not multiples of 128" in err and "p003.png is 200x200" in err
    err = error(capsys, "train", "--data", root, "--out", run, *TINY, "--preprocess", "none",
                "--max-steps", 5, "--set", "model.generator=resnet_6blocks", "--batch-size", 2)
    assert "2 sizes: 128x128 (3), 200x200 (1)" in err and "--batch-size 1" in err
    err = error(capsys, "train", "--data", root, "--out", run, *TINY, "--preprocess", "crop",
                "--image-size", 192, "--set", "model.generator=resnet_6blocks", "--max-steps", 5)
    assert "3 image(s) are smaller than the 192x192 crop" in err
    assert not (run / "metrics.jsonl").exists()  # nothing trained


def test_duplicate_stems_and_clashing_output_names(world, tmp_path, image, model_dir, capsys):
    root = tmp_path / "data"
    write_folders(root, "train", cut_pairs(world, 2, 128, seed=9))
    shutil.copy(root / "train" / "A" / "img000.png", root / "train" / "A" / "img000.jpg")
    err = error(capsys, "train", "--data", root, "--out", tmp_path / "r", *TINY)
    assert "pairing is ambiguous" in err and "A/: img000.jpg, img000.png share the name 'img000'" in err
    shutil.copy(image, image.with_suffix(".jpg"))
    err = error(capsys, "translate", "--model", model_dir, image.parent, "--out", tmp_path / "o")
    assert "would be written twice" in err and "in.jpg and" in err and "in.png" in err
    assert not (tmp_path / "o").exists()


def test_resume_refuses_an_other_architecture_and_applies_lr(tiny_dataset, tmp_path, capsys, caplog):
    caplog.set_level(logging.INFO)
    run = tmp_path / "run"
    code, err = cli(capsys, "train", "--data", tiny_dataset, "--out", run, *TINY, "--max-steps", 1,
                    "--batch-size", 2)
    assert code == 0, err
    for flags, named in [(["--base-channels", 8], "model.base_channels (4 -> 8)"),
                         (["--arch", "unet_256", "--image-size", 256], "model.generator ('unet_128' -> 'unet_256')"),
                         (["--batch-size", 1], "batch_size (2 -> 1)"),
                         (["--image-size", 256, "--arch", "resnet_6blocks"], "data.image_size (128 -> 256)"),
                         # A recipe sets what it changes: the message says a --recipe may be why.
                         (["--recipe", "paper"], "model.test_statistics ('running' -> 'batch')")]:
        err = error(capsys, "train", "--resume", "--out", run, "--max-steps", 2, "--no-progress", *flags)
        assert "--resume cannot change" in err and named in err and "a --recipe or --config" in err, err
    code, err = cli(capsys, "train", "--resume", "--out", run, "--max-steps", 2, "--no-progress",
                    "--lr", "1e-4")
    # (In a terminal the CLI's logging prints this on stderr; under pytest, caplog holds it.)
    assert code == 0 and "resume applies a changed setting: lr: 0.0002 -> 0.0001" in caplog.text
    # Another number of processes: allowed only when the global batch stays the same.
    check_world(2, 1, 1, 2)
    with pytest.raises(ValueError, match=r"2 process\(es\) x batch 1 .* with 1 x 1"):
        check_world(2, 1, 1, 1)


def test_half_precision_is_checked_against_this_cpu(tiny_dataset, tmp_path, capsys):
    """The decision reads this machine's real flags; a second flag set is this CPU's own with
    its bf16 instructions taken out (an AVX2-only CPU), through the same function."""
    flags = cpu_flags()
    cpu = torch.device("cpu")
    no_bf16 = flags - {"avx512_bf16", "amx_bf16"}
    with pytest.raises(ValueError, match="precision bf16 on this CPU would be emulated.*AVX512-BF16"):
        resolve_precision("bf16", cpu, no_bf16)
    assert resolve_precision("auto", cpu, no_bf16) == "fp32"
    assert resolve_precision("fp32", cpu, no_bf16) == "fp32"
    assert resolve_precision("auto", cpu, no_bf16 | {"amx_bf16"}) == "bf16"
    native = cpu_native("bf16", flags)
    assert resolve_precision("auto", cpu) == ("bf16" if native else "fp32")
    # fp16 through the CLI on this machine: refused unless the CPU has AVX512-FP16/AMX-FP16.
    args = ["train", "--data", tiny_dataset, "--out", tmp_path / "r", *TINY, "--precision", "fp16",
            "--max-steps", 1]
    if cpu_native("fp16", flags):
        assert cli(capsys, *args)[0] == 0
    else:
        err = error(capsys, *args)
        assert "precision fp16 on this CPU would be emulated" in err and "--precision fp32" in err


@pytest.mark.parametrize("victim", ["discriminator.safetensors", "state.pt", "model/generator.safetensors"])
def test_damaged_newest_checkpoint_falls_back_to_the_older_one(tiny_dataset, tmp_path, capsys, caplog, victim):
    caplog.set_level(logging.INFO)
    run = tmp_path / "run"
    code, err = cli(capsys, "train", "--data", tiny_dataset, "--out", run, *TINY, "--max-steps", 2,
                    "--checkpoint-every", 1, "--log-every", 1)
    assert code == 0, err
    newest = run / "checkpoints" / "step_00000002"
    data = (newest / victim).read_bytes()
    (newest / victim).write_bytes(data[: len(data) // 3])
    code, err = cli(capsys, "train", "--resume", "--out", run, "--max-steps", 3, "--no-progress")
    assert code == 0, err
    assert "step_00000002 is damaged" in caplog.text and "resuming from the older checkpoint" in caplog.text
    assert "at step 1" in caplog.text
    lines = [json.loads(l)["step"] for l in (run / "metrics.jsonl").read_text().splitlines()]
    assert lines == [1, 2, 3]
    # With every checkpoint damaged, the error lists them all and says what to do.
    for ckpt in (run / "checkpoints").glob("step_*"):
        (ckpt / "state.pt").write_bytes(b"")
    err = error(capsys, "train", "--resume", "--out", run, "--max-steps", 4, "--no-progress")
    assert "has no complete checkpoint" in err and "state.pt" in err and "another --out" in err
