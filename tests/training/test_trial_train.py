"""What a user trial of `pix2pix train`, `evaluate`, `distill` and `models` found: each test runs
the command (or the function it calls) on real files, as the user did."""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

from conftest import cut_pairs, write_combined
from test_errors import model_dir  # noqa: F401  the tiny pretrained model the error tests use
from pix2pix.cli import main
from pix2pix.config import DataConfig, ModelConfig, TrainConfig, apply_overrides, merge
from pix2pix.training import train
from pix2pix.training.preflight import resume_changes
from pix2pix.training.report import write_report

TINY = ["--arch", "unet_128", "--base-channels", "4", "--set", "model.d_base_channels=4",
        "--image-size", "128", "--no-progress", "--device", "cpu", "--tensorboard", "off"]

pytestmark = pytest.mark.usefixtures("one_thread")


def error(capsys, *args) -> str:
    """The one-line error of a command that must exit 2 without a traceback."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as e:  # argparse rejects an option's value itself
        code = e.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and err.count("error:") == 1, err
    return err


def small_cfg(root: Path, out: Path, **kw) -> TrainConfig:
    base = dict(model=ModelConfig(generator="unet_128", base_channels=4, d_base_channels=4),
                data=DataConfig(root=str(root), image_size=128), out=str(out), batch_size=2,
                log_every=1, sample_every=100, checkpoint_every=100, device="cpu", tensorboard="off")
    base.update(kw)
    return TrainConfig(**base)


def test_report_style_is_valid_css(tmp_path):
    """The stylesheet was half an f-string: every rule after the first kept doubled braces."""
    page = write_report(tmp_path, status={"state": "finished", "step": 1}, config={}, lines=[]).read_text()
    style = re.search(r"<style>(.*)</style>", page).group(1)
    assert "{{" not in style and "}}" not in style
    assert style.count("{") == style.count("}") and "table{border-collapse:collapse}" in style


def test_config_file_and_set_typos_name_the_file_and_the_likely_key(tmp_path, capsys):
    yml = tmp_path / "mine.yaml"
    yml.write_text("model:\n  generatr: unet_128\n")
    err = error(capsys, "train", "--data", tmp_path, "--out", tmp_path / "r", "--config", yml, "--dry-run")
    assert f"config file {yml}: unknown config key(s) model.generatr (did you mean model.generator?)" in err
    js = tmp_path / "mine.json"
    js.write_text('{"lr": "fast"}')
    err = error(capsys, "train", "--data", tmp_path, "--out", tmp_path / "r", "--config", js, "--dry-run")
    assert f"config file {js}: lr='fast' is not a valid float" in err
    err = error(capsys, "train", "--data", tmp_path, "--out", tmp_path / "r", "--set", "lrr=1e-4", "--dry-run")
    assert "unknown key 'lrr' (did you mean lr?)" in err


def test_max_time_takes_durations_in_a_config_file_and_set_as_the_flag_does():
    assert apply_overrides(TrainConfig(), ["max_time=2h30m"]).max_time == 9000.0
    assert merge(TrainConfig(), {"max_time": "90m"}).max_time == 5400.0
    assert merge(TrainConfig(), {"max_time": 30}).max_time == 30.0
    with pytest.raises(ValueError, match=r"max_time='2x' is not valid: '2x' is not a duration"):
        apply_overrides(TrainConfig(), ["max_time=2x"])


def test_best_metric_without_its_weights_fails_the_dry_run_and_before_writing(tiny_dataset, tmp_path,
                                                                              capsys, monkeypatch):
    monkeypatch.setenv("PIX2PIX_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.delenv("PIX2PIX_LPIPS_WEIGHTS", raising=False)
    run = tmp_path / "run"
    args = ["train", "--data", tiny_dataset, "--out", run, *TINY, "--max-steps", 2, "--val-every", 1,
            "--val-metrics", "l1,lpips", "--best-metric", "lpips"]
    for extra in (["--dry-run"], []):
        err = error(capsys, *args, *extra)
        assert "best_metric 'lpips' cannot be computed: LPIPS weights not found" in err
        assert "--install-lpips" in err and "--best-metric" in err
    assert not run.exists()


def test_validation_without_a_val_split_says_it_scores_training_pairs(world, tmp_path, caplog):
    root = tmp_path / "data"
    write_combined(root, "train", cut_pairs(world, 2, 128, seed=4))
    caplog.set_level(logging.WARNING)
    train(small_cfg(root, tmp_path / "run", max_steps=1, val_every=1), progress=False)
    assert "has no val/ split: validation (--val-every) scores training pairs" in caplog.text
    assert "pix2pix data split" in caplog.text


def test_resume_may_trade_processes_for_batch_when_the_global_batch_stays(tmp_path):
    """2 processes x batch 1 -> 1 x 2 is what the resume error itself suggested, yet batch_size
    was refused as fixed."""
    saved = small_cfg(tmp_path, tmp_path / "r", batch_size=1)
    doubled = small_cfg(tmp_path, tmp_path / "r", batch_size=2)
    assert "batch_size: 1 -> 2" in resume_changes(saved, doubled, saved_world=2, world=1)
    assert "batch_size: 2 -> 1" in resume_changes(doubled, saved, saved_world=1, world=2)
    with pytest.raises(ValueError, match=r"cannot change batch_size \(1 -> 2\)"):
        resume_changes(saved, doubled)  # the same processes: a step would change


def test_resume_past_its_end_says_there_is_nothing_to_train(tiny_dataset, tmp_path, caplog):
    run = tmp_path / "run"
    train(small_cfg(tiny_dataset, run, max_steps=2), progress=False)
    caplog.set_level(logging.INFO)
    train(small_cfg(tiny_dataset, run, max_steps=1), resume=True, progress=False)
    assert "nothing to train: the run is already at step 2 and --max-steps 1 ends at step 1" in caplog.text
    status = json.loads((run / "status.json").read_text())
    assert status["step"] == status["total_steps"] == 2  # not "all 1 steps done" at step 2


def test_evaluate_refuses_values_it_would_silently_ignore(tiny_dataset, model_dir, tmp_path, capsys):
    base = ["evaluate", "--model", model_dir, "--data", tiny_dataset, "--split", "val", "--device", "cpu"]
    # "btoa" scored the model's own direction (AtoB) without a word.
    assert "invalid choice: 'btoa'" in error(capsys, *base, "--direction", "btoa")
    assert "--max-images: 0 must be at least 1" in error(capsys, *base, "--max-images", 0)
    assert "--image-size: 0 must be at least 1" in error(capsys, *base, "--image-size", 0)
    assert "--metrics '' names no metric" in error(capsys, *base, "--metrics", "")  # not the defaults
    assert main([str(a) for a in base + ["--metrics", "l1,psnr,l1"]]) == 0
    out = capsys.readouterr().out
    assert out.count("  l1 ") == 1 and "psnr" in out


def test_distill_checks_its_table_options_before_training(tiny_dataset, model_dir, tmp_path, capsys):
    run = tmp_path / "student"
    base = ["distill", "--teacher", model_dir, "--data", tiny_dataset, "--out", run,
            "--student", "unet_128_w8", "--max-steps", 1, "--no-progress", "--device", "cpu"]
    err = error(capsys, *base, "--table-backends", "onnx")
    assert "--table-backends 'onnx': onnx is not a backend; choose from" in err
    err = error(capsys, *base, "--table-split", "tset")
    assert "--table-split tset:" in err and "does not exist (found: train, val)" in err
    assert not run.exists()  # refused before a step was trained


def test_missing_model_paths_name_their_option(tiny_dataset, tmp_path, capsys):
    err = error(capsys, "distill", "--teacher", tmp_path / "nope", "--data", tiny_dataset, "--out", tmp_path / "s")
    assert f"--teacher {tmp_path / 'nope'}: model path" in err
    err = error(capsys, "train", "--init-from", tmp_path / "nope", "--data", tiny_dataset, "--out", tmp_path / "r")
    assert f"--init-from {tmp_path / 'nope'}: model path" in err


def test_models_size_zero_and_sizes_some_architectures_cannot_take(capsys):
    assert "--size 0 must be a positive image side" in error(capsys, "models", "--size", 0)
    err = error(capsys, "models", "--size", 128)
    assert "not a multiple of 256 (unet_256)" in err and "--only unet_128," in err
