"""An exponential moving average of the generator's weights (smoother samples and exports)."""
from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """``module`` holds ema = d * ema + (1 - d) * weights after every ``update``.

    The decay ramps up as min(decay, (1 + step) / (10 + step)), so the average is not dominated
    by the random initial weights early on. Buffers (batch-norm statistics) are copied, not
    averaged. The copy is always in eval mode: it is what samples, validation and export use.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0 < decay < 1:
            raise ValueError(f"EMA decay {decay!r} must be in (0, 1)")
        self.decay = decay
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        # Fixed for the run (resume loads into these tensors in place), so listed once.
        self._params = list(self.module.parameters())
        self._buffers = list(self.module.buffers())

    def decay_at(self, step: int) -> float:
        return min(self.decay, (1 + step) / (10 + step))

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Blend in ``model``'s current weights; ``step`` is the number of updates made so far."""
        cur = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(self._params, cur, 1.0 - self.decay_at(step))
        for b_ema, b in zip(self._buffers, model.buffers()):
            b_ema.copy_(b)
