"""Image-quality metrics on (N, C, H, W) tensors in [-1, 1], and evaluation of a Translator."""
from __future__ import annotations

from typing import Iterable

import torch


def l1(fake: torch.Tensor, real: torch.Tensor) -> float:
    """Mean absolute error in [-1, 1] units (the training loss's scale)."""
    return float((fake.float() - real.float()).abs().mean())


def psnr(fake: torch.Tensor, real: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB with images mapped to [0, 1], averaged over the batch."""
    a = fake.float().add(1).div(2).clamp(0, 1)
    b = real.float().add(1).div(2).clamp(0, 1)
    mse = (a - b).pow(2).flatten(1).mean(1).clamp_min(1e-12)
    return float((10 * torch.log10(1.0 / mse)).mean())


def evaluate_pairs(translator, items: Iterable[dict]) -> dict[str, float]:
    """Average L1 and PSNR of the translator's outputs over dataset items (``input``/``target``)."""
    totals = {"l1": 0.0, "psnr": 0.0}
    n = 0
    for item in items:
        fake = translator.translate_tensor(item["input"][None])
        target = item["target"][None].to(fake.device)
        totals["l1"] += l1(fake, target)
        totals["psnr"] += psnr(fake, target)
        n += 1
    if n == 0:
        raise ValueError("nothing to evaluate: the split is empty")
    return {k: v / n for k, v in totals.items()} | {"count": n}
