"""Adversarial, reconstruction and feature-matching losses.

Discriminator outputs are raw logits of any shape: one tensor, or a list of them (a multi-scale D,
one map per scale), whose losses are averaged over the scales; ``as_outputs`` is the one place
that tells the two apart.
"""
from __future__ import annotations

from typing import Sequence, Union

import torch
import torch.nn.functional as F

# What a discriminator's forward returns: one logit map, or one per scale.
DOutput = Union[torch.Tensor, Sequence[torch.Tensor]]


def as_outputs(pred: DOutput) -> list[torch.Tensor]:
    """A discriminator's output as a list of logit maps (one per scale)."""
    return [pred] if isinstance(pred, torch.Tensor) else list(pred)


def as_feature_scales(features: Sequence) -> list[list[torch.Tensor]]:
    """D's intermediate activations as one list per scale (a single-scale D gives one list)."""
    return [list(features)] if features and isinstance(features[0], torch.Tensor) else [list(f) for f in features]


def _over_scales(losses: list[torch.Tensor]) -> torch.Tensor:
    # One scale: its loss itself (not x / 1), so single-D training stays bit-identical.
    return losses[0] if len(losses) == 1 else torch.stack(losses).mean()


def discriminator_loss(mode: str, real: DOutput, fake: DOutput) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss on real logits, loss on fake logits), each averaged over D's scales; the caller halves
    their sum, as the paper does."""
    pairs = [_discriminator_loss(mode, r.float(), f.float())
             for r, f in zip(as_outputs(real), as_outputs(fake), strict=True)]
    return _over_scales([p[0] for p in pairs]), _over_scales([p[1] for p in pairs])


def _discriminator_loss(mode: str, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if mode == "vanilla":
        return (F.binary_cross_entropy_with_logits(real, torch.ones_like(real)),
                F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
    if mode == "lsgan":
        return F.mse_loss(real, torch.ones_like(real)), F.mse_loss(fake, torch.zeros_like(fake))
    if mode == "hinge":
        return F.relu(1.0 - real).mean(), F.relu(1.0 + fake).mean()
    raise ValueError(f"unknown GAN loss mode {mode!r}; choose vanilla, lsgan or hinge")


def generator_adversarial_loss(mode: str, fake: DOutput) -> torch.Tensor:
    """The generator's adversarial loss on D's logits for its outputs (non-saturating for vanilla),
    averaged over D's scales."""
    return _over_scales([_generator_adversarial_loss(mode, f.float()) for f in as_outputs(fake)])


def _generator_adversarial_loss(mode: str, fake: torch.Tensor) -> torch.Tensor:
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


def feature_matching_loss(fake: Sequence, real: Sequence) -> torch.Tensor:
    """pix2pixHD's feature matching: L1 between D's activations on the fake and the real pair.

    ``fake``/``real``: D's features (one list of (N, C_k, H_k, W_k) maps, or one list per scale);
    the real ones are targets (detached here). Per scale the L1s of its layers are summed with
    weight 4 / layers, then the scales are averaged, as in pix2pixHD, so its weight 10 means the same
    here. 0 for identical features; grows with their distance.
    """
    fake_scales, real_scales = as_feature_scales(fake), as_feature_scales(real)
    per_scale = []
    for f_layers, r_layers in zip(fake_scales, real_scales, strict=True):
        if len(f_layers) != len(r_layers) or not f_layers:
            raise ValueError(f"feature matching needs the same, non-zero number of feature maps on "
                             f"both sides, got {len(f_layers)} and {len(r_layers)}")
        l1 = [(f.float() - r.detach().float()).abs().mean() for f, r in zip(f_layers, r_layers)]
        per_scale.append(torch.stack(l1).sum() * (4.0 / len(l1)))
    return torch.stack(per_scale).mean()
