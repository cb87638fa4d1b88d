"""Fine-tuning: start a run's weights from a trained model (``--init-from MODEL``).

MODEL is a pretrained directory (``config.json`` + ``generator.safetensors``, e.g. from `pix2pix
import-weights`), a run directory (its latest checkpoint) or one checkpoint directory. The
generator's weights are copied exactly (a run's ``model/``: the weight average when it kept one);
the discriminator's too when MODEL is a run or checkpoint with one of the same shapes, else D
starts fresh. Optimiser state, step and schedule always start fresh: only weights carry over.
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
from pathlib import Path
from typing import Optional

from torch import nn

from ..checkpoint import WEIGHTS_NAME, read_info, read_tensors, resolve_pretrained
from ..models.config import ModelConfig

log = logging.getLogger(__name__)

# The ModelConfig fields that decide the generator's tensors (their names and shapes).
GENERATOR_FIELDS = ("generator", "in_channels", "out_channels", "base_channels", "norm", "upsample",
                    "input_skip")


class InitMismatch(ValueError):
    """``--init-from`` names a model whose architecture differs from the run's."""


def describe(model: ModelConfig) -> str:
    """One line naming an architecture, e.g. ``unet_128 (base 32, 3->3 channels, batch norm, resize)``."""
    skip = ", input skip" if model.input_skip else ""
    return (f"{model.generator} (base {model.base_channels}, {model.in_channels}->{model.out_channels} "
            f"channels, {model.norm} norm, {model.upsample} decoder{skip})")


def _source_dir(path: str | Path) -> Path:
    """The pretrained directory ``--init-from`` names; a missing one is an error naming the option
    (the path alone does not say where it came from)."""
    try:
        return resolve_pretrained(path)
    except FileNotFoundError as e:
        raise FileNotFoundError(f"--init-from {path}: {e}") from None


def source_model(path: str | Path) -> ModelConfig:
    """The architecture saved with ``path`` (pretrained, run or checkpoint directory)."""
    return read_info(_source_dir(path)).model


def adopt_architecture(run_model: ModelConfig, path: str | Path) -> ModelConfig:
    """``run_model`` with the generator fields of the model at ``path`` (what `pix2pix train
    --init-from` starts from, before the run's own options)."""
    src = source_model(path)
    return dataclasses.replace(run_model, **{f: getattr(src, f) for f in GENERATOR_FIELDS})


def _discriminator_file(folder: Path) -> Optional[Path]:
    # A checkpoint's model/ sits beside its discriminator.safetensors.
    file = folder.parent / "discriminator.safetensors"
    return file if folder.name == "model" and file.is_file() else None


def init_weights(path: str | Path, model: ModelConfig, generator: nn.Module,
                 discriminator: nn.Module, shrink: float = 1.0, perturb: float = 0.0) -> dict:
    """Copy the weights of ``path`` into ``generator`` (and ``discriminator`` when it has a matching
    one); returns a record of where the run started (saved in the run's status and report).
    ``shrink``/``perturb`` (1/0: an exact copy) blend the generator's convolution weights as
    ``shrink * source + perturb * the generator's own initial draw`` (shrink and perturb).

    Raises :class:`InitMismatch`, naming both architectures, when the generators differ.
    """
    folder = _source_dir(path)
    src = read_info(folder).model
    differ = [f for f in GENERATOR_FIELDS if getattr(src, f) != getattr(model, f)]
    file = folder / WEIGHTS_NAME
    state = read_tensors(file)
    expected = generator.state_dict()
    wrong = [k for k, v in state.items() if k in expected and v.shape != expected[k].shape]
    if differ or wrong or set(state) != set(expected):
        what = ", ".join(f"{f} {getattr(src, f)!r} vs {getattr(model, f)!r}" for f in differ) or \
            f"{len(wrong)} tensors of another shape"
        raise InitMismatch(
            f"--init-from {path}: that model is a {describe(src)}, this run trains a "
            f"{describe(model)} ({what}). Fine-tuning needs the same generator: drop the options that "
            f"change it (--arch, --base-channels, --in-channels, --out-channels, --norm, --upsample)")
    if shrink != 1.0 or perturb != 0.0:
        # Convolution weights only: biases and norm affines keep the source's values.
        # ``expected`` still holds the generator's fresh draw (nothing is loaded yet).
        state = {k: shrink * v + perturb * expected[k] if v.ndim > 1 and v.is_floating_point() else v
                 for k, v in state.items()}
    generator.load_state_dict(state)
    record = {"source": str(path), "model_dir": str(folder),
              "generator_sha256": hashlib.sha256(file.read_bytes()).hexdigest(),
              "architecture": describe(src), "discriminator": False}
    d_file = _discriminator_file(folder)
    if d_file is not None:
        d_state = read_tensors(d_file)
        d_expected = discriminator.state_dict()
        if set(d_state) == set(d_expected) and all(v.shape == d_expected[k].shape for k, v in d_state.items()):
            discriminator.load_state_dict(d_state)
            record["discriminator"] = True
        else:
            log.info("--init-from %s: its discriminator has another shape; D starts fresh", path)
    log.info("initialised from %s (%s; discriminator %s)", folder, record["architecture"],
             "too" if record["discriminator"] else "fresh")
    return record


__all__ = ["GENERATOR_FIELDS", "InitMismatch", "adopt_architecture", "describe", "init_weights",
           "source_model"]
