"""A memory plan before a long run: a few real training steps of the run's own configuration, in a
fresh process, and the peak memory they took (``pix2pix train --dry-run --memory``).

Measured rather than estimated: what a step holds (weights, gradients, Adam's two moments, the
weight average, the activations kept for backward, the perceptual network, the precision's casts)
depends on every option, and the allocator's own overhead on the device. A fresh process, so the
peak is this configuration's alone (a process's peak resident memory only ever grows).
"""
from __future__ import annotations

import dataclasses
import multiprocessing
import resource
import sys
import tempfile
from dataclasses import dataclass

from ..config import TrainConfig, config_dict, from_dict


@dataclass(frozen=True)
class StepMemory:
    """The peak memory of ``steps`` training steps of a configuration on ``device``."""

    device: str
    steps: int
    batch_size: int
    image_size: int
    # CUDA: the most PyTorch had allocated on the GPU (torch.cuda.max_memory_allocated).
    # CPU: how far the process's peak resident memory rose above what it held before training.
    peak_bytes: int
    kind: str  # "GPU, allocated" or "RAM, resident"

    def describe(self) -> str:
        return (f"memory: {self.steps} training steps at batch {self.batch_size}, "
                f"{self.image_size}x{self.image_size} px on {self.device} peaked at "
                f"{self.peak_bytes / 2**30:.2f} GiB ({self.kind}; one process, data loader workers "
                f"come on top). Activations grow with batch x pixels: halve --batch-size or "
                f"--image-size, or use --precision bf16, if that does not fit")


def _status_bytes(field: str) -> int:
    """``VmRSS`` (resident now) or ``VmHWM`` (its peak) of this process, from /proc (Linux)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":"))


def _rss_bytes(peak: bool = False) -> int:
    """Resident memory now, or its peak. Linux reads /proc: the peak of this process image, where
    getrusage's ru_maxrss also counts the process that started it (it survives exec, and a spawned
    child starts as a fork of its parent). Elsewhere ru_maxrss (KiB on Linux, bytes on macOS)."""
    try:
        return _status_bytes("VmHWM" if peak else "VmRSS")
    except (OSError, StopIteration):
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return rss if sys.platform == "darwin" else rss * 1024


def trial_config(cfg: TrainConfig, out: str, steps: int) -> TrainConfig:
    """``cfg`` as the memory plan runs it: ``steps`` steps into ``out``, no side work (samples,
    validation, trackers, extra processes), and a lazy R1 penalty due within those steps, since
    its step (a second backward pass through D) is the one that holds the most."""
    return dataclasses.replace(
        cfg, out=out, max_steps=steps, max_time=None, log_every=1, sample_every=10**9,
        checkpoint_every=10**9, val_every=0, tensorboard="off", wandb_project="", init_from="",
        r1_every=min(cfg.r1_every, steps),
        # Workers are other processes; the files were checked by the dry run already.
        data=dataclasses.replace(cfg.data, workers=0, verify=False, cache="off"))


def _measure_here(cfg_data: dict, steps: int) -> StepMemory:
    """Run in the fresh process: ``steps`` real steps in a throwaway run directory."""
    import torch

    from ..util.device import resolve_device
    from .loop import train

    cfg = from_dict(TrainConfig, cfg_data)
    device = resolve_device(cfg.device)
    with tempfile.TemporaryDirectory(prefix="pix2pix-memory-") as tmp:
        trial = trial_config(cfg, tmp, steps)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        before = _rss_bytes()
        train(trial, progress=False)
        if device.type == "cuda":
            return StepMemory(str(device), steps, cfg.batch_size, cfg.data.image_size,
                              torch.cuda.max_memory_allocated(device), "GPU, allocated")
        return StepMemory(str(device), steps, cfg.batch_size, cfg.data.image_size,
                          max(0, _rss_bytes(peak=True) - before), "RAM, resident")


def measure_step_memory(cfg: TrainConfig, steps: int = 2) -> StepMemory:
    """The peak memory of ``steps`` real training steps of ``cfg`` (its device, batch, size and
    options), measured in a fresh process; nothing is written outside a temporary folder."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_measure_here, (config_dict(cfg), steps))
