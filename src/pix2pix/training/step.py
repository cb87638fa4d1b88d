"""One pix2pix iteration as a pure function: a D step, then a G step, on one batch."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..losses import discriminator_loss, generator_adversarial_loss, l1_loss
from ..models.layers import set_requires_grad


@dataclass(frozen=True)
class StepConfig:
    gan_mode: str = "vanilla"
    gan_weight: float = 1.0
    l1_weight: float = 100.0
    # D sees (input, output) when conditional; only the output for the unconditional ablation.
    conditional: bool = True


def _d_input(real_a: torch.Tensor, b: torch.Tensor, conditional: bool) -> torch.Tensor:
    return torch.cat([real_a, b], dim=1) if conditional else b


def train_step(generator: nn.Module, discriminator: nn.Module, opt_g: torch.optim.Optimizer,
               opt_d: torch.optim.Optimizer, real_a: torch.Tensor, real_b: torch.Tensor,
               cfg: StepConfig) -> dict[str, torch.Tensor]:
    """Update D then G on ``real_a`` (N, C_in, H, W) -> ``real_b`` (N, C_out, H, W), both in [-1, 1].

    Returns detached scalar losses keyed like ``loss/g_l1``; reading them is left to the caller so
    that a GPU step does not wait on a host sync.
    """
    fake_b = generator(real_a)
    metrics: dict[str, torch.Tensor] = {}
    use_gan = cfg.gan_weight > 0

    if use_gan:
        # D step: the fake is detached so no gradient flows into G.
        set_requires_grad(discriminator, True)
        opt_d.zero_grad(set_to_none=True)
        loss_real, loss_fake = discriminator_loss(
            cfg.gan_mode, discriminator(_d_input(real_a, real_b, cfg.conditional)),
            discriminator(_d_input(real_a, fake_b.detach(), cfg.conditional)))
        # Halved to slow D relative to G (paper, section 3.3).
        loss_d = 0.5 * (loss_real + loss_fake)
        loss_d.backward()
        opt_d.step()
        metrics.update({"loss/d_real": loss_real.detach(), "loss/d_fake": loss_fake.detach()})

    # G step: D's weights are frozen so their gradients are not computed at all.
    set_requires_grad(discriminator, False)
    opt_g.zero_grad(set_to_none=True)
    loss_g = torch.zeros((), device=real_a.device)
    if use_gan:
        g_gan = generator_adversarial_loss(
            cfg.gan_mode, discriminator(_d_input(real_a, fake_b, cfg.conditional)))
        loss_g = loss_g + cfg.gan_weight * g_gan
        metrics["loss/g_gan"] = g_gan.detach()
    g_l1 = l1_loss(fake_b, real_b)
    if cfg.l1_weight > 0:
        loss_g = loss_g + cfg.l1_weight * g_l1
    loss_g.backward()
    opt_g.step()
    metrics["loss/g_l1"] = g_l1.detach()
    return metrics
