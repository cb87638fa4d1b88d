"""Image-quality metrics on (N, C, H, W) tensors in [-1, 1], and evaluation of a Translator.

Pixel metrics (L1, PSNR, SSIM) are computed per image and averaged over images; PSNR and SSIM
see the images mapped to [0, 1] and agree with scikit-image's ``peak_signal_noise_ratio`` and
``structural_similarity`` (tested to 1e-4). LPIPS and FID live in ``lpips.py`` and ``fid.py``
because they need weights; the Evaluator loads them once and says why when it cannot.
"""
from __future__ import annotations

import logging
from typing import Iterable, Optional, Sequence

import torch
import torch.nn.functional as F

from ..config import METRICS
from ..util.ranges import to_unit

log = logging.getLogger(__name__)
_WARNED: set[tuple[str, str]] = set()  # (metric, reason) already logged by this process


def _unit(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1] in float64 where the device has it (the metrics are sums of small terms)."""
    dtype = torch.float32 if x.device.type == "mps" else torch.float64
    return to_unit(x.to(dtype)).clamp(0, 1)


def l1(fake: torch.Tensor, real: torch.Tensor) -> float:
    """Mean absolute error in [-1, 1] units (the training loss's scale)."""
    return float((fake.float() - real.float()).abs().mean())


def psnr_per_image(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """(N,) PSNR in dB of each image pair, with images mapped to [0, 1] (data range 1)."""
    mse = (_unit(fake) - _unit(real)).pow(2).flatten(1).mean(1).clamp_min(1e-20)
    return 10 * torch.log10(1.0 / mse)


def _ssim_window(gaussian: bool, win_size: Optional[int], sigma: float) -> torch.Tensor:
    """The 1-D window scikit-image uses: a Gaussian truncated at 3.5 sigma, or a 7-wide box."""
    if gaussian:
        radius = int(3.5 * sigma + 0.5)
        x = torch.arange(-radius, radius + 1, dtype=torch.float64)
        w = torch.exp(-0.5 * (x / sigma) ** 2)
        return w / w.sum()
    size = win_size or 7
    return torch.full((size,), 1.0 / size, dtype=torch.float64)


def ssim_per_image(fake: torch.Tensor, real: torch.Tensor, *, gaussian: bool = True,
                   sigma: float = 1.5, win_size: Optional[int] = None,
                   sample_covariance: bool = False) -> torch.Tensor:
    """(N,) SSIM of each image pair (Wang et al. 2004), channels averaged, images in [-1, 1].

    The default is the paper's form: an 11x11 Gaussian window (sigma 1.5), population covariances,
    K1 = 0.01, K2 = 0.03 on [0, 1] data. ``gaussian=False, sample_covariance=True`` gives
    scikit-image's default (a 7x7 box). Only windows fully inside the image count, as in
    scikit-image, so both images must be at least the window's size.
    """
    x, y = _unit(fake), _unit(real)
    n, c, h, w = x.shape
    win = _ssim_window(gaussian, win_size, sigma).to(x.device, x.dtype)
    k = win.numel()
    if h < k or w < k:
        raise ValueError(f"SSIM needs images of at least {k}x{k} pixels, got {w}x{h}")
    # Separable filter, valid positions only (scikit-image filters then crops the border).
    kh, kw = win.view(1, 1, k, 1).repeat(c, 1, 1, 1), win.view(1, 1, 1, k).repeat(c, 1, 1, 1)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(t, kh, groups=c), kw, groups=c)

    mx, my = blur(x), blur(y)
    cov_norm = k * k / (k * k - 1) if sample_covariance else 1.0
    vx = cov_norm * (blur(x * x) - mx * mx)
    vy = cov_norm * (blur(y * y) - my * my)
    vxy = cov_norm * (blur(x * y) - mx * my)
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return s.mean(dim=(2, 3)).mean(dim=1)


def _rgb(x: torch.Tensor) -> Optional[torch.Tensor]:
    """Gray -> 3 channels for the ImageNet networks; None for channel counts they cannot take."""
    if x.shape[1] == 3:
        return x
    if x.shape[1] == 1:
        return x.repeat(1, 3, 1, 1)
    return None


class Evaluator:
    """Accumulates metrics over image pairs: ``add(fake, real)`` per batch, then ``result()``.

    ``metrics`` names come from ``config.METRICS``. LPIPS and FID networks are loaded once; when
    their weights are missing the metric is dropped with a reason in ``skipped`` (or an error
    with ``strict=True``), so a training run is never stopped by a missing weight file.
    """

    def __init__(self, metrics: Sequence[str] = ("l1", "psnr", "ssim"), *,
                 device: str | torch.device = "cpu", lpips_net: str = "alex",
                 lpips_weights: Optional[str] = None, fid_weights: Optional[str] = None,
                 strict: bool = False) -> None:
        unknown = [m for m in metrics if m not in METRICS]
        if unknown:
            raise ValueError(f"unknown metric(s) {', '.join(unknown)}; choose from {', '.join(METRICS)}")
        self.device = torch.device(device)
        self.metrics = list(metrics)
        self.skipped: dict[str, str] = {}
        self._lpips = self._fid = None
        # Building the networks must not draw from the global RNG: a resumed training run has just
        # restored it, and an extra draw would make it differ from the uninterrupted run.
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            self._load_networks(lpips_net, lpips_weights, fid_weights, strict)
        self.reset()

    def _load_networks(self, lpips_net: str, lpips_weights: Optional[str], fid_weights: Optional[str],
                       strict: bool) -> None:
        if "lpips" in self.metrics:
            from .lpips import LPIPSWeightsMissing, load_lpips

            try:
                self._lpips = load_lpips(lpips_net, weights=lpips_weights, device=self.device)
            except LPIPSWeightsMissing as e:
                self._skip("lpips", str(e), strict)
        if "fid" in self.metrics:
            from .fid import FIDWeightsMissing, FrechetAccumulator

            try:
                self._fid = FrechetAccumulator(weights=fid_weights, device=self.device)
            except FIDWeightsMissing as e:
                self._skip("fid", str(e), strict)

    def _skip(self, name: str, reason: str, strict: bool) -> None:
        if strict:
            raise ValueError(reason)
        self.metrics.remove(name)
        self.skipped[name] = reason
        # Once per process: a distillation table builds one Evaluator per model and reference.
        if (name, reason) not in _WARNED:
            _WARNED.add((name, reason))
            log.warning("%s is skipped: %s", name, reason)

    def reset(self) -> None:
        self._sums = {m: 0.0 for m in self.metrics if m != "fid"}
        self._count = 0
        if self._fid is not None:
            self._fid.reset()

    @torch.no_grad()
    def add(self, fake: torch.Tensor, real: torch.Tensor) -> None:
        """Add a batch of pairs: (N, C, H, W) in [-1, 1], on any device."""
        if fake.shape != real.shape:
            raise ValueError(f"output {tuple(fake.shape)} and target {tuple(real.shape)} differ in shape")
        fake, real = fake.to(self.device), real.to(self.device)
        n = fake.shape[0]
        s = self._sums
        if "l1" in s:
            s["l1"] += float((fake.float() - real.float()).abs().flatten(1).mean(1).sum())
        if "psnr" in s:
            s["psnr"] += float(psnr_per_image(fake, real).sum())
        if "ssim" in s:
            s["ssim"] += float(ssim_per_image(fake, real).sum())
        if "lpips" in s or self._fid is not None:
            f3, r3 = _rgb(fake), _rgb(real)
            if f3 is None or r3 is None:
                for m in ("lpips", "fid"):
                    if m in self.metrics:
                        self._skip(m, f"{m} needs 1- or 3-channel images, got {fake.shape[1]}", False)
                        s.pop(m, None)
                self._fid = None
            else:
                if "lpips" in s:
                    s["lpips"] += float(self._lpips(f3, r3).sum())
                if self._fid is not None:
                    self._fid.add(fake=f3, real=r3)
        self._count += n

    def result(self) -> dict[str, float]:
        """Means over the images added so far, plus ``fid`` over the whole set, and ``count``."""
        if self._count == 0:
            raise ValueError("nothing to evaluate: no image pairs were added")
        out = {m: v / self._count for m, v in self._sums.items()}
        if self._fid is not None and "fid" in self.metrics:
            if self._count < 2:
                self.skipped["fid"] = f"FID needs at least 2 images, got {self._count}"
            else:
                out["fid"] = self._fid.compute()
        return out | {"count": self._count}


def evaluate(translator, dataset, *, metrics: Sequence[str] = ("l1", "psnr", "ssim", "lpips", "fid"),
             max_items: Optional[int] = None, evaluator: Optional[Evaluator] = None,
             progress: bool = False) -> dict[str, float]:
    """Translate every item of ``dataset`` (dicts with ``input``/``target``) and score the outputs.

    Images go through the Translator one at a time at their own size (padding and cropping back
    happen there). Returns metric means, ``fid`` when available, ``count``, and ``skipped``
    reasons for metrics that could not run.
    """
    ev = evaluator or Evaluator(metrics, device=translator.device)
    ev.reset()
    n = len(dataset) if max_items is None else min(max_items, len(dataset))
    if n == 0:
        raise ValueError("nothing to evaluate: the split is empty")
    indices: Iterable[int] = range(n)
    if progress:
        from tqdm.auto import tqdm

        indices = tqdm(indices, desc="evaluate", unit="img")
    for i in indices:
        item = dataset[i]
        fake = translator.translate_tensor(item["input"][None])
        ev.add(fake, item["target"][None])
    result: dict = ev.result()
    if ev.skipped:
        result["skipped"] = dict(ev.skipped)
    return result

