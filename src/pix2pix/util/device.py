"""Device choice from a name ("auto", "cpu", "cuda", "mps"): the bottom floor that training,
inference and serving all stand on."""
from __future__ import annotations

import torch


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then CPU; an unavailable accelerator is a clear error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but no CUDA GPU is visible; use --device cpu")
    if name == "mps" and not _mps_available():
        raise ValueError("device 'mps' was asked for but Apple MPS is not available; use --device cpu")
    return torch.device(name)
