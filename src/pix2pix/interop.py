"""Generators saved by the reference PyTorch implementation (``latest_net_G.pth``) -> our names.

The reference U-Net nests one ``model.`` level per depth (``model.model.1.model.3.model.3...``),
indexing every layer of each level's ``Sequential``, activations included:

- outermost level: 0 down-conv, 1 next level, 2 ReLU, 3 up-conv (transposed, with bias), 4 tanh
- middle levels: 0 LeakyReLU, 1 down-conv, 2 norm, 3 next level, 4 ReLU, 5 up-conv, 6 norm, [7 dropout]
- innermost level: 0 LeakyReLU, 1 down-conv, 2 ReLU, 3 up-conv, 4 norm

so level ``k`` maps to our ``down.k`` / ``up.k``. Its ResNet generator is one flat ``Sequential``
whose blocks have the same layout as ours, so only the indices shift.

One behavioural difference: the reference puts dropout on the three decoder levels *after* the
innermost one (our ``up.6, up.5, up.4``), the paper on the first three (``up.7, up.6, up.5``).
Imported U-Nets record ``dropout_start=1`` so the paper's test mode (``--paper``) drops the same
units as the reference code; the deterministic default has no dropout and is unaffected.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import torch

from .checkpoint import PretrainedInfo, save_pretrained
from .config import ModelConfig
from .models import GENERATORS, build_generator, check_model

log = logging.getLogger(__name__)

NORM_BUFFERS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
UNET_DEPTHS = {"unet_256": 8, "unet_128": 7}
RESNET_BLOCKS = {"resnet_9blocks": 9, "resnet_6blocks": 6}


def _unet_prefix(level: int) -> str:
    """Key prefix of the reference U-Net's ``Sequential`` at depth ``level`` (0 = outermost)."""
    return ("model.model.1.model." + "3.model." * (level - 1)) if level else "model.model."


def unet_key_map(depth: int) -> dict[str, str]:
    """Reference key stem -> our key stem for a U-Net of ``depth`` levels (stems lack the param name)."""
    mapping = {"model.model.0": "down.0", "model.model.3": "up.0.conv"}
    for level in range(1, depth):
        p = _unet_prefix(level)
        mapping[p + "1"] = f"down.{level}.conv"
        if level == depth - 1:
            mapping[p + "3"] = f"up.{level}.conv"
            mapping[p + "4"] = f"up.{level}.norm"
        else:
            mapping[p + "2"] = f"down.{level}.norm"
            mapping[p + "5"] = f"up.{level}.conv"
            mapping[p + "6"] = f"up.{level}.norm"
    return mapping


def resnet_key_map(blocks: int) -> dict[str, str]:
    """Reference key stem -> our key stem for the ResNet generator with ``blocks`` residual blocks."""
    mapping = {"model.1": "stem.1", "model.2": "stem.2", "model.4": "down.0", "model.5": "down.1",
               "model.7": "down.3", "model.8": "down.4"}
    for i in range(blocks):
        # Block bodies share our layout (pad, conv, norm, relu, [dropout], pad, conv, norm).
        for j in range(8):
            mapping[f"model.{10 + i}.conv_block.{j}"] = f"blocks.{i}.body.{j}"
    n = 10 + blocks
    mapping |= {f"model.{n}": "up.0", f"model.{n + 1}": "up.1", f"model.{n + 3}": "up.3",
                f"model.{n + 4}": "up.4", f"model.{n + 7}": "head.1"}
    return mapping


def load_reference_state(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a reference ``.pth`` state dict safely (``weights_only=True``: no code is unpickled)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle errors, zip errors, refused globals
        raise ValueError(f"{path}: not a state dict that loads with weights_only=True ({e}); "
                         f"save the generator with torch.save(net.state_dict(), path)") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: expected a mapping of tensor names to tensors (a generator's "
                         f"state_dict), got {type(state).__name__}")
    # DataParallel wraps names in "module."; the reference saves the unwrapped net, but forks vary.
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}


def _guess_arch(keys: set[str]) -> str:
    if any(".conv_block." in k for k in keys):
        blocks = len({k.split(".")[1] for k in keys if ".conv_block." in k})
        return f"resnet_{blocks}blocks"
    if any(k.startswith("model.model.") for k in keys):
        # A tensor at depth k has k + 2 "model." parts; the deepest is at depth (levels - 1).
        depth = max(k.count("model.") for k in keys if k.startswith("model.model.")) - 1
        return f"U-Net with {depth} levels (unet_{2 ** depth})"
    if any(k.startswith("model.") and k.split(".")[1].isdigit() for k in keys):
        return "a discriminator (latest_net_D.pth?), not a generator"
    return "unknown"


def infer_model_config(state: dict[str, torch.Tensor], arch: str, *, norm: Optional[str] = None) -> ModelConfig:
    """Channels, width, norm and dropout of the reference generator, read from its tensors."""
    if arch in UNET_DEPTHS:
        first, last = state.get("model.model.0.weight"), state.get("model.model.3.weight")
        if first is None or last is None:
            raise ValueError(f"this file is not a reference U-Net (no model.model.0.weight / "
                             f"model.model.3.weight); it looks like: {_guess_arch(set(state))}")
        # Conv weights are (out, in, k, k); transposed-conv weights (in, out, k, k).
        in_ch, base, out_ch = first.shape[1], first.shape[0], last.shape[1]
        has_bn = any(k.endswith("running_mean") for k in state)
        # The reference trains pix2pix U-Nets with dropout (its --no_dropout is off by default),
        # and dropout leaves no tensors behind, so this is assumed, not read.
        dropout, dropout_start = 0.5, 1
    elif arch in RESNET_BLOCKS:
        if "model.1.weight" not in state or "model.10.conv_block.1.weight" not in state:
            raise ValueError(f"this file is not a reference ResNet generator; it looks like: "
                             f"{_guess_arch(set(state))}")
        first = state["model.1.weight"]
        in_ch, base = first.shape[1], first.shape[0]
        head = f"model.{17 + RESNET_BLOCKS[arch]}.weight"
        if head not in state:
            raise ValueError(f"this file has no {head} (the output conv of {arch}); it looks like: "
                             f"{_guess_arch(set(state))}")
        out_ch = state[head].shape[0]
        has_bn = any(k.endswith("running_mean") for k in state)
        # A dropout layer shifts the second conv of each block from index 5 to 6.
        dropout, dropout_start = (0.5 if "model.10.conv_block.6.weight" in state else 0.0), 0
    else:
        raise ValueError(f"--arch {arch!r} cannot be imported; choose one of "
                         f"{', '.join(list(UNET_DEPTHS) + list(RESNET_BLOCKS))}")
    detected = "batch" if has_bn else "instance"
    if norm is None:
        # Instance norm (affine=False) and no norm both leave no tensors: instance is the
        # reference's choice whenever batch norm is not used (CycleGAN, --norm instance).
        norm = detected
    elif (norm == "batch") != has_bn:
        raise ValueError(f"--norm {norm} does not match the file, which {'has' if has_bn else 'has no'} "
                         f"batch-norm statistics; drop --norm or pass --norm {detected}")
    # The reference code tests with each image's own batch-norm statistics unless given --eval.
    return ModelConfig(generator=arch, in_channels=int(in_ch), out_channels=int(out_ch),
                       base_channels=int(base), norm=norm, dropout=dropout, dropout_start=dropout_start,
                       test_statistics="batch" if norm == "batch" else "running")


def convert_state_dict(state: dict[str, torch.Tensor], arch: str, cfg: ModelConfig,
                       target: Optional[dict[str, torch.Tensor]] = None) -> dict[str, torch.Tensor]:
    """Rename every reference tensor to ours; raise ValueError listing anything that does not fit.

    ``target`` is the state dict of the generator the tensors are for (built from ``cfg`` if None).
    """
    mapping = unet_key_map(UNET_DEPTHS[arch]) if arch in UNET_DEPTHS else resnet_key_map(RESNET_BLOCKS[arch])
    if target is None:
        target = build_generator(cfg, init=False).state_dict()
    converted: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for key, tensor in state.items():
        stem, _, param = key.rpartition(".")
        ours = mapping.get(stem)
        if ours is None or f"{ours}.{param}" not in target:
            if cfg.norm == "instance" and param in ("running_mean", "running_var", "num_batches_tracked"):
                # PyTorch < 0.4 saved statistics for InstanceNorm; the reference code drops them too.
                continue
            unknown.append(key)
            continue
        name = f"{ours}.{param}"
        if tuple(tensor.shape) != tuple(target[name].shape):
            raise ValueError(f"{key} has shape {tuple(tensor.shape)} but {arch} with "
                             f"{cfg.base_channels} base channels needs {tuple(target[name].shape)} "
                             f"for {name}; check --arch")
        converted[name] = tensor.to(target[name].dtype).clone()
    missing = [k for k in target if k not in converted]
    # Older reference files predate BatchNorm's num_batches_tracked counter; it is unused at inference.
    for k in [k for k in missing if k.endswith("num_batches_tracked")]:
        converted[k] = torch.zeros((), dtype=torch.long)
        missing.remove(k)
    if unknown or missing:
        raise ValueError(f"the file does not match the reference {arch}: {len(unknown)} unexpected "
                         f"tensor(s) {unknown[:4]}, {len(missing)} missing {missing[:4]}; it looks like: "
                         f"{_guess_arch(set(state))}")
    return converted


def import_reference_weights(path: str | Path, arch: str, out_dir: str | Path, *,
                             norm: Optional[str] = None, direction: str = "AtoB") -> Path:
    """Convert a reference ``latest_net_G.pth`` into a pretrained directory; returns ``out_dir``."""
    if arch not in GENERATORS:
        raise ValueError(f"unknown --arch {arch!r}; choose one of {', '.join(GENERATORS)}")
    state = load_reference_state(path)
    cfg = infer_model_config(state, arch, norm=norm)
    check_model(cfg)
    generator = build_generator(cfg, init=False)
    converted = convert_state_dict(state, arch, cfg, target=generator.state_dict())
    generator.load_state_dict(converted, strict=True)
    info = PretrainedInfo(model=cfg, direction=direction,
                          extra={"imported_from": {"file": Path(path).name, "format": "reference-pytorch",
                                                   "arch": arch}})
    log.info("imported %d tensors from %s as %s (%d->%d channels, base %d, %s norm)", len(converted),
             path, arch, cfg.in_channels, cfg.out_channels, cfg.base_channels, cfg.norm)
    return save_pretrained(generator, info, out_dir)


__all__ = ["unet_key_map", "resnet_key_map", "load_reference_state", "infer_model_config",
           "convert_state_dict", "import_reference_weights"]
