"""`pix2pix evaluate`, the ablation and speed flags of `pix2pix train`, and stopping a 2-process run."""
import json
import os
import subprocess
import sys

import pytest

from conftest import sigterm_after_logging
from pix2pix.cli import build_parser
from pix2pix.cli.train import build_config

TINY = ["--arch", "unet_128", "--base-channels", "8", "--image-size", "128", "--batch-size", "2",
        "--set", "model.d_base_channels=8", "--no-progress", "--device", "cpu"]


def env() -> dict:
    """The environment at call time (not at import: the session's cache folder is set later than
    this module could copy it), on one OpenMP thread (see tests/training/test_scale.py)."""
    return dict(os.environ, OMP_NUM_THREADS="1")



def cli(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "pix2pix", *map(str, args)], capture_output=True,
                          text=True, timeout=300, env=env())
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def config(*args):
    return build_config(build_parser().parse_args(["train", "--data", "d", *args]))


@pytest.mark.parametrize("objective,l1,gan,conditional", [
    ("l1+cgan", 100, 1, True), ("l1+gan", 100, 1, False), ("cgan", 0, 1, True),
    ("gan", 0, 1, False), ("l1", 100, 0, True)])
def test_paper_ablations_are_one_flag(objective, l1, gan, conditional):
    cfg = config("--objective", objective)
    assert (cfg.l1_weight, cfg.gan_weight, cfg.model.conditional) == (l1, gan, conditional)


def test_scale_flags_reach_the_config():
    cfg = config("--precision", "bf16", "--channels-last", "--compile", "default", "--ema", "0.999",
                 "--max-time", "2h30m", "--val-every", "500", "--val-metrics", "l1,ssim,lpips",
                 "--best-metric", "ssim", "--tensorboard", "off", "--workers", "2", "--prefetch", "4",
                 "--norm", "batch", "--sync-batchnorm")
    assert (cfg.precision, cfg.channels_last, cfg.compile, cfg.ema) == ("bf16", True, "default", 0.999)
    assert cfg.max_time == 9000.0 and cfg.val_every == 500 and cfg.best_metric == "ssim"
    assert (cfg.data.workers, cfg.data.prefetch, cfg.sync_batchnorm) == (2, 4, True)
    assert config("--best-metric", "none").best_metric == ""
    assert config("--max-time", "90").max_time == 90.0
    with pytest.raises(SystemExit):
        config("--max-time", "soon")
    with pytest.raises(ValueError, match="train.precision='fp8' is not valid"):
        config("--precision", "fp8")


def test_evaluate_command(tiny_dataset, tmp_path, lpips_weights, monkeypatch):
    run = tmp_path / "run"
    cli("train", "--data", tiny_dataset, "--out", run, "--max-steps", 2, *TINY)
    out = tmp_path / "m.json"
    res = cli("evaluate", "--model", run, "--data", tiny_dataset, "--split", "val", "--json", out,
              "--device", "cpu")
    data = json.loads(out.read_text())
    m = data["metrics"]
    assert m["count"] == 2 and {"l1", "psnr", "ssim", "lpips"} <= m.keys()
    # FID is not asked for by default when its weights are missing: no metric, no warning.
    assert "fid" not in m and "fid" not in data.get("skipped", {})
    assert "psnr" in res.stdout and "fid    skipped" not in res.stdout
    # The same numbers as the Python API.
    from pix2pix import Translator, evaluate
    from pix2pix.data import Jitter, PairedDataset, scan_pairs

    ds = PairedDataset(scan_pairs(tiny_dataset, "val"), jitter=Jitter("none", 256, 256, False), train=False)
    api = evaluate(Translator.from_pretrained(run, device="cpu"), ds, metrics=["l1", "psnr", "ssim"])
    for k in ("l1", "psnr", "ssim"):
        assert m[k] == pytest.approx(api[k], rel=1e-6)  # other process, other thread count
    # Which batch-norm statistics were used is said, and --batch-stats changes it and the scores.
    assert data["test_statistics"] == "running" and "batch-norm statistics: running" in res.stdout
    res = cli("evaluate", "--model", run, "--data", tiny_dataset, "--split", "val", "--json", out,
              "--device", "cpu", "--metrics", "l1", "--batch-stats")
    data = json.loads(out.read_text())
    assert data["test_statistics"] == "batch" and "statistics: each image's own" in res.stdout
    own = evaluate(Translator.from_pretrained(run, device="cpu", batch_stats=True), ds, metrics=["l1"])["l1"]
    assert data["metrics"]["l1"] == pytest.approx(own, rel=1e-5) and abs(own - m["l1"]) > 1e-4
    # Asking for FID by name without weights is an error that says what to do.
    res = cli("evaluate", "--model", run, "--data", tiny_dataset, "--split", "val", "--metrics", "fid",
              check=False)
    assert res.returncode == 2 and "pt_inception-2015-12-05-6726825d.pth" in res.stderr
    res = cli("evaluate", "--model", run, "--data", tiny_dataset, "--split", "nope", check=False)
    assert res.returncode == 2 and "no 'nope' split" in res.stderr


def test_sigterm_stops_a_two_process_run_with_a_checkpoint(tiny_dataset, tmp_path):
    run = tmp_path / "run"
    code, err = sigterm_after_logging(
        ["--data", tiny_dataset, "--out", run, "--max-steps", 100000, "--log-every", 1,
         "--num-processes", 2, "--tensorboard", "off", "--arch", "unet_128", "--base-channels", 8,
         "--set", "model.d_base_channels=8", "--image-size", 128, "--batch-size", 1, "--no-progress",
         "--device", "cpu"], run, env=env())
    assert code == 130, err[-2000:]
    assert "checkpoint saved" in err and "--resume" in err
    step = json.loads((run / "latest.json").read_text())["step"]
    assert step >= 2
    state = json.loads((run / "status.json").read_text())
    assert state["state"] == "interrupted" and state["processes"] == 2
    # Resuming with 2 processes continues from the saved step, on both processes' random states.
    cli("train", "--resume", "--out", run, "--num-processes", 2, "--max-steps", step + 1, "--no-progress")
    assert json.loads((run / "latest.json").read_text())["step"] == step + 1
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == list(range(1, step + 2))


# Loaded by every process of the run below (Python imports `sitecustomize` at start-up): rank 0
# signals itself right after logging step 2, that is after the processes agreed to go on with step
# 3, the one moment where a process that broke off on its own signal would leave the others in a
# collective it never joins (seen as a hang in fresh-clone CI).
SIGNAL_AFTER_AGREEING = """
import os, signal
if os.environ.get("RANK") == "0":
    from pix2pix.training.tracking import Tracker
    _scalars = Tracker.scalars
    def scalars(self, step, values):
        _scalars(self, step, values)
        if step == 2:
            os.kill(os.getpid(), signal.SIGTERM)
    Tracker.scalars = scalars
"""


def test_a_signal_after_the_agreement_stops_every_process_at_the_next_step(tiny_dataset, tmp_path):
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SIGNAL_AFTER_AGREEING)
    run = tmp_path / "run"
    path = os.pathsep.join([str(hook), *filter(None, [os.environ.get("PYTHONPATH")])])
    proc = subprocess.run(
        [sys.executable, "-m", "pix2pix", "train", *map(str, [
            "--data", tiny_dataset, "--out", run, "--max-steps", 50, "--log-every", 1,
            "--num-processes", 2, "--tensorboard", "off", "--arch", "unet_128", "--base-channels", 8,
            "--set", "model.d_base_channels=8", "--image-size", 128, "--batch-size", 1,
            "--no-progress", "--device", "cpu"])],
        capture_output=True, text=True, timeout=150, env=dict(env(), PYTHONPATH=path))
    assert proc.returncode == 130, proc.stderr[-2000:]
    # Rank 0 had already agreed to run step 3: both processes stop after it, together.
    assert json.loads((run / "latest.json").read_text())["step"] == 3
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [1, 2, 3]
    assert json.loads((run / "status.json").read_text())["state"] == "interrupted"
