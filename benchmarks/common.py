"""Shared benchmark helpers: the matmul rate (the compute floor's denominator) and timing."""
from __future__ import annotations

import contextlib
import statistics
import time
from typing import Callable, Optional

import torch

from pix2pix.models import small_conv
from pix2pix.models.resize_conv import ResizeConv2d

# The decoders' resize-conv switch (ResizeConv2d.transposed_min_pixels) as shipped, and per form.
_RESIZE_CONV_MIN_PIXELS = {"chosen": ResizeConv2d.transposed_min_pixels, "written": 2**62, "transposed": 0}
# The small-map switch of bf16 training steps (small_conv.MATMUL_MAX_PIXELS) as shipped, and off.
_SMALL_CONV_MAX_PIXELS = {"chosen": small_conv.MATMUL_MAX_PIXELS, "conv": -1}


def resize_conv_form(form: str) -> None:
    """Make every resize-conv layer run ``form``: "chosen" (by input size, as shipped), "written"
    (nearest 2x upsampling, then the 3x3 convolution: training before 2026-12-07) or "transposed"
    (always the transposed convolution at the input resolution)."""
    ResizeConv2d.transposed_min_pixels = _RESIZE_CONV_MIN_PIXELS[form]


def small_conv_form(form: str) -> None:
    """Make bf16 training steps run small-map convolutions as ``form``: "chosen" (one matrix product
    up to the shipped MATMUL_MAX_PIXELS output pixels) or "conv" (always oneDNN's convolution:
    training before 2026-12-07, day)."""
    small_conv.MATMUL_MAX_PIXELS = _SMALL_CONV_MAX_PIXELS[form]


def matmul_rate(n: int = 2048, repeats: int = 10, device: str = "cpu",
                dtype: torch.dtype = torch.float32) -> float:
    """Measured FLOP/s of an n^3 matmul in ``dtype`` on this machine, now (best of ``repeats``)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(repeats + 2):
        t = time.perf_counter()
        a @ b
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def timed(fn: Callable[[], object], repeats: int, warmup: int = 1) -> tuple[float, float]:
    """(best, median) seconds per call after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times), statistics.median(times)


def forward_backward(fn: Callable[[], torch.Tensor], amp: Optional[torch.dtype] = None) -> None:
    """``fn()`` (under CPU autocast to ``amp`` when given), then the backward of a scalar of its
    output: one training-style pass of a layer, for per-layer timings."""
    with torch.autocast("cpu", dtype=amp) if amp else contextlib.nullcontext():
        y = fn()
    y.float().square().mean().backward()


def count_flops(fn: Callable[[], object]) -> int:
    """The FLOPs of ``fn()``'s matmuls and convolutions (torch.utils.flop_counter's formulas),
    counted at the dispatcher. FlopCounterMode itself tracks modules with hooks that
    autograd.grad refuses (an R1 penalty's gradient of a gradient), so its formulas are used here
    without its module tracker."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import FlopCounterMode

    registry = FlopCounterMode(display=False).flop_registry

    class Count(TorchDispatchMode):
        total = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            formula = registry.get(func._overloadpacket)
            if formula is not None:
                Count.total += formula(*args, **kwargs, out_val=out)
            return out

    with Count():
        fn()
    return Count.total
