"""Translator: the one place where images become generator inputs and outputs become images.

``translate``, ``serve``, ``evaluate`` and ``export`` all go through it, so value ranges, channel
handling, padding to the network's multiple and the eval/dropout mode live here alone.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from ..checkpoint import PretrainedInfo, load_pretrained
from ..util.device import resolve_device
from ..util.imageio import array_to_pil, decode_pil, read_image, to_channels
from ..models import generator_multiple
from ..models.layers import as_tested, uses_image_statistics, with_fixed_statistics
from ..util.ranges import image_array, to_tensor, to_unit
from .onnx import read_onnx_info

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

    Modes: dropout off by default; ``dropout=True`` keeps it on (outputs vary run to run).
    Batch norms normalise as the model says (``model.test_statistics``: the running statistics,
    or each image's own for paper-recipe and imported reference models); ``batch_stats=True`` or
    ``False`` overrides that. Both modes keep one output per input (per-image statistics are an
    instance norm with batch norm's scale and shift), so every backend runs them; dropout with
    batch statistics is the paper's whole test-time behaviour.

    ``backend`` runs the network: ``eager`` (default here; the reference), ``compile``,
    ``onnxruntime`` or ``auto`` (see :mod:`pix2pix.inference.backends`). Pre- and post-processing stay here
    whatever runs the network.
    """

    def __init__(self, generator: Optional[nn.Module], info: PretrainedInfo, *,
                 device: str | torch.device = "cpu", dropout: bool = False,
                 batch_stats: Optional[bool] = None, backend: str = "eager",
                 onnx_path: Optional[str | Path] = None) -> None:
        from .backends import make_backend

        self.device = torch.device(device)
        saved = info.model.test_statistics == "batch"
        self.batch_stats = saved if batch_stats is None else bool(batch_stats)
        self.dropout = dropout
        if generator is None and (dropout or self.batch_stats != saved
                                  or backend not in ("auto", "onnxruntime")):
            raise ValueError("a model loaded from an ONNX file runs only with the onnxruntime backend, "
                             f"without dropout, with the statistics it was exported with "
                             f"({info.model.test_statistics}); load its pretrained directory for other modes")
        statistics = "batch" if self.batch_stats else "running"
        if generator is not None:
            # A copy where it changes: the caller's generator (a training run's, in validation) stays.
            tested = as_tested(generator, statistics)
            if tested is not generator:
                # Said when asked for; the model's own mode is no news (and validation would
                # repeat it at every validation of a paper-recipe run).
                (log.info if batch_stats else log.debug)(
                    "batch norm uses each image's own statistics (%s)",
                    "asked for" if batch_stats else "the model's test mode: the paper's")
            generator = tested
        # What runs is described as it runs: an export of this Translator records these statistics.
        self.info = replace(info, model=replace(info.model, test_statistics=statistics))
        self.multiple = generator_multiple(info.model.generator)
        self.generator = generator.to(self.device).eval() if generator is not None else None
        for m in (self.generator.modules() if self.generator is not None else ()):
            if dropout and isinstance(m, nn.Dropout):
                m.train()
        self.backend = make_backend(backend, self.generator, self.info, self.device,
                                    deterministic=not dropout, onnx_path=onnx_path)

    @classmethod
    def from_pretrained(cls, path: str | Path, *, device: str = "auto", dropout: bool = False,
                        batch_stats: Optional[bool] = None, backend: Optional[str] = None) -> "Translator":
        """Load a pretrained directory, a checkpoint, a run directory (its latest checkpoint), or an
        ``.onnx`` file written by `pix2pix export`. ``backend=None``: eager PyTorch for a directory,
        ONNX Runtime for an ``.onnx`` file (the only backend that runs one). ``batch_stats=None``:
        the model's own test-time statistics."""
        dev = resolve_device(device)
        if Path(path).suffix.lower() == ".onnx":
            if not Path(path).is_file():
                raise FileNotFoundError(f"model file {path} does not exist")
            return cls(None, read_onnx_info(path), device=dev, dropout=dropout, batch_stats=batch_stats,
                       backend="onnxruntime" if backend in (None, "auto") else backend, onnx_path=path)
        generator, info = load_pretrained(path, device=dev)
        return cls(generator, info, device=dev, dropout=dropout, batch_stats=batch_stats,
                   backend=backend or "eager")

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
        padded, (h, w) = pad_to_multiple(x.to(self.device, torch.float32), self.multiple)
        return self.backend(padded)[:, :, :h, :w].float()

    def _alpha(self, arr: np.ndarray) -> Optional[np.ndarray]:
        """The (H, W, 1) alpha of an input the network sees composited on white, else None."""
        return arr[:, :, -1:] if arr.shape[2] in (2, 4) and arr.shape[2] != self.in_channels else None

    def _with_alpha(self, out: np.ndarray, alpha: Optional[np.ndarray]) -> np.ndarray:
        """Put the input's alpha back on a gray or RGB output."""
        if alpha is not None and self.out_channels in (1, 3):
            return np.concatenate([out, alpha], axis=2)
        return out

    def prepare(self, arr: np.ndarray) -> tuple[torch.Tensor, Optional[np.ndarray]]:
        """(H, W, C) in [0, 1] -> ((C_in, H, W) in [-1, 1], alpha to put back or None)."""
        return to_tensor(to_channels(arr, self.in_channels, "input image")), self._alpha(arr)

    def finish(self, y: torch.Tensor, alpha: Optional[np.ndarray]) -> np.ndarray:
        """(C_out, H, W) in [-1, 1] -> (H, W, C_out [+ alpha]) in [0, 1]."""
        return self._with_alpha(to_unit(y).clamp(0, 1).permute(1, 2, 0).cpu().numpy(), alpha)

    def translate_array(self, arr: np.ndarray, *, tile: Optional[int] = None, overlap: Optional[int] = None,
                        batch_size: int = 1, progress: Optional[Callable[[int, int], None]] = None) -> np.ndarray:
        """(H, W[, C]) image -> (H, W, C_out) float32 in [0, 1]; any channel count the model can take.

        ``arr``: uint8 (0..255), uint16 (0..65535) or float in [0, 1]; a float array outside
        [0, 1] is a ValueError (see :func:`pix2pix.util.ranges.image_array`). An alpha channel is composited on white for the network and put back on the output.
        With ``tile`` (a multiple of ``self.multiple``) an image larger than one tile is translated
        in overlapping tiles (``overlap`` px, default tile/4), ``batch_size`` at a time, with
        ``progress(done, total)`` after each batch: memory then depends on the tile, not the image.
        """
        arr = image_array(arr, "input image")
        if tile and (arr.shape[0] > tile or arr.shape[1] > tile):
            return self._translate_tiled(arr, tile, tile // 4 if overlap is None else overlap,
                                         batch_size, progress)
        x, alpha = self.prepare(arr)
        return self.finish(self.translate_tensor(x[None])[0], alpha)

    def _translate_tiled(self, arr: np.ndarray, tile: int, overlap: int, batch_size: int,
                         progress: Optional[Callable[[int, int], None]]) -> np.ndarray:
        from .tiling import check_tiling, translate_tiled

        check_tiling(tile, overlap, self.multiple)
        forward = self.translate_tensor
        if self.generator is not None and uses_image_statistics(self.generator):
            forward = self._shared_statistics(arr)
        elif self.batch_stats:  # an exported graph: its instance norms cannot be given other statistics
            log.warning("each tile is normalised with its own statistics, so tiles may differ in tone; "
                        "translate from the model directory, or with --running-stats, for seamless tiles")
        alpha = self._alpha(arr)

        def run(tiles: np.ndarray) -> np.ndarray:
            # (B, th, tw, C) in [0, 1] -> (B, th, tw, C_out) in [-1, 1]; blended before clamping.
            x = torch.stack([self.prepare(t)[0] for t in tiles])
            return forward(x).permute(0, 2, 3, 1).cpu().numpy()

        y = translate_tiled(arr, run, tile=tile, overlap=overlap, out_channels=self.out_channels,
                            align=self.multiple, batch_size=batch_size, progress=progress)
        # In place: for a 10,000 x 5,000 image each temporary would be another 600 MB.
        to_unit(y, inplace=True)
        return self._with_alpha(np.clip(y, 0, 1, out=y), alpha)

    def _shared_statistics(self, arr: np.ndarray) -> Callable[[torch.Tensor], torch.Tensor]:
        """The tiles' forward pass, (N, C_in, h, w) -> (N, C_out, h, w) in [-1, 1], for a model that
        normalises by each image's own statistics: every tile with the statistics of the whole
        image ``arr`` (H, W, C), not its own, so that the tiles share one tone. They are measured in
        one pass over the whole image, or over a copy scaled down to fit one pass in memory
        (``tiling.statistics_scale``); PyTorch runs the tiles (their norms are then constants)."""
        from .tiling import statistics_scale

        h, w = arr.shape[:2]
        scale = statistics_scale(h, w, device=self.device)
        small = arr
        if scale < 1:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            small = cv2.resize(arr, size, interpolation=cv2.INTER_AREA).reshape(size[1], size[0], -1)
        x, _ = self.prepare(small)
        padded, _ = pad_to_multiple(x[None].to(self.device), self.multiple)
        net = with_fixed_statistics(self.generator, padded)
        log.info("tiles share the image's own statistics, measured on the %s (%d x %d px); "
                 "PyTorch runs them with those statistics fixed",
                 "whole image" if scale == 1 else f"image scaled by {scale:.2f}", small.shape[1], small.shape[0])

        @torch.inference_mode()
        def forward(x: torch.Tensor) -> torch.Tensor:
            padded, (th, tw) = pad_to_multiple(x.to(self.device, torch.float32), self.multiple)
            return net(padded)[:, :, :th, :tw].float()

        return forward

    def translate_batch(self, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Like :meth:`translate_array` for several images; equal sizes share one forward pass."""
        prepared = [self.prepare(image_array(a, f"input image {i}")) for i, a in enumerate(arrays)]
        results: list[Optional[np.ndarray]] = [None] * len(arrays)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, (x, _) in enumerate(prepared):
            groups.setdefault(tuple(x.shape), []).append(i)
        for idx in groups.values():
            y = self.translate_tensor(torch.stack([prepared[i][0] for i in idx]))
            for i, yi in zip(idx, y):
                results[i] = self.finish(yi, prepared[i][1])
        return results  # type: ignore[return-value]

    def __call__(self, image: ImageLike) -> Union[Image.Image, np.ndarray]:
        """A PIL image (or path) in -> a PIL image out; an (H, W[, C]) array in -> (H, W, C_out)
        float32 array in [0, 1] out. Arrays: uint8, uint16, or float in [0, 1] (else ValueError)."""
        if isinstance(image, np.ndarray):
            return self.translate_array(image)
        if isinstance(image, (str, Path)):
            arr = read_image(image)
        elif isinstance(image, Image.Image):
            arr = decode_pil(image)  # the uploads' conversion: EXIF orientation applied
        else:
            raise TypeError(f"cannot translate a {type(image).__name__}; pass a PIL image, a path, "
                            f"or an (H, W, C) array (uint8, uint16, or float in [0, 1])")
        out = self.translate_array(arr)
        return array_to_pil(out) if out.shape[2] <= 4 else out
