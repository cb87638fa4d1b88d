"""Signs that a run is failing, read where the run already looks at itself.

Users of GAN trainers lose hours to runs that went wrong early: outputs of one colour, the same
output for every input, a discriminator that has won, a model that memorises its training pairs.
:class:`HealthMonitor` checks for these at the steps where the run already computes what they
need (the sample grid, the logged losses, each validation), warns once when a sign appears, says
what to try, and keeps the current signs for ``status.json`` and ``report.html``.

The checks are a table (:data:`CHECKS`): each names what it reads and returns what it saw, or
``None``. Their thresholds flag only gross failures (ten times off, sustained), never a run that
is merely slow; every run's first outputs are flat, so nothing is checked before ``health_after``
steps.
"""
from __future__ import annotations

import logging
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Callable, Optional

import torch

from ..config import METRICS

log = logging.getLogger(__name__)

# Sustained over this many logged loss lines (the default log_every of 50: 250 steps).
LOSS_WINDOW = 5
# The discriminator has won when its loss on real plus fake pairs stays below this (each under
# ~0.025: about 97.5% confident on every patch with the vanilla loss; a healthy run sits at 0.3-1.4).
D_WON_LOSS = 0.05
# Outputs are flat / alike when their spread is under this fraction of the targets'.
SPREAD_FRACTION = 0.1
# A validation score this much worse than its best, two or more validations after it.
VAL_WORSE = 0.2
# Targets that hardly vary themselves say nothing about the outputs' spread.
MIN_TARGET_SPREAD = 0.05
# A tanh output beyond this is saturated. Outputs with nearly every value saturated (targets with
# at most half as many) have stopped learning, flat or not: a learning rate far too high can leave
# a saturated pattern of +-1 instead of one colour, depending on the CPU's rounding.
SATURATION = 0.98
SATURATED_FRACTION = 0.95


@dataclass
class Evidence:
    """What the run knows at a step. Images are (N, C, H, W) in [-1, 1]; ``losses`` the last
    logged loss lines, oldest first; ``validations`` (step, value) of ``metric``, oldest first."""

    step: int
    inputs: Optional[torch.Tensor] = None
    outputs: Optional[torch.Tensor] = None
    targets: Optional[torch.Tensor] = None
    losses: list[dict[str, float]] = field(default_factory=list)
    validations: list[tuple[int, float]] = field(default_factory=list)
    metric: str = "l1"


@dataclass(frozen=True)
class Symptom:
    """One sign of a failing run: which check, from which step, what was measured, what to try."""

    name: str
    step: int
    seen: str
    advice: str


def _spatial_spread(x: torch.Tensor) -> float:
    """Median over images of each image's per-channel standard deviation over pixels."""
    return float(x.float().flatten(2).std(dim=2).mean(dim=1).median())


def _saturated(x: torch.Tensor) -> float:
    """The fraction of values of ``x`` (in [-1, 1]) beyond +-SATURATION."""
    return float((x.float().abs() > SATURATION).float().mean())


def flat_output(ev: Evidence) -> Optional[str]:
    if ev.outputs is None or ev.targets is None:
        return None
    out, tgt = _spatial_spread(ev.outputs), _spatial_spread(ev.targets)
    if tgt < MIN_TARGET_SPREAD:
        return None
    if out < SPREAD_FRACTION * tgt:
        mean = float(ev.outputs.float().mean())
        shade = "black" if mean < -0.8 else "white" if mean > 0.8 else "of one colour"
        return (f"the sample outputs are flat ({shade}): their spread over pixels is {out:.3f} "
                f"against the targets' {tgt:.3f}")
    sat_out, sat_tgt = _saturated(ev.outputs), _saturated(ev.targets)
    if sat_out >= SATURATED_FRACTION and sat_tgt <= sat_out / 2:
        return (f"the sample outputs are saturated: {sat_out:.1%} of their values are at -1 or 1, "
                f"against {sat_tgt:.1%} of the targets'")
    return None


def same_output(ev: Evidence) -> Optional[str]:
    if ev.outputs is None or ev.targets is None or ev.inputs is None or len(ev.outputs) < 2:
        return None
    across = lambda x: float(x.float().std(dim=0).mean())  # noqa: E731  spread across the samples
    if across(ev.inputs) < MIN_TARGET_SPREAD or across(ev.targets) < MIN_TARGET_SPREAD:
        return None
    out, tgt = across(ev.outputs), across(ev.targets)
    if out >= SPREAD_FRACTION * tgt or flat_output(ev) is not None:
        return None
    return (f"the generator gives nearly the same output for every sample input: the outputs differ "
            f"by {out:.3f} from one another, the targets by {tgt:.3f}")


def copies_input(ev: Evidence) -> Optional[str]:
    if ev.outputs is None or ev.targets is None or ev.inputs is None \
            or ev.inputs.shape != ev.outputs.shape:
        return None
    to_input = float((ev.outputs.float() - ev.inputs.float()).abs().mean())
    target_to_input = float((ev.targets.float() - ev.inputs.float()).abs().mean())
    if target_to_input < 2 * MIN_TARGET_SPREAD or to_input >= SPREAD_FRACTION * target_to_input:
        return None
    return (f"the outputs are copies of the inputs: {to_input:.3f} from them on average, where the "
            f"targets are {target_to_input:.3f} from them")


def discriminator_won(ev: Evidence) -> Optional[str]:
    if len(ev.losses) < LOSS_WINDOW:
        return None
    recent = ev.losses[-LOSS_WINDOW:]
    if any("loss/d_real" not in line or "loss/d_fake" not in line for line in recent):
        return None  # no discriminator (gan_weight 0)
    totals = [line["loss/d_real"] + line["loss/d_fake"] for line in recent]
    if max(totals) >= D_WON_LOSS:
        return None
    return (f"the discriminator tells real from fake almost perfectly: its loss (real + fake) stayed "
            f"under {D_WON_LOSS} over the last {LOSS_WINDOW} log lines (last {totals[-1]:.4f})")


def validation_worse(ev: Evidence) -> Optional[str]:
    if len(ev.validations) < 3 or METRICS.get(ev.metric, True):  # read on lower-is-better metrics
        return None
    best_at = min(range(len(ev.validations)), key=lambda i: ev.validations[i][1])
    best_step, best = ev.validations[best_at]
    now = ev.validations[-1][1]
    if len(ev.validations) - 1 - best_at < 2 or best <= 0 or now < (1 + VAL_WORSE) * best:
        return None
    return (f"validation {ev.metric} is {now / best - 1:.0%} worse than its best ({best:.4g} at step "
            f"{best_step}) and has not come back for {len(ev.validations) - 1 - best_at} validations")


@dataclass(frozen=True)
class Check:
    """A table row: the function (``None``: healthy, else what was seen) and what to try."""

    fn: Callable[[Evidence], Optional[str]]
    advice: str


CHECKS: dict[str, Check] = {
    "flat_output": Check(flat_output,
        "a learning rate too high saturates the output (try --lr 1e-4 and --resume from an earlier "
        "checkpoint), or the inputs carry nothing to translate: look at the pairs "
        "(`pix2pix data check`) and the direction (--direction AtoB|BtoA)"),
    "same_output": Check(same_output,
        "mode collapse: the generator ignores its input. Check that the pairs line up "
        "(`pix2pix data check`); a larger --l1-weight, a lower --gan-weight, --d-lr-mult 0.5 or "
        "--r1 1 keep the adversarial loss from taking over"),
    "copies_input": Check(copies_input,
        "check the direction (--direction AtoB|BtoA) and that the A and B images differ; if they "
        "are meant to be close, nothing is wrong"),
    "discriminator_won": Check(discriminator_won,
        "the adversarial loss has stopped helping the generator (L1 and the perceptual loss "
        "still train it). Common on tasks whose fakes are easy to spot (colourisation). A stronger "
        "R1 penalty (--r1 1; the default recipe's is 0.1, --recipe paper has none) holds D back; "
        "--d-lr-mult 0.5 slows it. What "
        "each did to the scores: docs/benchmarks.md, 'When the discriminator wins'"),
    "validation_worse": Check(validation_worse,
        "the model is memorising its training pairs: best/ keeps the best model so far; more "
        "pairs, --d-augment translation,cutout,color, or a shorter run"),
}


class HealthMonitor:
    """Runs :data:`CHECKS` as evidence arrives; warns when a sign appears and when it clears."""

    def __init__(self, *, after: int, metric: str = "l1") -> None:
        self.after = after
        self.metric = metric
        self.losses: deque[dict[str, float]] = deque(maxlen=LOSS_WINDOW)
        self.validations: list[tuple[int, float]] = []
        self.samples: Optional[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = None
        self.active: dict[str, Symptom] = {}

    def replay(self, records: list[dict]) -> None:
        """Take back the evidence of earlier sessions from the run's metrics log (a resumed run),
        without warning: validation_worse compares with the best validation before the resume,
        and discriminator_won counts the log lines before it."""
        key = f"val/{self.metric}"
        for r in records:
            if isinstance(r.get(key), (int, float)):
                self.validations.append((int(r.get("step", 0)), float(r[key])))
            losses = {k: v for k, v in r.items() if k.startswith("loss/") and isinstance(v, (int, float))}
            if losses:
                self.losses.append(losses)

    def losses_logged(self, step: int, values: dict[str, float]) -> None:
        self.losses.append({k: v for k, v in values.items() if k.startswith("loss/")})
        self._check(step, ("discriminator_won",))

    def sampled(self, step: int, inputs: torch.Tensor, outputs: torch.Tensor,
                targets: torch.Tensor) -> None:
        """The sample grid's images, (N, C, H, W) in [-1, 1]."""
        self.samples = (inputs.detach().cpu(), outputs.detach().cpu(), targets.detach().cpu())
        self._check(step, ("flat_output", "same_output", "copies_input"))

    def validated(self, step: int, results: dict) -> None:
        value = results.get(self.metric)
        if isinstance(value, (int, float)):
            self.validations.append((step, float(value)))
            self._check(step, ("validation_worse",))

    def report(self) -> list[dict]:
        """The signs seen at their latest check, for status.json."""
        return [asdict(s) for s in self.active.values()]

    def summarise(self) -> None:
        """At the end of a run: the signs still seen, in one warning (the first may have
        scrolled away)."""
        if self.active:
            log.warning("the run ended with %d sign(s) of trouble: %s (see report.html or status.json)",
                        len(self.active), "; ".join(f"{s.seen} (since step {s.step})"
                                                    for s in self.active.values()))

    def _check(self, step: int, names: tuple[str, ...]) -> None:
        if step < self.after:
            return
        inputs, outputs, targets = self.samples if self.samples is not None else (None, None, None)
        ev = Evidence(step, inputs, outputs, targets, list(self.losses), self.validations, self.metric)
        for name in names:
            seen = CHECKS[name].fn(ev)
            if seen is not None and name not in self.active:
                self.active[name] = Symptom(name, step, seen, CHECKS[name].advice)
                log.warning("step %d: %s. %s", step, seen, CHECKS[name].advice[0].upper() + CHECKS[name].advice[1:])
            elif seen is None and name in self.active:
                log.info("step %d: %s is no longer seen", step, name.replace("_", " "))
                del self.active[name]
