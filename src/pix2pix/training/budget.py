"""Which limit ends a run first (its steps or ``--max-time``), when, and why it stopped.

The progress bar, ``status.json`` and ``report.html`` read it, so all three agree: with a time
budget the bar's total is the step the run is expected to reach when the time is up (if that
comes before the last step), and the ETA is the time to whichever limit comes first.

``--max-time`` counts from the start of this process: a resumed run gets a fresh budget (the
log says so and how long the earlier sessions ran).
"""
from __future__ import annotations

import time
from typing import Optional


def readable_duration(seconds: float) -> str:
    """3725 -> '1 h 02 min', 185 -> '3 min 05 s', 42.4 -> '42 s'."""
    s = max(0, int(round(seconds)))
    if s >= 86400:
        return f"{s // 86400} d {s % 86400 // 3600:02d} h"
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    if s >= 60:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s} s"


class Budget:
    """The run's two limits: ``total_steps`` and ``max_time`` seconds (None: no time cap).

    ``observe(step)`` after each step; the rate is this session's steps over its time since the
    first step (the first step's warm-up excluded), so it settles within a few steps.
    """

    def __init__(self, total_steps: int, max_time: Optional[float], start_step: int,
                 t_start: float, clock=time.monotonic) -> None:
        self.total, self.max_time = total_steps, max_time
        self.clock, self.t_start = clock, t_start
        self.step = start_step
        self._first: Optional[tuple[int, float]] = None
        self.rate = 0.0

    def observe(self, step: int) -> None:
        now = self.clock()
        self.step = step
        if self._first is None:
            self._first = (step, now)
        elif now > self._first[1]:
            self.rate = (step - self._first[0]) / (now - self._first[1])

    def elapsed(self) -> float:
        return self.clock() - self.t_start

    def time_left(self) -> Optional[float]:
        return None if self.max_time is None else max(0.0, self.max_time - self.elapsed())

    def ends_by(self) -> str:
        """'max_time' when the time budget is expected to run out before the last step, else 'steps'."""
        left = self.time_left()
        if left is None or not self.rate:
            return "steps"
        return "max_time" if self.step + self.rate * left < self.total else "steps"

    def expected_last_step(self) -> int:
        """The step the run is expected to stop at (the bar's total)."""
        if self.ends_by() == "max_time":
            return min(self.total, max(self.step + 1, int(self.step + self.rate * self.time_left())))
        return self.total

    def eta_s(self) -> Optional[float]:
        """Seconds until the run stops (whichever limit first); None while the rate is unknown."""
        left = self.time_left()
        by_steps = (self.total - self.step) / self.rate if self.rate else None
        if by_steps is None:
            return left
        return by_steps if left is None else min(by_steps, left)

    def status(self) -> dict:
        """The running fields of status.json: rate, ETA (seconds and readable), the limit ahead."""
        out: dict = {"ends_by": self.ends_by(), "expected_last_step": self.expected_last_step()}
        if self.rate:
            out["it_per_s"] = round(self.rate, 3)
        eta = self.eta_s()
        if eta is not None:
            out.update(eta_s=round(eta), eta=readable_duration(eta))
        if self.max_time is not None:
            out["max_time_s"] = self.max_time
        return out


RUNNING_KEYS = ("ends_by", "expected_last_step", "eta_s", "eta")


def stop_reason(state: str, step: int, total: int, max_time: Optional[float],
                signum: Optional[int] = None) -> str:
    """One sentence for status.json and the report: why the run is no longer running."""
    import signal

    if state == "finished":
        return f"finished: all {total} steps done"
    if state.startswith("stopped") and max_time is not None:
        return (f"stopped by the time budget (--max-time {readable_duration(max_time)}) at step "
                f"{step} of {total}; continue with --resume")
    if state == "interrupted":
        name = signal.Signals(signum).name if signum else "a signal"
        return f"interrupted ({name}, e.g. Ctrl-C) at step {step} of {total}; continue with --resume"
    if state == "diverged":
        return f"diverged: a loss became NaN or inf by step {step}; the last good checkpoint is kept"
    return state
