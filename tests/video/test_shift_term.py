"""The shift-equivariance training term: zero for a network that commutes with shifts, positive
for one that does not, and wired into train_step with its own metric."""
from __future__ import annotations

import torch

from pix2pix.training.step import StepConfig, shift_equivariance_loss, train_step


def test_zero_for_convolutions_positive_for_pooling():
    x = torch.randn(2, 3, 40, 40)
    conv = torch.nn.Conv2d(3, 3, 3, padding=1)
    # Stride 5: no shift of 1..4 px is a multiple of it, so every draw breaks the pooling grid.
    pool = torch.nn.Sequential(torch.nn.AvgPool2d(5), torch.nn.Upsample(scale_factor=5))
    for seed in range(5):  # several random shifts, the interior comparison must hold for each
        torch.manual_seed(seed)
        with torch.no_grad():
            assert float(shift_equivariance_loss(conv, x, conv(x), 4)) < 1e-6
            assert float(shift_equivariance_loss(pool, x, pool(x), 4)) > 0.05


def test_train_step_reports_and_optimises_the_term(one_thread):
    from pix2pix.config import ModelConfig
    from pix2pix.models import build_discriminator, build_generator

    cfg = ModelConfig(generator="unet_128", base_channels=4, d_base_channels=4)
    g, d = build_generator(cfg), build_discriminator(cfg)
    opt_g, opt_d = (torch.optim.Adam(m.parameters(), lr=1e-3) for m in (g, d))
    a, b = torch.rand(2, 3, 128, 128) * 2 - 1, torch.rand(2, 3, 128, 128) * 2 - 1
    assert "loss/g_shift" not in train_step(g, d, opt_g, opt_d, a, b, StepConfig())
    metrics = train_step(g, d, opt_g, opt_d, a, b, StepConfig(shift_weight=10.0))
    assert float(metrics["loss/g_shift"]) > 0


def test_train_config_key_reaches_the_step(tiny_dataset, tmp_path, one_thread):
    """`--set shift_weight=W` (TrainConfig.shift_weight) adds the term, logged as loss/g_shift."""
    import json

    from pix2pix import train
    from pix2pix.config import DataConfig, ModelConfig, TrainConfig

    cfg = TrainConfig(model=ModelConfig(generator="unet_128", base_channels=8, d_base_channels=8),
                      data=DataConfig(root=str(tiny_dataset), image_size=128, workers=0), out=str(tmp_path / "run"),
                      max_steps=2, log_every=1, sample_every=100, checkpoint_every=100, shift_weight=10.0,
                      tensorboard="off", device="cpu")
    run = train(cfg, progress=False)
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert any(line.get("loss/g_shift", 0) > 0 for line in lines), lines
