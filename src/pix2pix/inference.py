"""Translator: the one place where images become generator inputs and outputs become images.

``translate``, ``serve``, ``evaluate`` and ``export`` all go through it, so value ranges, channel
handling, padding to the network's multiple and the eval/dropout mode live here alone.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from .checkpoint import PretrainedInfo, load_pretrained
from .data.dataset import to_tensor
from .imageio import _pil_to_array, array_to_pil, read_image, to_channels
from .models import generator_multiple

log = logging.getLogger(__name__)
ImageLike = Union[Image.Image, np.ndarray, str, Path]


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad (N, C, H, W) on the bottom/right up to multiples of ``multiple``; returns (x, (H, W)).

    Reflection keeps the padded border looking like the image (no dark frame bleeding into the
    output); replicate is the fallback when the pad is larger than the image.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


class Translator:
    """Apply a trained generator to images of any size.

    Modes: deterministic by default (dropout off, batch norm with its running statistics).
    ``dropout=True`` keeps dropout on, and ``batch_stats=True`` normalises with each image's own
    statistics; both together are the paper's test-time behaviour (outputs vary run to run).
    """

    def __init__(self, generator: nn.Module, info: PretrainedInfo, *, device: str | torch.device = "cpu",
                 dropout: bool = False, batch_stats: bool = False) -> None:
        self.device = torch.device(device)
        self.generator = generator.to(self.device).eval()
        self.info = info
        self.multiple = generator_multiple(info.model.generator)
        self.dropout, self.batch_stats = dropout, batch_stats
        for m in self.generator.modules():
            if dropout and isinstance(m, nn.Dropout):
                m.train()
            if batch_stats and isinstance(m, nn.modules.batchnorm._BatchNorm):
                # Train mode uses the batch's statistics; momentum 0 leaves the stored ones untouched.
                m.train()
                m.momentum = 0.0

    @classmethod
    def from_pretrained(cls, path: str | Path, *, device: str = "auto", dropout: bool = False,
                        batch_stats: bool = False) -> "Translator":
        """Load a pretrained directory, a checkpoint or a run directory (its latest checkpoint)."""
        from .training.loop import resolve_device

        dev = resolve_device(device)
        generator, info = load_pretrained(path, device=dev)
        return cls(generator, info, device=dev, dropout=dropout, batch_stats=batch_stats)

    @property
    def in_channels(self) -> int:
        return self.info.model.in_channels

    @property
    def out_channels(self) -> int:
        return self.info.model.out_channels

    @torch.inference_mode()
    def translate_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) in [-1, 1], any H and W -> (N, C_out, H, W) in [-1, 1]."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected a (N, {self.in_channels}, H, W) tensor, got {tuple(x.shape)}")
        if self.batch_stats and x.shape[0] > 1:
            # Per-image statistics must not mix images of a batch.
            return torch.cat([self.translate_tensor(x[i:i + 1]) for i in range(x.shape[0])])
        padded, (h, w) = pad_to_multiple(x.to(self.device, torch.float32), self.multiple)
        return self.generator(padded)[:, :, :h, :w].float()

    def translate_array(self, arr: np.ndarray) -> np.ndarray:
        """(H, W, C) float in [0, 1] (any channel count the model can take) -> (H, W, C_out) in [0, 1].

        An alpha channel is composited on white for the network and put back on the output.
        """
        x, alpha = self.prepare_array(arr)
        return self.finish_array(self.translate_tensor(x[None])[0], alpha)

    def prepare_array(self, arr: np.ndarray) -> tuple[torch.Tensor, Optional[np.ndarray]]:
        """translate_array's first half: (H, W, C) in [0, 1] -> ((C_in, H, W) in [-1, 1], alpha or None).

        Split out so a server can stack several prepared images into one translate_tensor batch.
        """
        alpha = arr[:, :, -1:] if arr.shape[2] in (2, 4) and arr.shape[2] != self.in_channels else None
        return to_tensor(to_channels(arr, self.in_channels, "input image")), alpha

    def finish_array(self, y: torch.Tensor, alpha: Optional[np.ndarray] = None) -> np.ndarray:
        """translate_array's second half: (C_out, H, W) in [-1, 1] -> (H, W, C_out[+1]) in [0, 1]."""
        out = y.add(1).div(2).clamp(0, 1).permute(1, 2, 0).cpu().numpy()
        if alpha is not None and self.out_channels in (1, 3):
            out = np.concatenate([out, alpha], axis=2)
        return out

    def __call__(self, image: ImageLike) -> Union[Image.Image, np.ndarray]:
        """A PIL image (or path) in -> a PIL image out; a (H, W, C) [0, 1] array in -> array out."""
        if isinstance(image, np.ndarray):
            return self.translate_array(image.astype(np.float32) if image.ndim == 3
                                        else image[:, :, None].astype(np.float32))
        if isinstance(image, (str, Path)):
            arr = read_image(image)
        elif isinstance(image, Image.Image):
            arr = _pil_to_array(image)
        else:
            raise TypeError(f"cannot translate a {type(image).__name__}; pass a PIL image, a path, "
                            f"or a (H, W, C) float array in [0, 1]")
        out = self.translate_array(arr)
        return array_to_pil(out) if out.shape[2] in (1, 3, 4) else out
