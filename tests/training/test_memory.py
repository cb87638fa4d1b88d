"""`pix2pix train --memory`: real training steps of the run's configuration in a fresh process, and
their peak memory: at least what the weights and Adam's state must take, more at a larger batch."""
import re

import pytest

from pix2pix.cli import main
from pix2pix.config import ModelConfig
from pix2pix.models import build_discriminator, build_generator

pytestmark = pytest.mark.usefixtures("one_thread")
WIDTH = 32


def plan(capsys, data, out, batch: int) -> float:
    assert main(["train", "--data", str(data), "--out", str(out), "--arch", "unet_256",
                 "--base-channels", str(WIDTH), "--image-size", "256", "--batch-size", str(batch),
                 "--device", "cpu", "--precision", "fp32", "--memory"]) == 0
    printed = capsys.readouterr().out
    assert "dry run:" in printed
    found = re.search(rf"memory: 2 training steps at batch {batch}, 256x256 px on cpu peaked at "
                      r"([0-9.]+) GiB \(RAM, resident", printed)
    assert found, printed
    return float(found.group(1)) * 2**30


def test_memory_plan_counts_the_weights_the_optimiser_and_the_batch(tiny_dataset, tmp_path, capsys):
    cfg = ModelConfig(generator="unet_256", base_channels=WIDTH)
    params = sum(p.numel() for m in (build_generator(cfg), build_discriminator(cfg)) for p in m.parameters())
    one = plan(capsys, tiny_dataset, tmp_path / "run", 1)
    # fp32 weights, gradients and Adam's two moments: 16 bytes a parameter at the least.
    assert one >= 0.9 * 16 * params
    assert one < 4 * 2**30
    four = plan(capsys, tiny_dataset, tmp_path / "run", 4)
    assert four > one + 150 * 2**20  # three more images' activations, kept for backward (~75 MB each)
    assert not (tmp_path / "run").exists()  # a dry run writes nothing


def test_the_memory_plan_runs_a_lazy_r1_step():
    """The plan's few steps include one with the lazy R1 penalty, the step that holds the most
    (R1 on every 16th step would otherwise never run in a 2-step plan)."""
    from pix2pix.config import TrainConfig
    from pix2pix.training.memory import trial_config
    from pix2pix.training.step import StepConfig, r1_due

    cfg = TrainConfig(r1_weight=0.1)
    assert cfg.r1_every == 16
    trial = trial_config(cfg, "/tmp/unused", steps=2)
    due = [r1_due(StepConfig(r1_weight=trial.r1_weight, r1_every=trial.r1_every), i) for i in range(2)]
    assert due == [False, True] and trial.max_steps == 2 and trial.val_every == 0
