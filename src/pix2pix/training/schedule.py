"""Learning-rate schedule as a function of the step: no scheduler object to save or restore."""
from __future__ import annotations


def lr_factor(step: int, *, decay_start: int, decay_end: int, schedule: str = "linear") -> float:
    """1 until ``decay_start``, then linear to 0 at ``decay_end`` (the paper's); 1 for 'constant'."""
    if schedule == "constant" or step < decay_start or decay_end <= decay_start:
        return 1.0
    return max(0.0, (decay_end - step) / (decay_end - decay_start))


def set_lr(optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
