"""Adversarial and reconstruction losses. Discriminator outputs are raw logits, any shape."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def discriminator_loss(mode: str, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss on real logits, loss on fake logits); the caller halves their sum, as the paper does."""
    if mode == "vanilla":
        return (F.binary_cross_entropy_with_logits(real, torch.ones_like(real)),
                F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
    if mode == "lsgan":
        return F.mse_loss(real, torch.ones_like(real)), F.mse_loss(fake, torch.zeros_like(fake))
    if mode == "hinge":
        return F.relu(1.0 - real).mean(), F.relu(1.0 + fake).mean()
    raise ValueError(f"unknown GAN loss mode {mode!r}; choose vanilla, lsgan or hinge")


def generator_adversarial_loss(mode: str, fake: torch.Tensor) -> torch.Tensor:
    """The generator's adversarial loss on D's logits for its outputs (non-saturating for vanilla)."""
    if mode == "vanilla":
        return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
    if mode == "lsgan":
        return F.mse_loss(fake, torch.ones_like(fake))
    if mode == "hinge":
        return -fake.mean()
    raise ValueError(f"unknown GAN loss mode {mode!r}; choose vanilla, lsgan or hinge")


def l1_loss(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Mean absolute error between two (N, C, H, W) images in the same range."""
    return (fake - real).abs().mean()
