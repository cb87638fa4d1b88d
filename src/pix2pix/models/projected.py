"""A discriminator on frozen pretrained features (projected / vision-aided GANs: Sauer et al. 2021,
Kumari et al. 2022): small trainable heads judge ImageNet AlexNet's activations of the pair.

A PatchGAN learns its features from the user's few hundred pairs, from scratch, while it judges; a
frozen ImageNet backbone already separates textures, edges and materials, so the heads only learn
where the fake's features differ from the real's. The backbone is the LPIPS AlexNet that ships in
the package (the training loop loads it into a new run: ``DiscriminatorSpec.backbone``); it stays
frozen (no gradient, no optimiser state) and is kept in the checkpoint so a run resumes without it.

Three taps (after AlexNet's ReLU 1, 2 and 5: about H/4, H/8, H/16), each normalised to unit length
over channels (LPIPS's normalisation: the heads see directions, not ImageNet's raw magnitudes).
The conditional form gives each head the input's features beside the output's.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .alex_unet import ALEXNET, IMAGENET_SCALE, IMAGENET_SHIFT, as_rgb, copy_convs
from .layers import Norm, check_norm, conv_bias, freeze, norm_layer

# AlexNet convolutions after which a head judges (indices into ALEXNET): ReLU 1, 2 and 5.
TAPS = (0, 1, 4)


def _unit(f: torch.Tensor) -> torch.Tensor:
    return f / (f.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)


class ProjectedDiscriminator(nn.Module):
    """(N, cond_channels + out_channels, H, W) in [-1, 1] -> a list of 3 logit maps (N, 1, H_k, W_k),
    finest first (H_k about H/4, H/8, H/16).

    The first ``cond_channels`` channels are the input (0: the unconditional form), the rest the
    output. ``forward(x, features=True)`` returns (that list, one list of head activations per tap)
    for the feature-matching loss. ``head_channels`` is each head's width.
    """

    def __init__(self, *, cond_channels: int = 3, out_channels: int = 3, head_channels: int = 128,
                 norm: Norm = "batch") -> None:
        super().__init__()
        check_norm(norm)
        self.cond_channels, self.out_channels = cond_channels, out_channels
        convs, c_in = [], 3
        for c_out, k, stride, pad, _ in ALEXNET:
            convs.append(nn.Conv2d(c_in, c_out, k, stride, pad))
            c_in = c_out
        # Frozen for good: the training step's set_requires_grad(D, True) leaves it off.
        self.backbone = freeze(nn.ModuleList(convs))
        self.register_buffer("shift", torch.tensor(IMAGENET_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(IMAGENET_SCALE).view(1, 3, 1, 1), persistent=False)
        sides = 2 if cond_channels else 1
        bias = conv_bias(norm)
        self._cond_cache: tuple | None = None  # (key, input, its features): _cond_features
        self.heads = nn.ModuleList(nn.Sequential(
            nn.Conv2d(sides * ALEXNET[t][0], head_channels, 3, 1, 1), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(head_channels, head_channels, 3, 1, 1, bias=bias), norm_layer(norm, head_channels),
            nn.LeakyReLU(0.2, inplace=True), nn.Conv2d(head_channels, 1, 1),
        ) for t in TAPS)

    def _features(self, x: torch.Tensor) -> list[torch.Tensor]:
        a = (as_rgb(x) - self.shift) / self.scale
        taps = []
        for i, conv in enumerate(self.backbone):
            if ALEXNET[i][4]:
                a = F.max_pool2d(a, 3, 2)
            a = F.relu(conv(a))
            if i in TAPS:
                taps.append(_unit(a))
        return taps

    def _cond_features(self, cond: torch.Tensor) -> list[torch.Tensor]:
        """The input's features, without gradient (the input is data). A training step judges one
        input three times (D on the real and the fake pair, then G's fake): they are computed
        once and reused while the same input comes back (compared by value, so never stale)."""
        key = (cond.shape, cond.dtype, cond.device, torch.is_autocast_enabled(cond.device.type))
        cached = self._cond_cache
        if cached is not None and cached[0] == key and torch.equal(cached[1], cond):
            return cached[2]
        with torch.no_grad():
            feats = self._features(cond)
        self._cond_cache = (key, cond.detach().clone(), feats)
        return feats

    def forward(self, x: torch.Tensor, *, features: bool = False):
        if x.shape[1] != self.cond_channels + self.out_channels:
            raise ValueError(f"the projected discriminator expects {self.cond_channels} input + "
                             f"{self.out_channels} output channels, got {x.shape[1]}")
        taps = self._features(x[:, self.cond_channels:])
        if self.cond_channels:
            cond = self._cond_features(x[:, :self.cond_channels])
            taps = [torch.cat([c, t], dim=1) for c, t in zip(cond, taps)]
        logits, feats = [], []
        for head, t in zip(self.heads, taps):
            if features:
                acts = []
                for layer in head:
                    t = layer(t)
                    if isinstance(layer, nn.LeakyReLU):
                        acts.append(t)
                feats.append(acts)
                logits.append(t)
            else:
                logits.append(head(t))
        return (logits, feats) if features else logits

    @torch.no_grad()
    def load_backbone(self, convs: nn.ModuleList) -> None:
        """Copy AlexNet's five pretrained convolutions (the LPIPS backbone's ``convs``) in."""
        copy_convs(self.backbone, convs)


def backbone_side(image_size: int) -> int:
    """Side of AlexNet's last tap for a square input of ``image_size`` (the coarsest logit map)."""
    side = image_size
    for _, k, stride, pad, pool in ALEXNET:
        if pool:
            side = (side - 3) // 2 + 1
        side = (side + 2 * pad - k) // stride + 1
    return side


def check_projected_size(image_size: int) -> None:
    """Raise ValueError when crops of ``image_size`` leave AlexNet's last tap empty."""
    if image_size < 11 or backbone_side(image_size) < 1:
        raise ValueError(f"data.image_size={image_size} is too small for the projected discriminator "
                         f"(AlexNet's last tap would be empty); use --image-size 64 or more, or "
                         f"--discriminator patch")
