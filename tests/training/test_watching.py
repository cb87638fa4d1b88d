"""Watching and judging a run: validation and best/, report.html, TensorBoard, W&B, EMA,
--max-time, and a NaN loss that stops the run while keeping the last good checkpoint."""
import json
import sys
import types

import pytest
import torch

from pix2pix.config import DataConfig, ModelConfig, TrainConfig
from pix2pix.data import Jitter, PairedDataset, scan_pairs
from pix2pix.inference.translator import Translator
from pix2pix.metrics.quality import Evaluator, evaluate
from pix2pix.training import TrainingDiverged, train
from pix2pix.training import loop as loop_module
from pix2pix.training.ema import EMA

TINY = ModelConfig(generator="unet_128", base_channels=8, d_base_channels=8)


# Small models gain nothing from 2 threads, and on a busy machine OpenMP barriers make 2 threads
# 3-30x slower than 1 (fixture in tests/conftest.py).
pytestmark = pytest.mark.usefixtures("one_thread")


def cfg_for(root, out, **kw) -> TrainConfig:
    base = dict(model=TINY, data=DataConfig(root=str(root), image_size=128), out=str(out),
                batch_size=2, epochs=2, decay_epochs=2, log_every=1, sample_every=2,
                checkpoint_every=100, seed=3, device="cpu", lr=1e-3)
    base.update(kw)
    return TrainConfig(**base)


def read_lines(run):
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def test_validation_best_report_and_tensorboard(tiny_dataset, tmp_path):
    run = train(cfg_for(tiny_dataset, tmp_path / "run", max_steps=4, val_every=2,
                        val_metrics="l1,psnr,ssim", best_metric="psnr", ema=0.5, tensorboard="on"),
                progress=False)
    lines = read_lines(run)
    vals = [x for x in lines if "val/psnr" in x]
    assert [x["step"] for x in vals] == [2, 4]
    assert {"val/l1", "val/psnr", "val/ssim"} <= vals[0].keys()
    # best/ holds the step with the highest PSNR, and re-scoring it reproduces the logged value.
    best = json.loads((run / "best" / "best.json").read_text())
    top = max(vals, key=lambda x: x["val/psnr"])
    assert best["step"] == top["step"] and best["value"] == pytest.approx(top["val/psnr"])
    val_set = PairedDataset(scan_pairs(tiny_dataset, "val"), jitter=Jitter("resize", 128, 128, False),
                            train=False)
    again = evaluate(Translator.from_pretrained(run / "best"), val_set, metrics=["psnr"])
    assert again["psnr"] == pytest.approx(top["val/psnr"], abs=1e-6)

    # report.html: status, curves and samples, all as files beside it (readable offline).
    html = (run / "report.html").read_text()
    assert "finished" in html and "best/" in html
    import re
    images = re.findall(r"<img src='([^']+)'>", html)
    assert any(i.startswith("report/plot_") for i in images) and "samples/step_00000004.png" in images
    for i in images:
        assert (run / i).is_file(), i
    from PIL import Image
    assert Image.open(run / images[0]).size == (640, 300)
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "finished" and status["step"] == 4

    # TensorBoard: loss and validation scalars, sample grids (read back with TensorBoard itself).
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tensorboard"))
    acc.Reload()
    assert {"loss/g_l1", "loss/d_real", "val/psnr", "lr"} <= set(acc.Tags()["scalars"])
    assert [e.step for e in acc.Scalars("loss/g_l1")] == [1, 2, 3, 4]
    assert [e.step for e in acc.Scalars("val/psnr")] == [2, 4]
    assert acc.Tags()["images"] == ["samples"]


def test_wandb_gets_scalars_images_and_a_resumable_id(tiny_dataset, tmp_path, monkeypatch):
    calls = {"init": [], "log": [], "finish": 0}

    class FakeRun:
        def log(self, data, step):
            calls["log"].append((step, sorted(data)))

        def finish(self):
            calls["finish"] += 1

    def init(**kw):
        calls["init"].append(kw)
        return FakeRun()

    fake = types.SimpleNamespace(init=init, Image=lambda path: ("image", path),
                                 util=types.SimpleNamespace(generate_id=lambda: "abc123"))
    monkeypatch.setitem(sys.modules, "wandb", fake)
    run = train(cfg_for(tiny_dataset, tmp_path / "w", max_steps=2, wandb_project="maps",
                        tensorboard="off"), progress=False)
    assert calls["init"][0]["project"] == "maps" and calls["init"][0]["id"] == "abc123"
    assert calls["init"][0]["resume"] == "allow" and calls["init"][0]["config"]["max_steps"] == 2
    assert (run / "wandb_id").read_text().strip() == "abc123"
    logged = dict(calls["log"])
    assert "loss/g_l1" in logged[1] and ["samples"] in [keys for _, keys in calls["log"]]
    assert calls["finish"] == 1


def test_missing_trackers_are_clear_errors(tiny_dataset, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import fails
    with pytest.raises(ValueError, match="wandb package is not installed; pip install wandb"):
        train(cfg_for(tiny_dataset, tmp_path / "x", max_steps=1, wandb_project="p"), progress=False)
    with pytest.raises(ValueError, match="best_metric='lpips' is not among val_metrics='l1,psnr'"):
        cfg_for(tiny_dataset, tmp_path, val_every=5, val_metrics="l1,psnr", best_metric="lpips").validate()
    with pytest.raises(ValueError, match="val_metrics entry='mse' is not valid"):
        cfg_for(tiny_dataset, tmp_path, val_metrics="l1,mse").validate()
    with pytest.raises(ValueError, match=r"ema=1\.5 must be in \[0, 1\)"):
        cfg_for(tiny_dataset, tmp_path, ema=1.5).validate()
    with pytest.raises(ValueError, match="sync_batchnorm is on but model.norm='instance'"):
        cfg_for(tiny_dataset, tmp_path, sync_batchnorm=True,
                model=ModelConfig(norm="instance")).validate()


def test_nan_loss_stops_without_saving_and_keeps_last_good_checkpoint(tiny_dataset, tmp_path, monkeypatch):
    real_step = loop_module.train_step
    seen = {"n": 0}

    def poisoned(generator, *args, **kw):
        seen["n"] += 1
        if seen["n"] == 3:  # weights go bad before step 3; losses are read back at step 4
            with torch.no_grad():
                next(generator.parameters()).fill_(float("nan"))
        return real_step(generator, *args, **kw)

    monkeypatch.setattr(loop_module, "train_step", poisoned)
    run_dir = tmp_path / "nan"
    with pytest.raises(TrainingDiverged, match=r"loss/g_l1 became NaN or inf between steps 3 and 4.*"
                                               r"The last good checkpoint \(step 2\) is kept") as err:
        train(cfg_for(tiny_dataset, run_dir, max_steps=10, log_every=5, sample_every=100,
                      checkpoint_every=2, tensorboard="off"), progress=False)
    result = err.value.result
    assert result.stopped == "diverged" and result.step == 4 and result.checkpoint.name == "step_00000002"
    assert json.loads((run_dir / "latest.json").read_text())["step"] == 2
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["step_00000002"]
    assert json.loads((run_dir / "status.json").read_text())["state"] == "diverged"
    # The kept checkpoint is finite and resumes.
    monkeypatch.setattr(loop_module, "train_step", real_step)
    train(cfg_for(tiny_dataset, run_dir, max_steps=3, checkpoint_every=2, tensorboard="off"),
          resume=True, progress=False)
    assert json.loads((run_dir / "latest.json").read_text())["step"] == 3


def test_max_time_stops_cleanly_then_resumes(tiny_dataset, tmp_path):
    run = train(cfg_for(tiny_dataset, tmp_path / "t", max_steps=50, max_time=1e-3, tensorboard="off"),
                progress=False)
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "stopped (max_time)" and status["step"] == 1
    assert run.stopped == "time_limit" and run.step == 1 and run.resumable
    assert json.loads((run / "latest.json").read_text())["step"] == 1
    train(cfg_for(tiny_dataset, tmp_path / "t", max_steps=3, tensorboard="off"), resume=True, progress=False)
    assert [x["step"] for x in read_lines(run)] == [1, 2, 3]


def test_ema_average_and_warmup():
    model = torch.nn.Linear(3, 2)
    ema = EMA(model, decay=0.9)
    start = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model, step=0)  # warm-up decay min(0.9, 1/10) = 0.1
    assert torch.allclose(ema.module.weight, 0.1 * start + 0.9 * model.weight)
    assert ema.decay_at(1000) == 0.9 and not ema.module.training
    assert not any(p.requires_grad for p in ema.module.parameters())


def test_evaluator_inside_training_uses_lpips_when_installed(tiny_dataset, tmp_path, lpips_weights):
    run = train(cfg_for(tiny_dataset, tmp_path / "l", max_steps=2, val_every=2, val_metrics="l1,lpips",
                        best_metric="lpips", tensorboard="off"), progress=False)
    val = [x for x in read_lines(run) if "val/lpips" in x]
    assert len(val) == 1 and 0 < val[0]["val/lpips"] < 2
    assert json.loads((run / "best" / "best.json").read_text())["metric"] == "lpips"
    assert Evaluator(["lpips"]).metrics == ["lpips"]
