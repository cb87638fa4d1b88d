"""One pix2pix iteration as a pure function: a D step, then a G step, on one batch."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from .losses import (DOutput, as_outputs, discriminator_loss, feature_matching_loss, generator_adversarial_loss,
                     l1_loss)
from ..models.layers import set_requires_grad
from .distill import DistillTargets, attention_loss


@dataclass(frozen=True)
class StepConfig:
    gan_mode: str = "vanilla"
    gan_weight: float = 1.0
    l1_weight: float = 100.0
    # D sees (input, output) when conditional; only the output for the unconditional ablation.
    conditional: bool = True
    # Mixed precision: forward passes under autocast to this dtype (None: fp32).
    amp_dtype: Optional[torch.dtype] = None
    # One D forward on [real; fake] instead of two. Only equivalent when D has no batch norm
    # (batch statistics would mix real and fake); the loop turns it on for instance/no norm.
    fuse_d: bool = False
    # Weight of the perceptual loss (train_step's ``perceptual`` module); 0 as in the paper.
    perceptual_weight: float = 0.0
    # Shift equivariance (video: less flicker): weight of |G(shift(a)) - shift(G(a))| on the
    # interior, for a random shift of up to shift_max px per step (0: off; one more G pass).
    shift_weight: float = 0.0
    shift_max: int = 4
    # Distillation (`pix2pix distill`): weights of L1 to the teacher's output and of the
    # attention-transfer loss on decoder features; used when train_step gets ``distill`` targets.
    teacher_weight: float = 0.0
    feature_weight: float = 0.0
    # Weight of the feature-matching loss: L1 between D's activations on real and fake pairs
    # (pix2pixHD; one more D forward, on the real pair, per G step). 0 as in the paper.
    feature_matching_weight: float = 0.0
    # R1 gradient penalty on D's real pairs (0: off); weight gamma of gamma/2 * |grad D(real)|^2.
    r1_weight: float = 0.0
    # Lazy R1 (StyleGAN2): the penalty on every r1_every-th D step only, weighted r1_every times,
    # so the other steps skip its second backward pass (and keep fuse_d) (1: every step).
    r1_every: int = 1

    @property
    def r1_window(self) -> int:
        """How many steps one lazy-R1 window spans (1 when every step is alike: R1 eager or off)."""
        return max(1, self.r1_every) if self.r1_weight > 0 else 1


def r1_due(cfg: StepConfig, step: int) -> bool:
    """Whether the D step of iteration ``step`` (0-based) carries the R1 penalty: the last step
    of each window of ``cfg.r1_every``, so a log every multiple of r1_every steps shows it."""
    return cfg.r1_weight > 0 and (step + 1) % cfg.r1_window == 0


def _d_input(real_a: torch.Tensor, b: torch.Tensor, conditional: bool) -> torch.Tensor:
    return torch.cat([real_a, b], dim=1) if conditional else b


def _autocast(device: torch.device, dtype: Optional[torch.dtype]):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def shift_equivariance_loss(generator: nn.Module, real_a: torch.Tensor, fake_b: torch.Tensor,
                            max_shift: int) -> torch.Tensor:
    """L1 between G's output for ``real_a`` shifted by a random (dx, dy) in [-max_shift, max_shift]
    and ``fake_b`` (= G(real_a), (N, C, H, W)) shifted the same way, over the pixels both see.

    The shifted input is cut from a reflection-padded copy, so it keeps the image's size (the U-Net
    needs its multiple); the border that padding invents is left out of the comparison.
    """
    m = max_shift
    dx, dy = (int(v) for v in torch.randint(-m, m + 1, (2,)))
    if dx == 0 and dy == 0:
        dx = m
    h, w = real_a.shape[-2:]
    padded = torch.nn.functional.pad(real_a, (m, m, m, m), mode="reflect")
    shifted_out = generator(padded[..., m + dy:m + dy + h, m + dx:m + dx + w])
    # shifted_out[y, x] sees real_a[y + dy, x + dx], whose output is fake_b[y + dy, x + dx].
    ys, xs = slice(max(0, -dy) + m, h - max(0, dy) - m), slice(max(0, -dx) + m, w - max(0, dx) - m)
    ys_b, xs_b = slice(ys.start + dy, ys.stop + dy), slice(xs.start + dx, xs.stop + dx)
    return (shifted_out[..., ys, xs].float() - fake_b[..., ys_b, xs_b].float()).abs().mean()


def _judge_fake(discriminator: nn.Module, real_a: torch.Tensor, real_b: torch.Tensor,
                fake_b: torch.Tensor, cfg: StepConfig,
                augment: Optional[nn.Module] = None) -> tuple[DOutput, Optional[torch.Tensor]]:
    """D's logits on the fake pair for G's step, and the feature-matching loss (None when off):
    D's activations on the real pair are the targets, computed without a graph. ``augment``
    transforms what D sees (with feature matching, one draw for the fake and the real pair)."""
    fake_in = _d_input(real_a, fake_b, cfg.conditional)
    if cfg.feature_matching_weight <= 0:
        return discriminator(augment(fake_in) if augment is not None else fake_in), None
    real_in = _d_input(real_a, real_b, cfg.conditional)
    if augment is not None:
        # One draw over [fake | real] channels: feature matching compares like with like.
        both = augment(torch.cat([fake_in, real_in], dim=1))
        fake_in, real_in = both[:, :fake_in.shape[1]], both[:, fake_in.shape[1]:]
    pred_fake, feats_fake = discriminator(fake_in, features=True)
    with torch.no_grad():
        _, feats_real = discriminator(real_in.detach(), features=True)
    return pred_fake, feature_matching_loss(feats_fake, feats_real)


def train_step(generator: nn.Module, discriminator: nn.Module, opt_g: torch.optim.Optimizer,
               opt_d: torch.optim.Optimizer, real_a: torch.Tensor, real_b: torch.Tensor,
               cfg: StepConfig, *, scaler: Optional[torch.amp.GradScaler] = None,
               frozen_discriminator: Optional[nn.Module] = None,
               perceptual: Optional[nn.Module] = None,
               distill: Optional[DistillTargets] = None,
               augment: Optional[nn.Module] = None, step: int = 0) -> dict[str, torch.Tensor]:
    """Update D then G on ``real_a`` (N, C_in, H, W) -> ``real_b`` (N, C_out, H, W), both in [-1, 1].

    ``scaler`` (fp16) scales both losses; it is updated once, after both steps.
    ``frozen_discriminator`` is the same D used for the G step: the bare module when
    ``discriminator`` is a DDP wrapper, whose gradient hooks must not fire when D is frozen.
    ``perceptual`` (fake, real) -> scalar is added to G's loss times ``cfg.perceptual_weight``.
    ``distill`` (teacher output and feature maps) adds ``teacher_weight * L1(fake, teacher)`` and
    ``feature_weight * attention loss`` to G's loss; D still sees the real target as real.
    ``augment`` (a PairAugment) transforms every pair D sees, real and fake, in both steps (one
    draw per image over the pair's channels); G's own losses never see it.
    ``step`` (the 0-based iteration) decides whether this D step carries a lazy R1 penalty (r1_due).
    Returns detached scalar losses keyed like ``loss/g_l1``; reading them is left to the caller so
    that a GPU step does not wait on a host sync.
    """
    amp = _autocast(real_a.device, cfg.amp_dtype)
    d_for_g = frozen_discriminator if frozen_discriminator is not None else discriminator

    def backward_step(loss: torch.Tensor, opt: torch.optim.Optimizer) -> None:
        if scaler is None:
            loss.backward()
            opt.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(opt)

    taps = distill.taps if distill is not None else None
    if taps is not None:
        taps.take()  # drop maps left by sampling/validation forwards
    with amp:
        fake_b = generator(real_a)
    # The student's decoder maps, collected by hooks during that forward (feature distillation).
    student_features = taps.take() if taps is not None else []
    metrics: dict[str, torch.Tensor] = {}
    use_gan = cfg.gan_weight > 0
    with_r1 = use_gan and r1_due(cfg, step)

    if use_gan:
        # D step: the fake is detached so no gradient flows into G.
        set_requires_grad(discriminator, True)
        opt_d.zero_grad(set_to_none=True)
        with amp:
            real_in = _d_input(real_a, real_b, cfg.conditional)
            fake_in = _d_input(real_a, fake_b.detach(), cfg.conditional)
            if augment is not None:
                real_in, fake_in = augment(real_in), augment(fake_in)
            if with_r1:
                real_in = real_in.detach().requires_grad_(True)
            if cfg.fuse_d and not with_r1:
                both = as_outputs(discriminator(torch.cat([real_in, fake_in.to(real_in.dtype)])))
                pred_real, pred_fake = [p.chunk(2)[0] for p in both], [p.chunk(2)[1] for p in both]
            else:
                pred_real, pred_fake = discriminator(real_in), discriminator(fake_in)
            loss_real, loss_fake = discriminator_loss(cfg.gan_mode, pred_real, pred_fake)
            # Halved to slow D relative to G (paper, section 3.3).
            loss_d = 0.5 * (loss_real + loss_fake)
            if with_r1:
                from .augment import r1_penalty

                d_r1 = r1_penalty(as_outputs(pred_real), real_in)
                loss_d = loss_d + 0.5 * cfg.r1_weight * cfg.r1_window * d_r1
                metrics["loss/d_r1"] = d_r1.detach()
        backward_step(loss_d, opt_d)
        metrics.update({"loss/d_real": loss_real.detach(), "loss/d_fake": loss_fake.detach()})

    # G step: D's weights are frozen so their gradients are not computed at all.
    set_requires_grad(d_for_g, False)
    opt_g.zero_grad(set_to_none=True)
    with amp:
        loss_g = torch.zeros((), device=real_a.device)
        if use_gan:
            pred_fake, g_fm = _judge_fake(d_for_g, real_a, real_b, fake_b, cfg, augment)
            if g_fm is not None:
                loss_g = loss_g + cfg.feature_matching_weight * g_fm
                metrics["loss/g_feature_matching"] = g_fm.detach()
            g_gan = generator_adversarial_loss(cfg.gan_mode, pred_fake)
            loss_g = loss_g + cfg.gan_weight * g_gan
            metrics["loss/g_gan"] = g_gan.detach()
        g_l1 = l1_loss(fake_b.float(), real_b.float())
        if cfg.l1_weight > 0:
            loss_g = loss_g + cfg.l1_weight * g_l1
        if perceptual is not None and cfg.perceptual_weight > 0:
            g_perceptual = perceptual(fake_b, real_b)
            loss_g = loss_g + cfg.perceptual_weight * g_perceptual
            metrics["loss/g_perceptual"] = g_perceptual.detach()
        if cfg.shift_weight > 0:
            g_shift = shift_equivariance_loss(generator, real_a, fake_b, cfg.shift_max)
            loss_g = loss_g + cfg.shift_weight * g_shift
            metrics["loss/g_shift"] = g_shift.detach()
        if distill is not None:
            g_teacher = l1_loss(fake_b.float(), distill.output)
            loss_g = loss_g + cfg.teacher_weight * g_teacher
            metrics["loss/g_teacher"] = g_teacher.detach()
            if cfg.feature_weight > 0:
                g_feat = attention_loss(student_features, distill.features)
                loss_g = loss_g + cfg.feature_weight * g_feat
                metrics["loss/g_feature"] = g_feat.detach()
    backward_step(loss_g, opt_g)
    if scaler is not None:
        scaler.update()
    metrics["loss/g_l1"] = g_l1.detach()
    return metrics
