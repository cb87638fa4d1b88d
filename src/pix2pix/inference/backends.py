"""Inference backends behind one interface: PyTorch eager, ``torch.compile`` and ONNX Runtime.

A backend maps a padded (N, C_in, H, W) float32 tensor in [-1, 1] (H and W multiples of the
generator's) on the Translator's device to (N, C_out, H, W) float32 in [-1, 1] on the same device.
The Translator does all pre- and post-processing; a backend only runs the network.

``auto`` chooses by device and mode (see :func:`choose_backend`), from the figures of
``benchmarks/inference.py``: on CPU ONNX Runtime was 1.1-1.9x faster than channels-last eager and
``torch.compile`` on one thread (batch 8 and 1), fastest or within the noise on two, and needs no
compilation, where ``torch.compile`` takes tens of seconds per new input shape.
"""
from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Optional, Protocol

import torch
from torch import nn

from ..checkpoint import PretrainedInfo
from .onnx import cached_onnx, ort_session, run_onnx

log = logging.getLogger(__name__)

BACKENDS = ("auto", "eager", "compile", "onnxruntime")


class Backend(Protocol):
    name: str

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) float32 in [-1, 1] -> (N, C_out, H, W) float32 in [-1, 1]."""
        ...


class EagerBackend:
    """The generator as it is: the reference every other backend is compared with."""

    name = "eager"

    def __init__(self, generator: nn.Module) -> None:
        self.generator = generator

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.generator(x)


class CompiledBackend:
    """``torch.compile`` (inductor) on channels-last weights.

    Channels-last lets oneDNN (CPU) and cuDNN (GPU) run convolutions without layout conversions;
    ``freeze`` (deterministic mode only: it treats weights and norm statistics as constants) folds
    batch norm into the convolutions and prepacks their weights. The first call for each input
    shape compiles (tens of seconds on a small CPU), so this pays off for long jobs at one size:
    folders of equal images, or tiles.
    """

    name = "compile"

    def __init__(self, generator: nn.Module, *, freeze: bool = True) -> None:
        self.generator = generator.to(memory_format=torch.channels_last)
        self._compiled = torch.compile(self.generator, options={"freezing": freeze})

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self._compiled(x.contiguous(memory_format=torch.channels_last)).contiguous()


class OnnxRuntimeBackend:
    """An ONNX Runtime session on an exported graph (deterministic mode only).

    Its threads sleep between runs (``spin=False``, not ONNX Runtime's default): between two runs
    come the Translator's own PyTorch work, a clip's decoding and encoding threads, or a server's
    wait for the next request, and a spinning pool would hold the cores they need (measured:
    docs/translating.md, "Backends")."""

    name = "onnxruntime"

    def __init__(self, onnx_path: str | Path, device: torch.device, *, threads: Optional[int] = None,
                 spin: bool = False) -> None:
        self.path = Path(onnx_path)
        self.session = ort_session(self.path, device=device, threads=threads, spin=spin)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        y = run_onnx(self.session, x.detach().to("cpu", torch.float32).numpy())
        return torch.from_numpy(y).to(x.device)


def onnxruntime_available(device: torch.device) -> bool:
    """Whether ONNX Runtime (and the exporter, onnxscript) can serve ``device``."""
    if importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnxscript") is None:
        return False
    if device.type == "cpu":
        return True
    if device.type == "cuda":
        import onnxruntime as ort

        return "CUDAExecutionProvider" in ort.get_available_providers()
    return False


def choose_backend(device: torch.device, *, deterministic: bool, have_onnx_file: bool = False) -> tuple[str, str]:
    """(backend name, reason) for ``auto``.

    The exported graph is the deterministic network (eval mode, either test-time statistics), so
    dropout stays in PyTorch. On GPUs cuDNN eager is what this project has
    measured least; ONNX Runtime is used there only when the model is already an ONNX file.
    """
    if not deterministic:
        return "eager", "dropout runs in PyTorch"
    if device.type == "cpu":
        if onnxruntime_available(device):
            return "onnxruntime", "fastest measured on CPU (benchmarks/inference.py)"
        return "eager", "onnxruntime/onnxscript not installed (pip install 'pix2pix[export]')"
    if have_onnx_file and onnxruntime_available(device):
        return "onnxruntime", f"model is an ONNX file and onnxruntime serves {device.type}"
    return "eager", f"PyTorch eager on {device.type}"


def make_backend(name: str, generator: nn.Module, info: PretrainedInfo, device: torch.device, *,
                 deterministic: bool = True, onnx_path: Optional[str | Path] = None) -> Backend:
    """Build backend ``name`` (one of BACKENDS) for ``generator``; ``auto`` logs its choice."""
    if name not in BACKENDS:
        raise ValueError(f"backend {name!r} is not known; choose one of {', '.join(BACKENDS)}")
    if name == "auto":
        name, reason = choose_backend(device, deterministic=deterministic,
                                      have_onnx_file=onnx_path is not None)
        log.info("backend auto -> %s on %s (%s)", name, device.type, reason)
    if name == "eager":
        return EagerBackend(generator)
    if name == "compile":
        return CompiledBackend(generator, freeze=deterministic)
    # onnxruntime
    if not deterministic:
        raise ValueError("the onnxruntime backend runs the exported deterministic network; "
                         "--dropout and --paper need --backend eager or compile")
    if not onnxruntime_available(device):
        raise ValueError(f"the onnxruntime backend is not available for device {device.type}: "
                         f"pip install 'pix2pix[export]' (onnxruntime-gpu for cuda), or use --backend eager")
    if onnx_path is None:
        onnx_path = cached_onnx(generator, info)
    return OnnxRuntimeBackend(onnx_path, device)


__all__ = ["BACKENDS", "Backend", "EagerBackend", "CompiledBackend", "OnnxRuntimeBackend",
           "choose_backend", "make_backend", "onnxruntime_available"]
