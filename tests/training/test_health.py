"""Signs of a failing run (training/health.py): each check on real image tensors, the monitor's
warn-once-and-clear, and a real run whose too-high learning rate saturates its outputs."""
import json
import logging

import pytest
import torch

from pix2pix.config import DataConfig, ModelConfig, TrainConfig
from pix2pix.training import train
from pix2pix.training.health import CHECKS, Evidence, HealthMonitor

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def pairs(world):
    """Four aligned (satellite, relief map) crops as (N, 3, 64, 64) tensors in [-1, 1]."""
    from conftest import cut_pairs

    crops = cut_pairs(world, 4, 64, seed=5)
    as_tensor = lambda i: torch.stack([torch.from_numpy(c[i].copy()).permute(2, 0, 1) for c in crops])  # noqa: E731
    return as_tensor(0).float() / 127.5 - 1, as_tensor(1).float() / 127.5 - 1


def seen(name, **evidence):
    return CHECKS[name].fn(Evidence(step=1000, **evidence))


def test_image_checks_flag_failures_and_pass_a_plausible_output(pairs):
    inputs, targets = pairs
    plausible = (0.8 * targets + 0.1 * torch.randn_like(targets)).clamp(-1, 1)
    for name in ("flat_output", "same_output", "copies_input"):
        assert seen(name, inputs=inputs, outputs=plausible, targets=targets) is None, name
        assert seen(name, inputs=inputs, outputs=targets, targets=targets) is None, name

    black = torch.full_like(targets, -1.0)
    assert "flat (black)" in seen("flat_output", inputs=inputs, outputs=black, targets=targets)
    assert "flat (white)" in seen("flat_output", inputs=inputs, outputs=-black, targets=targets)
    # Saturated but not flat (a +-1 pattern, as a far too high lr leaves on some CPUs): flagged,
    # unless the targets are themselves mostly at +-1 (line drawings).
    pattern = torch.where(targets > targets.mean(), 1.0, -1.0)
    assert "saturated: 100.0% of their values" in seen("flat_output", inputs=inputs, outputs=pattern,
                                                         targets=targets)
    assert seen("same_output", inputs=inputs, outputs=pattern[:1].expand_as(targets), targets=targets) is None
    assert seen("flat_output", inputs=inputs, outputs=pattern, targets=pattern.flip(3)) is None
    # One image for every input: not flat (it has detail), but the same whatever the input.
    same = targets[:1].expand_as(targets)
    assert seen("flat_output", inputs=inputs, outputs=same, targets=targets) is None
    assert "nearly the same output" in seen("same_output", inputs=inputs, outputs=same, targets=targets)
    # Targets that are all alike say nothing about the outputs being alike.
    assert seen("same_output", inputs=inputs, outputs=same, targets=same) is None
    assert "copies of the inputs" in seen("copies_input", inputs=inputs, outputs=inputs, targets=targets)


def test_discriminator_won_needs_a_sustained_near_zero_loss():
    won = {"loss/d_real": 0.01, "loss/d_fake": 0.012, "loss/g_l1": 0.2}
    healthy = {"loss/d_real": 0.4, "loss/d_fake": 0.5, "loss/g_l1": 0.2}
    assert "almost perfectly" in seen("discriminator_won", losses=[won] * 5)
    assert seen("discriminator_won", losses=[won] * 4) is None  # not sustained yet
    assert seen("discriminator_won", losses=[won] * 4 + [healthy]) is None
    assert seen("discriminator_won", losses=[{"loss/g_l1": 0.0}] * 5) is None  # no discriminator


def test_validation_worse_reads_lower_is_better_metrics_after_two_validations():
    rising = [(500, 0.20), (1000, 0.15), (1500, 0.17), (2000, 0.19)]
    assert "27% worse than its best (0.15 at step 1000)" in seen("validation_worse", validations=rising)
    assert seen("validation_worse", validations=rising[:3]) is None  # one validation after the best
    assert seen("validation_worse", validations=[(500, 0.2), (1000, 0.15), (1500, 0.16), (2000, 0.17)]) is None
    assert seen("validation_worse", validations=rising, metric="psnr") is None  # higher is better


def test_a_resumed_run_keeps_the_evidence_of_its_earlier_sessions(caplog):
    # The metrics log as a run that validated and logged D's losses before it was stopped left it.
    records = [{"step": 500, "val/l1": 0.20}, {"step": 1000, "val/l1": 0.15}, {"step": 1500, "val/l1": 0.17},
               *[{"step": 1500 + 50 * i, "loss/d_real": 0.01, "loss/d_fake": 0.02, "lr": 2e-4} for i in range(4)]]
    monitor = HealthMonitor(after=200)
    with caplog.at_level(logging.WARNING, logger="pix2pix"):
        monitor.replay(records)
    assert monitor.report() == [] and not caplog.records  # replaying warns of nothing
    monitor.validated(2000, {"l1": 0.19})  # the second validation after the best, 27% worse
    monitor.losses_logged(2000, {"loss/d_real": 0.01, "loss/d_fake": 0.02})  # the 5th such line
    assert {s["name"] for s in monitor.report()} == {"validation_worse", "discriminator_won"}
    fresh = HealthMonitor(after=200)  # without the replay, neither sign has its evidence yet
    fresh.validated(2000, {"l1": 0.19})
    fresh.losses_logged(2000, {"loss/d_real": 0.01, "loss/d_fake": 0.02})
    assert fresh.report() == []


def test_monitor_warns_once_clears_and_waits_for_its_start(pairs, caplog):
    inputs, targets = pairs
    flat = torch.zeros_like(targets)
    monitor = HealthMonitor(after=100)
    with caplog.at_level(logging.INFO, logger="pix2pix.training.health"):
        monitor.sampled(50, inputs, flat, targets)  # before `after`: nothing is checked
        assert monitor.report() == []
        monitor.sampled(100, inputs, flat, targets)
        monitor.sampled(200, inputs, flat, targets)
        [sign] = monitor.report()
        assert sign["name"] == "flat_output" and sign["step"] == 100 and "--lr" in sign["advice"]
        assert sum("flat" in r.message for r in caplog.records if r.levelno == logging.WARNING) == 1
        monitor.summarise()
        assert "ended with 1 sign(s) of trouble: the sample outputs are flat" in caplog.records[-1].message
        monitor.sampled(300, inputs, targets, targets)
        assert monitor.report() == []
        assert any("no longer seen" in r.message for r in caplog.records)


def test_a_run_with_a_far_too_high_learning_rate_says_so(tiny_dataset, tmp_path):
    """lr 0.2 saturates the tanh output within a few steps: status.json and report.html name it,
    with what to try; the same run at the default start of the checks says nothing yet."""
    def run(out, **kw):
        cfg = TrainConfig(model=ModelConfig(generator="unet_128", base_channels=8, d_base_channels=8),
                          data=DataConfig(root=str(tiny_dataset), image_size=128), out=str(out),
                          batch_size=2, epochs=100, decay_epochs=0, max_steps=8, log_every=1,
                          sample_every=2, checkpoint_every=100, seed=3, device="cpu", lr=0.2,
                          tensorboard="off", **kw)
        train(cfg, progress=False)
        return json.loads((out / "status.json").read_text()), (out / "report.html").read_text()

    status, html = run(tmp_path / "checked", health_after=4)
    assert [s["name"] for s in status["health"]] == ["flat_output"]
    # Flat on AVX-512 CPUs; a saturated +-1 pattern with AVX2's rounding (same check, same advice).
    assert any(f in status["health"][0]["seen"] for f in ("flat (white)", "flat (black)", "saturated"))
    assert "class='warn'" in html and "--lr 1e-4" in html
    status, html = run(tmp_path / "default")  # health_after 200 > 8 steps
    assert status["health"] == [] and "class='warn'" not in html
