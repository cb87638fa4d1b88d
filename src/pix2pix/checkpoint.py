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
import logging
import os
import shutil
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .builtin import BUILTINS, builtin_model_dir
from .config import ModelConfig, from_dict, to_dict
from .models.registry import check_model
from .util.fsutil import atomic_write_bytes, fsync_dir, fsync_file, fsync_tree

log = logging.getLogger(__name__)
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
    atomic_write_bytes(path, data)


def _state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous() for k, v in module.state_dict().items()}


def save_pretrained(generator: nn.Module, info: PretrainedInfo, out_dir: str | Path) -> Path:
    """Write ``config.json`` and ``generator.safetensors`` into ``out_dir``; returns it."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / (WEIGHTS_NAME + ".tmp")
    save_file(_state_dict(generator), str(tmp), metadata={"format_version": str(FORMAT_VERSION)})
    fsync_file(tmp)
    os.replace(tmp, out / WEIGHTS_NAME)
    _fsync_write(out / CONFIG_NAME, (json.dumps(info_to_dict(info), indent=2) + "\n").encode())
    return out


def info_to_dict(info: PretrainedInfo) -> dict:
    """The config.json mapping of a pretrained model (also stored in exported ONNX files)."""
    return {"format_version": FORMAT_VERSION, "model": to_dict(info.model), "direction": info.direction,
            "image_size": info.image_size, "palette": info.palette, **info.extra}


def builtin_or_path(path: str | Path) -> Path:
    """The built-in model's directory when ``path`` is a built-in model's name (``sketch2photo``)
    and no file of that name exists; else ``path`` as it is."""
    p = Path(path)
    return builtin_model_dir(str(path)) if str(path) in BUILTINS and not p.exists() else p


def resolve_pretrained(path: str | Path) -> Path:
    """Find the pretrained directory for a pretrained dir, a checkpoint dir, a run dir, or the name
    of a built-in model (``sketch2photo``) where no file of that name exists."""
    p = builtin_or_path(path)
    if (p / CONFIG_NAME).is_file() and (p / WEIGHTS_NAME).is_file():
        return p
    if (p / "model" / WEIGHTS_NAME).is_file():
        return p / "model"
    if (p / "latest.json").is_file():
        return latest_checkpoint(p) / "model"
    if not p.exists():
        raise FileNotFoundError(f"model path {p} does not exist (nor is it a built-in model: "
                                f"{', '.join(BUILTINS)})")
    raise FileNotFoundError(f"{p} is not a model: expected {CONFIG_NAME} and {WEIGHTS_NAME} in it, "
                            f"or a training run directory with latest.json")


def info_from_dict(raw: dict, source: str = "config") -> PretrainedInfo:
    """Parse a config.json mapping (also stored in exported ONNX files); ``source`` names it in errors."""
    raw = dict(raw)
    version = raw.pop("format_version", None)
    if version != FORMAT_VERSION:
        raise ValueError(f"{source}: format_version {version!r} is not supported "
                         f"(this pix2pix reads version {FORMAT_VERSION})")
    if not isinstance(raw.get("model"), dict):
        raise ValueError(f"{source} has no 'model' section (the architecture), so the weights cannot "
                         f"be rebuilt")
    model = from_dict(ModelConfig, raw.pop("model"), prefix="model.")
    try:
        check_model(model)
    except ValueError as e:
        raise ValueError(f"{source}: {e}") from None
    known = {k: raw.pop(k) for k in ("direction", "image_size", "palette") if k in raw}
    return PretrainedInfo(model=model, extra=raw, **known)


def read_info(path: str | Path) -> PretrainedInfo:
    folder = resolve_pretrained(path)
    file = folder / CONFIG_NAME
    try:
        raw = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{file} is not valid JSON ({e}); it is the model's description that pix2pix "
                         f"writes beside {WEIGHTS_NAME}: restore it from the run's checkpoint, or "
                         f"re-save the model") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("model"), dict):
        raise ValueError(f"{file} has no 'model' section (the architecture: generator, channels, "
                         f"norm, ...), so the weights cannot be rebuilt; restore the config.json "
                         f"that was saved with {WEIGHTS_NAME}")
    return info_from_dict(raw, source=str(file))


def read_tensors(file: Path) -> dict[str, torch.Tensor]:
    """A safetensors file's tensors, or a ValueError naming the file when it is truncated or corrupt."""
    problem = safetensors_problem(file)
    if problem is None:
        try:
            return load_file(str(file), device="cpu")
        except Exception as e:  # noqa: BLE001 - safetensors raises its own error types
            problem = f"it cannot be read ({e})"
    raise ValueError(f"{file} is damaged: {problem}. Restore it from a backup or an older "
                     f"checkpoint (checkpoints/step_*/), or retrain")


def load_pretrained(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, PretrainedInfo]:
    """Rebuild the generator from its directory alone (no training flags needed)."""
    from .models import build_generator

    folder = resolve_pretrained(path)
    info = read_info(folder)
    generator = build_generator(info.model, init=False)
    file = folder / WEIGHTS_NAME
    state = read_tensors(file)
    expected = generator.state_dict()
    wrong = [f"{k}: {tuple(v.shape)} in the file, {tuple(expected[k].shape)} in the architecture"
             for k, v in state.items() if k in expected and v.shape != expected[k].shape]
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if wrong or missing or unexpected:
        m = info.model
        raise ValueError(
            f"{file} does not match {folder / CONFIG_NAME} (generator {m.generator}, base_channels "
            f"{m.base_channels}, {m.in_channels}->{m.out_channels} channels, norm {m.norm}): "
            + "; ".join(filter(None, [f"{len(wrong)} tensor(s) of another shape, e.g. {wrong[0]}" if wrong else "",
                                      f"missing {missing[:3]}" if missing else "",
                                      f"unexpected {unexpected[:3]}" if unexpected else ""]))
            + ". The config.json and the weights come from different models: put back the pair "
              "that was saved together")
    generator.load_state_dict(state)
    return generator.to(device), info


def safetensors_problem(file: Path) -> Optional[str]:
    """Why ``file`` is not a complete safetensors file (missing, truncated, bad header), or None.
    Reads only the header and the size, so it is cheap for any file size."""
    try:
        size = file.stat().st_size
        with open(file, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                return f"it is {size} bytes, shorter than a safetensors header"
            (n,) = struct.unpack("<Q", head)
            if n > size - 8:
                return f"its header claims {n:,} bytes but the file has {size:,}: it is truncated"
            header = json.loads(f.read(n))
    except FileNotFoundError:
        return "it is missing"
    except (OSError, ValueError) as e:
        return f"its header is unreadable ({e})"
    ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"]
    if 8 + n + max(ends, default=0) != size:
        return (f"it holds {size:,} bytes where its header describes {8 + n + max(ends, default=0):,}: "
                f"it is truncated or has trailing garbage")
    return None


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
    # Half-written checkpoints of a run killed earlier: never complete, never pointed at.
    for stale in final.parent.glob(f".{STEP_PREFIX}*.*") if final.parent.is_dir() else []:
        shutil.rmtree(stale, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_pretrained(generator, info, tmp / "model")
    save_file(_state_dict(discriminator), str(tmp / "discriminator.safetensors"))
    if train_generator is not None:
        save_file(_state_dict(train_generator), str(tmp / TRAIN_GENERATOR_NAME))
    torch.save(state, tmp / "state.pt")
    # Every byte on disk before the rename, and the rename before latest.json names it: after a
    # crash or power cut, latest.json never points at a checkpoint that is not whole.
    fsync_tree(tmp)
    if final.exists():
        _remove_checkpoint(final)
    os.replace(tmp, final)
    fsync_dir(final.parent)
    _fsync_write(run_dir / "latest.json",
                 (json.dumps({"step": step, "path": str(final.relative_to(run_dir))}) + "\n").encode())
    old = sorted(p for p in (run_dir / CHECKPOINTS).glob(STEP_PREFIX + "*") if p != final)
    for p in old[:max(0, len(old) - (keep - 1))]:
        _remove_checkpoint(p)
    return final


def _remove_checkpoint(path: Path) -> None:
    """Rename away first, then delete: a crash mid-delete leaves a hidden folder that the next
    save removes, never a half-deleted checkpoint under its real name."""
    doomed = path.with_name(f".{path.name}.deleting")
    shutil.rmtree(doomed, ignore_errors=True)
    os.replace(path, doomed)
    shutil.rmtree(doomed, ignore_errors=True)


def checkpoint_problem(path: Path) -> Optional[str]:
    """Why the checkpoint folder ``path`` is not complete and readable, or None. Cheap: file
    headers, sizes and the zip directory of state.pt, not every tensor."""
    if not path.is_dir():
        return "it is missing"
    try:
        json.loads((path / "model" / CONFIG_NAME).read_text())
    except (OSError, ValueError) as e:
        return f"model/{CONFIG_NAME} is unreadable ({e})"
    for name in [f"model/{WEIGHTS_NAME}", "discriminator.safetensors",
                 *(p.name for p in path.glob("*.safetensors") if p.name != "discriminator.safetensors")]:
        problem = safetensors_problem(path / name)
        if problem:
            return f"{name}: {problem}"
    try:
        with zipfile.ZipFile(path / "state.pt") as z:
            z.namelist()
    except (OSError, zipfile.BadZipFile) as e:
        return f"state.pt is unreadable or truncated ({e})"
    return None


def _checkpoint_candidates(run_dir: Path) -> list[Path]:
    """The checkpoint latest.json names first, then every other one, newest first."""
    named: list[Path] = []
    pointer = run_dir / "latest.json"
    try:
        named = [run_dir / json.loads(pointer.read_text())["path"]]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    folder = run_dir / CHECKPOINTS
    others = sorted((p for p in folder.glob(STEP_PREFIX + "*") if p.is_dir() and p not in named),
                    reverse=True) if folder.is_dir() else []
    return named + others


def latest_checkpoint(run_dir: str | Path) -> Path:
    """The newest complete checkpoint: the one latest.json names, or, when that one is damaged,
    the newest older one that is complete (with a warning naming what was skipped and why)."""
    run_dir = Path(run_dir)
    candidates = _checkpoint_candidates(run_dir)
    if not candidates:
        raise FileNotFoundError(f"{run_dir} has no checkpoint to resume from (no latest.json and "
                                f"no checkpoints/step_*)")
    skipped = []
    for path in candidates:
        problem = checkpoint_problem(path)
        if problem is None:
            if skipped:
                log.warning("using the older checkpoint %s: %s", path, "; ".join(skipped))
            return path
        skipped.append(f"{path} is damaged ({problem})")
    raise ValueError(f"{run_dir} has no complete checkpoint: " + "; ".join(skipped)
                     + ". Start a new run (another --out), or restore a checkpoint from a backup")


def load_training_checkpoint(run_dir: str | Path) -> tuple[Path, dict[str, torch.Tensor],
                                                           dict[str, torch.Tensor], dict[str, Any]]:
    """(checkpoint path, generator tensors, discriminator tensors, state) of the newest checkpoint
    that reads in full; a damaged newer one is skipped with a warning that says why."""
    run_dir = Path(run_dir)
    skipped = []
    for path in _checkpoint_candidates(run_dir):
        problem = checkpoint_problem(path)
        if problem is None:
            try:
                generator = read_tensors(path / "model" / WEIGHTS_NAME)
                discriminator = read_tensors(path / "discriminator.safetensors")
                state = torch.load(path / "state.pt", map_location="cpu", weights_only=True)
            except Exception as e:  # noqa: BLE001 - any failure to read means: try an older one
                problem = f"it cannot be read ({type(e).__name__}: {e})"
            else:
                if skipped:
                    log.warning("resuming from the older checkpoint %s: %s", path, "; ".join(skipped))
                return path, generator, discriminator, state
        skipped.append(f"{path} is damaged ({problem})")
    if not skipped:
        raise FileNotFoundError(f"{run_dir} has no checkpoint to resume from (no latest.json and "
                                f"no checkpoints/step_*)")
    raise ValueError(f"{run_dir} has no complete checkpoint to resume from: " + "; ".join(skipped)
                     + ". Start a new run (another --out), or restore a checkpoint from a backup")


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
