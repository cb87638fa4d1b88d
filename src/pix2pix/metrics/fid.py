"""FID (Heusel et al. 2017) with the standard TF-ported Inception weights, when the user has them.

No package ships those weights and nothing is downloaded here. The network is the "FID Inception"
(TensorFlow's 2015-12-05 Inception v3 as ported by pytorch-fid: average pools that ignore padding,
a max pool in the last block); features are the 2048-d pool3 activations of images resized to
299x299 bilinearly, as pytorch-fid computes them. Weights are looked up at ``--fid-weights``,
``$PIX2PIX_FID_WEIGHTS``, then the torch hub cache (``pt_inception-2015-12-05-6726825d.pth``, as
pytorch-fid and torchmetrics leave it) and ``<pix2pix cache>/fid_inception.safetensors``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..util.cache import cache_dir, user_cache_root
from .lpips import WeightsMissing

WEIGHT_NAMES = ("pt_inception-2015-12-05-6726825d.pth",)


class FIDWeightsMissing(WeightsMissing):
    pass


class BasicConv2d(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel, stride=1, padding=0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg(x: torch.Tensor) -> torch.Tensor:
    # TensorFlow's average pool leaves the zero padding out of the mean.
    return F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)


class InceptionA(nn.Module):
    def __init__(self, c_in: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(c_in, 64, 1)
        self.branch5x5_1 = BasicConv2d(c_in, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(c_in, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(c_in, pool_features, 1)

    def forward(self, x):
        return torch.cat([self.branch1x1(x), self.branch5x5_2(self.branch5x5_1(x)),
                          self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                          self.branch_pool(_avg(x))], 1)


class InceptionB(nn.Module):
    def __init__(self, c_in: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(c_in, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(c_in, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x):
        return torch.cat([self.branch3x3(x),
                          self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                          F.max_pool2d(x, 3, 2)], 1)


class InceptionC(nn.Module):
    def __init__(self, c_in: int, c7: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(c_in, 192, 1)
        self.branch7x7_1 = BasicConv2d(c_in, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(c_in, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(c_in, 192, 1)

    def forward(self, x):
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = x
        for i in range(1, 6):
            d = getattr(self, f"branch7x7dbl_{i}")(d)
        return torch.cat([self.branch1x1(x), b7, d, self.branch_pool(_avg(x))], 1)


class InceptionD(nn.Module):
    def __init__(self, c_in: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(c_in, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(c_in, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x):
        b7 = x
        for i in range(1, 5):
            b7 = getattr(self, f"branch7x7x3_{i}")(b7)
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), b7, F.max_pool2d(x, 3, 2)], 1)


class InceptionE(nn.Module):
    def __init__(self, c_in: int, max_pool: bool) -> None:
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(c_in, 320, 1)
        self.branch3x3_1 = BasicConv2d(c_in, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(c_in, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(c_in, 192, 1)

    def forward(self, x):
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        d = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1)
        # The TF graph's last block max-pools here (a quirk FID numbers depend on).
        pool = F.max_pool2d(x, 3, 1, 1) if self.max_pool else _avg(x)
        return torch.cat([self.branch1x1(x), b3, d, self.branch_pool(pool)], 1)


class FIDInception(nn.Module):
    """(N, 3, H, W) in [-1, 1] -> (N, 2048) pool3 features. Module names follow the weight file."""

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, 32)
        self.Mixed_5c = InceptionA(256, 64)
        self.Mixed_5d = InceptionA(288, 64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, 128)
        self.Mixed_6c = InceptionC(768, 160)
        self.Mixed_6d = InceptionC(768, 160)
        self.Mixed_6e = InceptionC(768, 192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, max_pool=False)
        self.Mixed_7c = InceptionE(2048, max_pool=True)
        # The classifier is unused for FID but is part of the weight file (1008 TF classes).
        self.fc = nn.Linear(2048, 1008)
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # pytorch-fid resizes [0, 1] images then maps to [-1, 1]; both steps are linear, so
        # resizing the [-1, 1] image directly is the same.
        x = F.interpolate(x.float(), size=(299, 299), mode="bilinear", align_corners=False)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, 2)
        x = F.max_pool2d(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)), 3, 2)
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)
        return x.mean(dim=(2, 3))


def find_fid_weights(path: Optional[str | Path] = None) -> Path:
    """The first existing weight file among the user's path and the usual caches, or a clear error."""
    candidates: list[Path] = []
    if path:
        candidates.append(Path(path))
    if os.environ.get("PIX2PIX_FID_WEIGHTS"):
        candidates.append(Path(os.environ["PIX2PIX_FID_WEIGHTS"]))
    torch_home = Path(os.environ.get("TORCH_HOME") or
                      user_cache_root() / "torch")
    candidates += [torch_home / "hub" / "checkpoints" / n for n in WEIGHT_NAMES]
    candidates.append(cache_dir() / "fid_inception.safetensors")
    for c in candidates:
        if c.is_file():
            return c
    if path:
        raise FIDWeightsMissing(f"FID Inception weights {path} do not exist")
    raise FIDWeightsMissing(
        "FID needs the Inception weights that pytorch-fid and torchmetrics use "
        f"({WEIGHT_NAMES[0]}); no package ships them and pix2pix downloads nothing. Looked in: "
        + ", ".join(str(c) for c in candidates)
        + ". Copy the file to one of those places, or pass --fid-weights PATH "
        "(or set PIX2PIX_FID_WEIGHTS)")


def load_fid_inception(path: Optional[str | Path] = None, device: str | torch.device = "cpu") -> FIDInception:
    """FIDInception with weights from a ``.pth`` state dict (read with weights_only) or safetensors."""
    found = find_fid_weights(path)
    if found.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(found))
    else:
        state = torch.load(found, map_location="cpu", weights_only=True)
    model = FIDInception()
    missing, unexpected = model.load_state_dict(state, strict=False)
    # Files saved before batch norm counted its batches lack num_batches_tracked; the classifier
    # is not used for features. Neither matters here.
    missing = [k for k in missing if not k.endswith("num_batches_tracked") and not k.startswith("fc.")]
    if missing or unexpected:
        raise ValueError(f"{found} is not the FID Inception weight file: missing {missing[:4]}, "
                         f"unexpected {unexpected[:4]}")
    return model.to(device)


def frechet_distance(mu1: torch.Tensor, cov1: torch.Tensor, mu2: torch.Tensor, cov2: torch.Tensor) -> float:
    """||mu1 - mu2||^2 + Tr(C1 + C2 - 2 (C1 C2)^1/2), in float64.

    Tr((C1 C2)^1/2) is the sum of square roots of the eigenvalues of C1^1/2 C2 C1^1/2, which is
    symmetric positive semi-definite, so no complex square roots or singular products arise.
    """
    mu1, mu2, cov1, cov2 = (t.double().cpu() for t in (mu1, mu2, cov1, cov2))
    w, v = torch.linalg.eigh(cov1)
    root1 = (v * w.clamp_min(0).sqrt()) @ v.T
    middle = root1 @ cov2 @ root1
    tr_sqrt = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp_min(0).sqrt().sum()
    return float((mu1 - mu2).pow(2).sum() + cov1.trace() + cov2.trace() - 2 * tr_sqrt)


class _Moments:
    """Running sum and outer-product sum of feature vectors, in float64."""

    def __init__(self, dim: int) -> None:
        self.n, self.s, self.ss = 0, torch.zeros(dim, dtype=torch.float64), torch.zeros(dim, dim, dtype=torch.float64)

    def add(self, f: torch.Tensor) -> None:
        f = f.double().cpu()
        self.n += f.shape[0]
        self.s += f.sum(0)
        self.ss += f.T @ f

    def mean_cov(self) -> tuple[torch.Tensor, torch.Tensor]:
        mu = self.s / self.n
        cov = (self.ss - self.n * torch.outer(mu, mu)) / (self.n - 1)
        return mu, cov


class FrechetAccumulator:
    """Feeds outputs and targets through the FID Inception; ``compute()`` gives FID(outputs, targets)."""

    def __init__(self, *, weights: Optional[str | Path] = None, device: str | torch.device = "cpu",
                 model: Optional[nn.Module] = None) -> None:
        self.model = model if model is not None else load_fid_inception(weights, device)
        self.device = torch.device(device)
        self.reset()

    def reset(self) -> None:
        self.fake, self.real = _Moments(2048), _Moments(2048)

    @torch.no_grad()
    def add(self, *, fake: torch.Tensor, real: torch.Tensor) -> None:
        # One Inception pass for both (eval mode: rows do not affect each other).
        n = fake.shape[0]
        features = self.model(torch.cat([fake, real]).to(self.device))
        self.fake.add(features[:n])
        self.real.add(features[n:])

    def compute(self) -> float:
        if self.fake.n < 2:
            raise ValueError(f"FID needs at least 2 images, got {self.fake.n}")
        return frechet_distance(*self.fake.mean_cov(), *self.real.mean_cov())
