"""Pretrained directories and resumable training state.

A pretrained directory (what ``translate``, ``serve`` and ``export`` load) is::

    config.json            {"format_version", "model": ModelConfig, "direction", "image_size", ...}
    generator.safetensors  the generator's tensors (parameters and norm buffers)

A run directory adds ``checkpoints/step_NNNNNNNN/`` (a pretrained ``model/`` plus
``discriminator.safetensors`` and ``state.pt`` holding optimisers, schedulers, step and RNG), and
``latest.json`` naming the newest complete checkpoint. Every write goes to a temporary name first and
is renamed into place, so a crash never leaves a broken latest checkpoint. ``state.pt`` holds plain
tensors and containers only and is read with ``weights_only=True``.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .config import ModelConfig, from_dict, to_dict

FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "generator.safetensors"
CHECKPOINTS = "checkpoints"  # run_dir/checkpoints/step_NNNNNNNN/
STEP_PREFIX = "step_"
# With a weight average on, model/ holds the average and the trained weights sit beside it.
TRAIN_GENERATOR_NAME = "generator_train.safetensors"


@dataclass(frozen=True)
class PretrainedInfo:
    """What a pretrained directory says about its generator."""

    model: ModelConfig
    direction: str = "AtoB"
    image_size: int = 256
    # Distinct input colours of the training set (label-map models), as [r, g, b] in 0..255.
    palette: Optional[list] = None
    extra: dict = field(default_factory=dict)


def _fsync_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous() for k, v in module.state_dict().items()}


def save_pretrained(generator: nn.Module, info: PretrainedInfo, out_dir: str | Path) -> Path:
    """Write ``config.json`` and ``generator.safetensors`` into ``out_dir``; returns it."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / (WEIGHTS_NAME + ".tmp")
    save_file(_state_dict(generator), str(tmp), metadata={"format_version": str(FORMAT_VERSION)})
    os.replace(tmp, out / WEIGHTS_NAME)
    _fsync_write(out / CONFIG_NAME, (json.dumps(info_to_dict(info), indent=2) + "\n").encode())
    return out


def info_to_dict(info: PretrainedInfo) -> dict:
    """The config.json mapping of a pretrained model (also stored in exported ONNX files)."""
    return {"format_version": FORMAT_VERSION, "model": to_dict(info.model), "direction": info.direction,
            "image_size": info.image_size, "palette": info.palette, **info.extra}


def resolve_pretrained(path: str | Path) -> Path:
    """Find the pretrained directory for a pretrained dir, a checkpoint dir or a run dir."""
    p = Path(path)
    if (p / CONFIG_NAME).is_file() and (p / WEIGHTS_NAME).is_file():
        return p
    if (p / "model" / WEIGHTS_NAME).is_file():
        return p / "model"
    if (p / "latest.json").is_file():
        return latest_checkpoint(p) / "model"
    if not p.exists():
        raise FileNotFoundError(f"model path {p} does not exist")
    raise FileNotFoundError(f"{p} is not a model: expected {CONFIG_NAME} and {WEIGHTS_NAME} in it, "
                            f"or a training run directory with latest.json")


def info_from_dict(raw: dict, source: str = "config") -> PretrainedInfo:
    """Parse a config.json mapping (also stored in exported ONNX files); ``source`` names it in errors."""
    raw = dict(raw)
    version = raw.pop("format_version", None)
    if version != FORMAT_VERSION:
        raise ValueError(f"{source}: format_version {version!r} is not supported "
                         f"(this pix2pix reads version {FORMAT_VERSION})")
    model = from_dict(ModelConfig, raw.pop("model"), prefix="model.")
    known = {k: raw.pop(k) for k in ("direction", "image_size", "palette") if k in raw}
    return PretrainedInfo(model=model, extra=raw, **known)


def read_info(path: str | Path) -> PretrainedInfo:
    folder = resolve_pretrained(path)
    return info_from_dict(json.loads((folder / CONFIG_NAME).read_text()), source=str(folder / CONFIG_NAME))


def load_pretrained(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, PretrainedInfo]:
    """Rebuild the generator from its directory alone (no training flags needed)."""
    from .models import build_generator

    folder = resolve_pretrained(path)
    info = read_info(folder)
    generator = build_generator(info.model, init=False)
    state = load_file(str(folder / WEIGHTS_NAME), device="cpu")
    missing, unexpected = generator.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{folder / WEIGHTS_NAME} does not match its config ({info.model.generator}): "
                         f"missing {missing[:5]}, unexpected {unexpected[:5]}")
    return generator.to(device), info


# ---- resumable training state -------------------------------------------------------------------

def checkpoint_dir(run_dir: Path, step: int) -> Path:
    return run_dir / CHECKPOINTS / f"{STEP_PREFIX}{step:08d}"


def is_checkpoint_dir(path: Path) -> bool:
    """True for a run's ``checkpoints/step_NNNNNNNN`` folder (by its place in the run, not its files)."""
    return path.name.startswith(STEP_PREFIX) and path.parent.name == CHECKPOINTS


def save_training_checkpoint(run_dir: str | Path, *, step: int, generator: nn.Module,
                             discriminator: nn.Module, info: PretrainedInfo, state: dict[str, Any],
                             keep: int = 2, train_generator: Optional[nn.Module] = None) -> Path:
    """Write a complete checkpoint atomically, point ``latest.json`` at it, prune old ones.

    ``train_generator``: the trained weights, when ``generator`` (saved as ``model/``) is their
    moving average; see :func:`load_train_generator`.
    """
    run_dir = Path(run_dir)
    final = checkpoint_dir(run_dir, step)
    tmp = final.with_name("." + final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_pretrained(generator, info, tmp / "model")
    save_file(_state_dict(discriminator), str(tmp / "discriminator.safetensors"))
    if train_generator is not None:
        save_file(_state_dict(train_generator), str(tmp / TRAIN_GENERATOR_NAME))
    torch.save(state, tmp / "state.pt")
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    _fsync_write(run_dir / "latest.json",
                 (json.dumps({"step": step, "path": str(final.relative_to(run_dir))}) + "\n").encode())
    old = sorted(p for p in (run_dir / CHECKPOINTS).glob(STEP_PREFIX + "*") if p != final)
    for p in old[:max(0, len(old) - (keep - 1))]:
        shutil.rmtree(p, ignore_errors=True)
    return final


def latest_checkpoint(run_dir: str | Path) -> Path:
    run_dir = Path(run_dir)
    pointer = run_dir / "latest.json"
    if not pointer.is_file():
        raise FileNotFoundError(f"{run_dir} has no checkpoint to resume from (no latest.json)")
    path = run_dir / json.loads(pointer.read_text())["path"]
    if not (path / "state.pt").is_file():
        raise FileNotFoundError(f"{pointer} points at {path}, which is incomplete or missing")
    return path


def load_training_checkpoint(run_dir: str | Path) -> tuple[Path, dict[str, torch.Tensor],
                                                           dict[str, torch.Tensor], dict[str, Any]]:
    """(checkpoint path, generator tensors, discriminator tensors, state) of the newest checkpoint."""
    path = latest_checkpoint(run_dir)
    generator = load_file(str(path / "model" / WEIGHTS_NAME))
    discriminator = load_file(str(path / "discriminator.safetensors"))
    state = torch.load(path / "state.pt", map_location="cpu", weights_only=True)
    return path, generator, discriminator, state


def load_train_generator(path: Path) -> Optional[dict[str, torch.Tensor]]:
    """The trained generator tensors of checkpoint ``path`` when ``model/`` holds their moving
    average, else None (``model/`` then holds the trained weights themselves)."""
    file = path / TRAIN_GENERATOR_NAME
    return load_file(str(file)) if file.is_file() else None


def rng_state(device: torch.device) -> dict:
    """The RNG state a resumed run needs to draw the same numbers (CPU, and the GPU's when on one)."""
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict, device: torch.device) -> None:
    """Restore what :func:`rng_state` captured."""
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)
