"""Which mixed precision is native (fast) on the hardware at hand, and ``--precision auto``.

On a CPU, bf16 autocast is fast only with AVX512-BF16 or AMX-BF16 instructions; without them
PyTorch emulates it, and a bf16 unet_256 training step was measured 53x slower than fp32 on an
AVX2 CPU (62.6 s against 1.18 s). fp16 on a CPU likewise needs AVX512-FP16 or AMX-FP16.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable, Optional

import torch

log = logging.getLogger(__name__)

CPU_NATIVE = {"bf16": ("avx512_bf16", "amx_bf16"), "fp16": ("avx512_fp16", "amx_fp16")}


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """The instruction-set flags the CPU reports (Linux ``/proc/cpuinfo``); empty where unknown."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def cpu_native(precision: str, flags: Iterable[str]) -> bool:
    """True when the CPU with these ``flags`` runs ``precision`` natively (fp32 always does)."""
    if precision == "fp32":
        return True
    return bool(set(CPU_NATIVE[precision]) & set(flags))


def resolve_precision(precision: str, device: torch.device, flags: Optional[Iterable[str]] = None) -> str:
    """``precision`` checked against ``device`` (fp32, bf16 or fp16 back). ``auto`` (the default)
    is bf16 where the hardware computes it natively (a GPU with bf16, a CPU with AVX512-BF16 or
    AMX-BF16), else fp32. A CPU
    without native support for a half type is refused with the reason: it would run, many times
    slower than fp32. ``flags`` default to this machine's (:func:`cpu_flags`)."""
    if device.type == "cuda":
        if precision == "auto":
            # fp16 needs loss scaling and can overflow: only ever on request, never by default.
            return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
        if precision == "bf16" and not torch.cuda.is_bf16_supported():
            raise ValueError("precision bf16 was asked for but this GPU has no bf16 support "
                             "(it needs compute capability 8.0+); use --precision fp16 or auto")
        return precision
    if device.type != "cpu":
        return "fp32" if precision == "auto" else precision
    flags = cpu_flags() if flags is None else frozenset(flags)
    if precision == "auto":
        # Native bf16 is the faster one: on an AVX512-BF16 CPU (no AMX) a unet_256/32 training
        # step took 0.21 CPU s in bf16 against 0.28 in fp32 (benchmarks/precision.py).
        return "bf16" if cpu_native("bf16", flags) else "fp32"
    if not cpu_native(precision, flags):
        need = " or ".join(f.upper().replace("_", "-") for f in CPU_NATIVE[precision])
        raise ValueError(f"precision {precision} on this CPU would be emulated, many times slower "
                         f"than fp32 (a bf16 unet_256 step took 53x longer on an AVX2 CPU): it "
                         f"needs {need}, which this CPU does not report. Use --precision fp32 "
                         f"(or auto), or train on a GPU")
    return precision
