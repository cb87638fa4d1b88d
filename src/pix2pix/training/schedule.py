"""Learning-rate schedule as a function of the step: no scheduler object to save or restore.

Three schedules (``TrainConfig.lr_schedule``): ``linear``, the paper's (constant for ``epochs``,
then linear to zero over ``decay_epochs``); ``constant``; and ``fit``, the paper's shape fitted to
wherever the run really ends (``--max-time`` or ``--max-steps``, whichever comes first), so a
time-boxed run still finishes with its learning rate decayed to zero instead of stopping in the
constant phase.
"""
from __future__ import annotations


def lr_factor(step: float, *, decay_start: int, decay_end: int, schedule: str = "linear") -> float:
    """1 until ``decay_start``, then linear to 0 at ``decay_end`` (the paper's); 1 for 'constant'."""
    if schedule == "constant" or step < decay_start or decay_end <= decay_start:
        return 1.0
    return max(0.0, (decay_end - step) / (decay_end - decay_start))


class FittedSchedule:
    """The step schedule run faster so that it reaches ``decay_end`` at the run's expected end.

    ``position(step)`` is where the run is on the step schedule: it moves at ``rate`` schedule
    steps per training step from the last ``refit``. ``refit(step, expected_last)`` (called every
    few steps with the budget's estimate) changes only the rate from ``step`` on, so the learning
    rate stays continuous when the estimate moves. A rate below 1 is never used: with time to
    spare the run follows the step schedule and ends at ``decay_end`` as usual.
    """

    def __init__(self, decay_start: int, decay_end: int, start_step: int) -> None:
        self.decay_start, self.decay_end = decay_start, decay_end
        self.anchor_step, self.anchor_pos, self.rate = start_step, float(start_step), 1.0

    def position(self, step: int) -> float:
        return min(float(self.decay_end), self.anchor_pos + (step - self.anchor_step) * self.rate)

    def factor(self, step: int) -> float:
        """The lr multiplier at ``step`` (in [0, 1])."""
        return lr_factor(self.position(step), decay_start=self.decay_start, decay_end=self.decay_end)

    def refit(self, step: int, expected_last: int) -> None:
        """Aim to reach the end of the schedule at step ``expected_last``."""
        pos = self.position(step)
        self.anchor_step, self.anchor_pos = step, pos
        if expected_last > step:
            self.rate = max(1.0, (self.decay_end - pos) / (expected_last - step))

    def done(self, step: int) -> bool:
        """True once the schedule has reached zero (the run is finished)."""
        return self.position(step) >= self.decay_end


def set_lr(optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
