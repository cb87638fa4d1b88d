"""Time-capped and interrupted runs tell the truth (issue 20, items 3, 4 and 7): the bar and the
ETA follow whichever limit ends the run first, status.json and report.html say why it stopped,
every clean stop writes a sample grid, a distillation writes its closing table, and a plain
training config carries no distill block."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from pix2pix.cli import main
from pix2pix.config import DataConfig, ModelConfig, TrainConfig
from pix2pix.training import train
from pix2pix.training.budget import Budget, readable_duration

TINY = ModelConfig(generator="unet_128", base_channels=8, d_base_channels=8)
SMALL = ["--image-size", "128", "--batch-size", "2", "--set", "model.d_base_channels=8",
         "--set", "tensorboard=off", "--seed", "3"]
pytestmark = pytest.mark.usefixtures("one_thread")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_budget_follows_the_limit_that_comes_first():
    clock = Clock()
    b = Budget(26800, 60.0, 0, clock(), clock=clock)
    b.observe(1)  # the first step sets the origin (its warm-up is not the rate)
    clock.now += 10
    b.observe(21)  # 2 it/s, 10 s spent, 50 s left: the time cap ends the run near step 121
    assert b.ends_by() == "max_time" and b.expected_last_step() == 121
    status = b.status()
    assert status["eta_s"] == 50 and status["eta"] == "50 s" and status["max_time_s"] == 60.0
    uncapped = Budget(26800, None, 0, clock(), clock=clock)
    uncapped.observe(1)
    clock.now += 10
    uncapped.observe(21)
    assert uncapped.ends_by() == "steps" and uncapped.expected_last_step() == 26800
    assert uncapped.status()["eta"] == readable_duration(26779 / 2) == "3 h 43 min"
    roomy = Budget(30, 3600.0, 0, clock(), clock=clock)  # 30 steps long before an hour
    roomy.observe(1)
    clock.now += 1
    roomy.observe(3)
    assert roomy.ends_by() == "steps" and roomy.expected_last_step() == 30 and roomy.eta_s() == 13.5


def test_time_capped_train_reports_why_and_shows_a_sample(tiny_dataset, tmp_path, capsys, caplog):
    run = tmp_path / "run"
    # sample_every stays at its default (500): the stop itself must write the grid.
    assert main(["train", "--data", str(tiny_dataset), "--out", str(run), "--arch", "unet_128",
                 "--base-channels", "8", "--max-time", "0.001", *SMALL]) == 0
    captured = capsys.readouterr()
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "stopped (max_time)" and status["step"] == 1
    assert "time budget" in status["stop_reason"] and "step 1 of" in status["stop_reason"]
    assert "eta_s" not in status and "eta" not in status  # no estimate left over from the run
    assert [p.name for p in (run / "samples").glob("*.png")] == ["step_00000001.png"]
    report = (run / "report.html").read_text()
    assert "time budget" in report and "samples/step_00000001.png" in report
    assert "1/1 [" in captured.err  # the bar ends where the run did, not at 1/400
    saved = json.loads((run / "config.json").read_text())
    assert "distill" not in saved and "distill" not in json.loads(captured.out[:captured.out.rindex("}") + 1])
    # A resumed run says that --max-time starts afresh.
    with caplog.at_level("INFO", logger="pix2pix.training.loop"):
        assert main(["train", "--out", str(run), "--resume", "--max-time", "0.001", "--no-progress"]) == 0
    assert "fresh budget" in caplog.text
    assert json.loads((run / "status.json").read_text())["step"] == 2


def test_running_status_has_a_readable_eta_capped_by_the_time(tiny_dataset, tmp_path):
    """While the run goes on, status.json's ETA is the time to whichever limit comes first."""
    cfg = TrainConfig(model=TINY, data=DataConfig(root=str(tiny_dataset), image_size=128),
                      out=str(tmp_path / "r"), batch_size=2, epochs=5000, decay_epochs=0, log_every=1,
                      sample_every=2, checkpoint_every=1000, tensorboard="off", max_time=3600.0,
                      max_steps=4)
    seen = []
    from pix2pix.training import loop as loop_module

    real = loop_module.write_report

    def spy(run_dir, *, status, **kw):  # records what each report said; the report is still written
        seen.append(dict(status))
        return real(run_dir, status=status, **kw)

    loop_module.write_report = spy
    try:
        train(cfg, progress=False)
    finally:
        loop_module.write_report = real
    running = [s for s in seen if s["state"] == "running" and "eta_s" in s]
    assert running and all(s["eta_s"] <= 3600 and s["eta"] for s in running)
    assert all(s["ends_by"] == "steps" for s in running if s["step"] >= 2)  # 4 steps beat an hour
    assert seen[-1]["state"] == "finished" and seen[-1]["stop_reason"] == "finished: all 4 steps done"


def test_time_capped_distill_writes_its_closing_table(tiny_dataset, lively_model_dir, tmp_path, capsys):
    run = tmp_path / "student"
    assert main(["distill", "--teacher", str(lively_model_dir), "--student", "unet_128",
                 "--base-channels", "8", "--data", str(tiny_dataset), "--out", str(run),
                 "--table-split", "val", "--table-backends", "eager", "--max-time", "0.001", "--no-progress", *SMALL]) == 0
    out = capsys.readouterr().out
    assert "teacher vs student" in out and "stopped (max_time)" in out
    table = (run / "distill_table.md").read_text()
    assert "teacher" in table and "student" in table
    assert json.loads((run / "status.json").read_text())["state"] == "stopped (max_time)"
    assert "distill" in json.loads((run / "config.json").read_text())  # it applies here


def test_interrupted_distill_writes_its_closing_table(tiny_dataset, lively_model_dir, tmp_path):
    run = tmp_path / "student"
    proc = subprocess.Popen([sys.executable, "-m", "pix2pix", "distill", "--teacher", str(lively_model_dir),
                             "--student", "unet_128", "--base-channels", "8", "--data", str(tiny_dataset),
                             "--out", str(run), "--table-split", "val", "--table-backends", "eager", "--no-progress", "--max-steps",
                             "100000", "--log-every", "1", *SMALL],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        log = run / "metrics.jsonl"
        if log.exists() and len(log.read_text().splitlines()) >= 2:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err[-3000:]
    assert json.loads((run / "status.json").read_text())["state"] == "interrupted"
    assert "teacher vs student" in out and (run / "distill_table.md").is_file()
    assert list((run / "samples").glob("step_*.png"))  # the stop wrote a grid
