"""A perceptual training loss on the LPIPS backbone (ImageNet AlexNet or VGG16 features).

The distance is LPIPS's with every learned head weight set to 1 (Zhang et al. 2018, "lin" off):
features at five ReLUs, unit-normalised over channels, squared differences summed over channels
and averaged over space, summed over the five taps. It uses only the backbone, not the heads
that `pix2pix evaluate` scores LPIPS with, so training does not optimise the very numbers the
held-out table reports.

Weights: the AlexNet backbone ships inside the package (``pix2pix/weights/``, fp16 safetensors,
checked by sha256 at load; made by ``scripts/ship_lpips_backbone.py``), so the default recipe
trains right after ``pip install`` with no network. VGG16 (``perceptual_net=vgg``) is not shipped
(58 MB); it is read from the cache that ``pix2pix evaluate --install-lpips`` fills.
"""
from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from ..config import perceptual_parts
from ..metrics.lpips import LPIPS, load_lpips

# net -> (file in pix2pix/weights/, sha256). One home for the shipped file's name and digest.
SHIPPED: dict[str, tuple[str, str]] = {
    "alex": ("lpips_alexnet_backbone.fp16.safetensors",
             "d93885f8cddaacf3e56e26cff299f11449bef45b80ad0c9525e48cad0b933c22"),
}


class ShippedWeightsCorrupt(ValueError):
    """A weight file inside the package does not match the digest it was shipped with."""


def shipped_path(net: str = "alex") -> Path:
    """Where the packaged backbone of ``net`` lies (inside the installed package)."""
    return Path(str(resources.files("pix2pix") / "weights" / SHIPPED[net][0]))


def load_shipped_backbone(net: str = "alex") -> LPIPS:
    """The LPIPS network of ``net`` with the packaged backbone (fp16 on disk, fp32 here); its
    linear heads are left at zero (the perceptual loss does not use them). Reads no cache."""
    path = shipped_path(net)
    expected = SHIPPED[net][1]
    if not path.is_file():
        raise ShippedWeightsCorrupt(f"{path} is missing from the installed package; reinstall pix2pix "
                                    f"(the wheel ships it as package data)")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != expected:
        raise ShippedWeightsCorrupt(f"{path} has sha256 {digest}, expected {expected}: the file is "
                                    f"damaged or replaced; reinstall pix2pix")
    model = LPIPS(net)
    state = {k: v.float() for k, v in load_file(str(path)).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if k.startswith("convs.")]
    if missing or unexpected:
        raise ShippedWeightsCorrupt(f"{path} is not an LPIPS-{net} backbone: missing {missing[:4]}, "
                                    f"unexpected {unexpected[:4]}")
    return model


def load_pretrained_encoder(generator: nn.Module, backbone: str) -> None:
    """Copy the shipped ``backbone`` (a key of SHIPPED) into a network built with that part
    (``GeneratorSpec.backbone`` or ``DiscriminatorSpec.backbone``; the network's ``load_backbone``).
    Draws no random numbers."""
    # Building the LPIPS network draws its default init: keep the run's seed stream untouched.
    with torch.random.fork_rng(devices=[]):
        convs = load_shipped_backbone(backbone).convs
    generator.load_backbone(convs)


class PerceptualLoss(nn.Module):
    """(N, 3, H, W), (N, 3, H, W) in [-1, 1] -> scalar >= 0 (0 when the images are equal).

    The sum of the distances on each backbone given (one, or e.g. AlexNet and shallow VGG16).
    Frozen: gradients flow to the first argument (the generator's output) only. Images with 1
    channel are repeated to 3; other channel counts are refused.
    """

    def __init__(self, backbone: LPIPS | list[LPIPS], crops: list[int] | None = None) -> None:
        super().__init__()
        nets = backbone if isinstance(backbone, list) else [backbone]
        self.backbones = nn.ModuleList(b.requires_grad_(False).eval() for b in nets)
        # Per backbone: 0, or the side of the one random crop of the pair it scores per step.
        self.crops = list(crops or [0] * len(nets))

    def train(self, mode: bool = True) -> "PerceptualLoss":
        # Always eval: the backbones have no dropout or norm, and they must never be trained.
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
        both = torch.cat([self._rgb(fake).float(), self._rgb(real).float().detach()])
        total = fake.new_zeros((), dtype=torch.float32)
        for net, crop in zip(self.backbones, self.crops):
            x = both
            if 0 < crop < min(both.shape[-2:]):  # the same window of every image of the pair
                top = int(torch.randint(both.shape[-2] - crop + 1, ()))
                left = int(torch.randint(both.shape[-1] - crop + 1, ()))
                x = both[..., top:top + crop, left:left + crop]
            for f in net.features(x):
                f = f / (f.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)
                total = total + (f[:n] - f[n:]).pow(2).sum(dim=1).mean()
        return total


# The shallow nets: (the LPIPS backbone, how many of its taps are kept).
_SHALLOW = {"vgg3": ("vgg", 3)}


def _backbone(net: str) -> LPIPS:
    base, taps = _SHALLOW.get(net, (net, None))
    model = load_shipped_backbone(base) if base in SHIPPED else load_lpips(base)
    if taps is not None:  # keep the convolutions up to the last tap used
        last = model.taps[taps - 1]
        model.convs = nn.ModuleList(list(model.convs)[:last + 1])
        model.taps = model.taps[:taps]
    return model


def build_perceptual(net: str = "alex", *, device: str | torch.device = "cpu") -> PerceptualLoss:
    """The perceptual loss on ``net`` (config.PERCEPTUAL_NETS, or several joined by "+"): the
    shipped backbone for ``alex``; for ``vgg`` and ``vgg3`` the converted cache (raises LPIPSWeightsMissing, which says how to
    install it, when it is not on this machine)."""
    parts = perceptual_parts(net)
    return PerceptualLoss([_backbone(n).to(device) for n, _ in parts], [crop for _, crop in parts])


__all__ = ["PerceptualLoss", "ShippedWeightsCorrupt", "SHIPPED", "build_perceptual",
           "load_pretrained_encoder", "load_shipped_backbone", "shipped_path"]
