"""Generators whose output uses the whole range and depends on every layer, for tests that compare
a model's outputs across runtimes: untrained, the paper's N(0, 0.02) init gives a nearly constant
output, which would let a broken export, tiling or backend pass."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn


def enliven(generator: nn.Module, batch: Callable[[], torch.Tensor]) -> nn.Module:
    """He-scaled convolution weights, then batch-norm statistics measured on ``batch()`` (N, C, H, W)
    in [-1, 1] (a plain average over it; called after the weights are drawn, so a random batch
    comes after them in the seeded sequence); returns ``generator`` in eval mode."""
    for m in generator.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            fan_in = m.weight[0].numel() if isinstance(m, nn.Conv2d) else m.weight.shape[0] * 4
            nn.init.normal_(m.weight, 0.0, (2.0 / fan_in) ** 0.5)
        elif isinstance(m, nn.BatchNorm2d):
            m.momentum = None
            m.reset_running_stats()
    generator.train()
    with torch.no_grad():
        generator(batch())
    return generator.eval()
