"""A perceptual training loss on the LPIPS backbone (ImageNet AlexNet or VGG16 features).

The distance is LPIPS's with every learned head weight set to 1 (Zhang et al. 2018, "lin" off):
features at five ReLUs, unit-normalised over channels, squared differences summed over channels
and averaged over space, summed over the five taps. It uses only the backbone, not the heads
that `pix2pix evaluate` scores LPIPS with, so training does not optimise the very numbers the
held-out table reports. The weights are the ones ``pix2pix evaluate --install-lpips`` converts.
"""
from __future__ import annotations

import torch
from torch import nn

from ..metrics.lpips import LPIPS, load_lpips


class PerceptualLoss(nn.Module):
    """(N, 3, H, W), (N, 3, H, W) in [-1, 1] -> scalar >= 0 (0 when the images are equal).

    Frozen: gradients flow to the first argument (the generator's output) only. Images with 1
    channel are repeated to 3; other channel counts are refused.
    """

    def __init__(self, backbone: LPIPS) -> None:
        super().__init__()
        self.backbone = backbone.requires_grad_(False).eval()

    def train(self, mode: bool = True) -> "PerceptualLoss":
        # Always eval: the backbone has no dropout or norm, and it must never be trained.
        return super().train(False)

    @staticmethod
    def _rgb(x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            return x.expand(-1, 3, -1, -1)
        if x.shape[1] != 3:
            raise ValueError(f"the perceptual loss needs 1- or 3-channel images, got {x.shape[1]} "
                             f"channels; set perceptual_weight=0 for this dataset")
        return x

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        n = fake.shape[0]
        # One backbone pass over [fake; real]; the target half needs no graph.
        feats = self.backbone.features(torch.cat([self._rgb(fake).float(), self._rgb(real).float().detach()]))
        total = fake.new_zeros((), dtype=torch.float32)
        for f in feats:
            f = f / (f.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)
            total = total + (f[:n] - f[n:]).pow(2).sum(dim=1).mean()
        return total


def build_perceptual(net: str = "alex", *, device: str | torch.device = "cpu") -> PerceptualLoss:
    """The perceptual loss with its converted weights (raises LPIPSWeightsMissing, which says how
    to install them, when they are not on this machine)."""
    return PerceptualLoss(load_lpips(net, device=device))


__all__ = ["PerceptualLoss", "build_perceptual"]
