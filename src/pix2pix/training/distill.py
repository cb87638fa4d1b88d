"""Distillation targets: a frozen teacher's outputs (cached when they repeat) and feature maps.

The training loop asks a :class:`Teacher` for the targets of each batch and hands them to
:func:`~pix2pix.training.step.train_step`; everything else (data order, resume, checkpoints,
validation, DDP) is ordinary training. The teacher never changes and runs in eval mode (dropout
off, batch norm with its running statistics), so its output for a given input is a fixed function
of that input: when the jitter is off the same crop comes back every epoch and is cached, and a
resumed run recomputes exactly what the uninterrupted run had cached.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from ..checkpoint import load_pretrained, resolve_pretrained
from ..config import DistillConfig, TrainConfig
from ..models.layers import as_tested

log = logging.getLogger(__name__)

# Attention transfer compares the decoder outputs at these levels (1: half the input size, ...);
# the high-resolution levels carry the layout a student must reproduce.
FEATURE_LEVELS = (1, 2, 3)


@dataclass
class DistillTargets:
    """What the student is pulled towards on one batch."""

    output: torch.Tensor  # (N, C_out, H, W) teacher output in [-1, 1]
    features: list[torch.Tensor] = field(default_factory=list)  # (N, H_l * W_l) attention maps
    taps: Optional["FeatureTaps"] = None  # collects the student's maps during its forward


class FeatureTaps:
    """Forward hooks on a U-Net-family generator's decoder levels ``up.{level}``."""

    def __init__(self, generator: nn.Module, levels: tuple[int, ...] = FEATURE_LEVELS, *,
                 training_only: bool = False) -> None:
        up = getattr(generator, "up", None)
        if not isinstance(up, nn.ModuleList) or len(up) <= max(levels):
            raise ValueError(f"feature distillation needs a U-Net-family generator with decoder "
                             f"levels {levels}; {type(generator).__name__} has none; use "
                             f"--feature-weight 0")
        self.outputs: list[torch.Tensor] = []
        # The student's maps matter only in training steps: sampling and validation forwards (eval
        # mode) would otherwise pile up maps until the next step.
        self.training_only = training_only
        self.handles = [up[level].register_forward_hook(self._keep) for level in levels]

    def _keep(self, module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        if module.training or not self.training_only:
            self.outputs.append(output)

    def take(self) -> list[torch.Tensor]:
        out, self.outputs = self.outputs, []
        return out

    def close(self) -> None:
        for h in self.handles:
            h.remove()


def attention(feature: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, H*W): where the network is active, channel-count independent
    (Zagoruyko & Komodakis 2017), so a narrow student can match a wide teacher without adapters."""
    return F.normalize(feature.float().pow(2).mean(1).flatten(1), dim=1)


def attention_loss(student: list[torch.Tensor], teacher: list[torch.Tensor]) -> torch.Tensor:
    return sum(((attention(s) - t) ** 2).sum(1).mean() for s, t in zip(student, teacher)) / len(teacher)


def teacher_checkpoint(path: str | Path) -> Optional[Path]:
    """The checkpoint folder holding the teacher's discriminator, if ``path`` comes from a run."""
    model_dir = resolve_pretrained(path)
    ckpt = model_dir.parent
    return ckpt if (ckpt / "discriminator.safetensors").is_file() else None


def jitter_is_fixed(cfg: TrainConfig) -> bool:
    """True when every epoch shows each training pair with the same crop (teacher outputs repeat)."""
    return cfg.data.preprocess in ("none", "resize") and not cfg.data.flip


class Teacher:
    """A frozen generator whose outputs (and decoder attention maps) the student learns."""

    def __init__(self, cfg: TrainConfig, device: torch.device) -> None:
        d: DistillConfig = cfg.distill
        self.path = d.teacher
        self.generator, self.info = load_pretrained(d.teacher, device=device)
        # The student learns what the teacher translates (each image with its own statistics, for
        # a paper-recipe or imported teacher).
        self.generator = as_tested(self.generator, self.info.model.test_statistics)
        self.generator.eval().requires_grad_(False)
        if self.info.model.in_channels != cfg.model.in_channels or \
                self.info.model.out_channels != cfg.model.out_channels:
            raise ValueError(f"teacher {d.teacher} maps {self.info.model.in_channels} -> "
                             f"{self.info.model.out_channels} channels but the student is set to "
                             f"{cfg.model.in_channels} -> {cfg.model.out_channels}")
        if self.info.direction != cfg.data.direction:
            log.warning("teacher was trained %s but the student trains %s", self.info.direction,
                        cfg.data.direction)
        self.taps = FeatureTaps(self.generator) if d.feature_weight > 0 else None
        self.cache_on = d.cache == "auto" and jitter_is_fixed(cfg)
        self.cache_limit = d.cache_mb * 2**20
        self.cache: dict[str, tuple[torch.Tensor, list[torch.Tensor]]] = {}
        self.cache_bytes = 0
        log.info("teacher %s (%s, base %d), outputs %s", d.teacher, self.info.model.generator,
                 self.info.model.base_channels,
                 "cached (jitter off)" if self.cache_on else "computed every step")

    @torch.no_grad()
    def _run(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        out = self.generator(x).float()
        feats = [attention(f) for f in self.taps.take()] if self.taps is not None else []
        return out, feats

    def targets(self, names: list[str], real_a: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Teacher outputs (N, C_out, H, W) and attention maps for the batch ``real_a``."""
        if not self.cache_on:
            return self._run(real_a)
        missing = [i for i, n in enumerate(names) if n not in self.cache]
        if missing:
            out, feats = self._run(real_a[missing])
            for j, i in enumerate(missing):
                item = (out[j], [f[j] for f in feats])
                size = sum(t.numel() * t.element_size() for t in [item[0], *item[1]])
                if self.cache_bytes + size <= self.cache_limit:
                    self.cache[names[i]] = item
                    self.cache_bytes += size
            if len(missing) == len(names):
                return out, feats
        # Fully or partly cached: recompute whatever did not fit (identical values: eval mode).
        rows = [self.cache.get(n) for n in names]
        if any(r is None for r in rows):
            return self._run(real_a)
        out = torch.stack([r[0] for r in rows])
        feats = [torch.stack([r[1][k] for r in rows]) for k in range(len(rows[0][1]))]
        return out, feats

    def init_discriminator(self, discriminator: nn.Module) -> bool:
        """Copy the teacher run's D into ``discriminator`` when shapes match; True if copied."""
        ckpt = teacher_checkpoint(self.path)
        if ckpt is None:
            log.info("teacher has no discriminator beside it: D starts from scratch")
            return False
        state = load_file(str(ckpt / "discriminator.safetensors"))
        own = discriminator.state_dict()
        if set(state) != set(own) or any(state[k].shape != own[k].shape for k in own):
            log.warning("teacher discriminator in %s has another shape: D starts from scratch", ckpt)
            return False
        discriminator.load_state_dict(state)
        log.info("D initialised from the teacher's discriminator (%s)", ckpt)
        return True


__all__ = ["DistillTargets", "FeatureTaps", "Teacher", "attention", "attention_loss",
           "teacher_checkpoint", "jitter_is_fixed", "FEATURE_LEVELS"]
