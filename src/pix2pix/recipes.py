"""Named presets of config overrides, the one home for them: training recipes and the paper's
objectives (loss ablations). The CLI's ``--recipe``/``--objective`` choices and help texts, and the
tests, read these tables.

A recipe is applied first (a config file, the run's options and ``--set`` refine it); an objective
after the config file. ``paper`` is the defaults in fp32 (Isola et al. 2017). The others were chosen
by the equal-compute ablation in ``benchmarks/recipes.py`` (figures in docs/quality.md).
``DEFAULT_RECIPE`` is what `pix2pix train` uses when no ``--recipe`` is given; its perceptual loss
reads the AlexNet backbone that ships inside the package, so it trains offline right after install.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    # ``--set``-style overrides ("model.upsample=resize"), each checked against its field's type.
    overrides: tuple[str, ...]
    description: str


RECIPES: dict[str, Preset] = {
    # The paper's training, bit-exact with the training before recipes existed: the defaults, in
    # fp32 (the default precision became "auto": bf16 where the hardware computes it natively).
    # Its models test as the paper tests, with each image's own batch-norm statistics: lower L1
    # than the running ones for 8 of 10 paper models measured (docs/quality.md, "Test-time statistics").
    "paper": Preset(("precision=fp32", "model.test_statistics=batch"),
                    "the defaults in fp32, exactly the paper's training and test mode"),
    # R1 since 2026-12-07: better than without it on every example's mean in a 150 CPU-s screen,
    # and against `paper` at 600 CPU-s on five examples at least level with the recipe before it
    # (docs/quality.md, "The default recipe's final comparison").
    "modern": Preset(("model.upsample=resize", "perceptual_weight=10", "ema=0.999", "r1_weight=0.1"),
                     "resize-conv decoder (no checkerboard), perceptual loss on the LPIPS AlexNet "
                     "backbone shipped in the package, weight EMA, R1 penalty on D"),
}

# The recipe a new `pix2pix train` run starts from when it names none (a resumed run keeps its own).
DEFAULT_RECIPE = "modern"

# The paper's loss ablations (Table 1), each one flag away: L1 and adversarial weights, and whether
# D sees the input (conditional) or only the output ("GAN").
OBJECTIVES: dict[str, Preset] = {
    "l1+cgan": Preset(("gan_weight=1", "l1_weight=100", "model.conditional=true"),
                      "L1 + conditional GAN (the paper's full objective)"),
    "l1+gan": Preset(("gan_weight=1", "l1_weight=100", "model.conditional=false"),
                     "L1 + unconditional GAN (D sees only the output)"),
    "cgan": Preset(("gan_weight=1", "l1_weight=0", "model.conditional=true"), "conditional GAN alone"),
    "gan": Preset(("gan_weight=1", "l1_weight=0", "model.conditional=false"),
                  "unconditional GAN alone"),
    "l1": Preset(("gan_weight=0", "l1_weight=100"), "L1 alone (no discriminator)"),
}


def _lookup(kind: str, table: dict[str, Preset], name: str) -> list[str]:
    if name not in table:
        raise ValueError(f"unknown {kind} {name!r}; choose one of {', '.join(table)}")
    return list(table[name].overrides)


def recipe_overrides(name: str) -> list[str]:
    """The ``--set``-style overrides of recipe ``name``."""
    return _lookup("recipe", RECIPES, name)


def objective_overrides(name: str) -> list[str]:
    """The ``--set``-style overrides of the paper objective ``name``."""
    return _lookup("objective", OBJECTIVES, name)


def describe(table: dict[str, Preset]) -> str:
    """'name (description); ...' for help texts."""
    return "; ".join(f"{name} ({p.description})" for name, p in table.items())


__all__ = ["Preset", "RECIPES", "OBJECTIVES", "DEFAULT_RECIPE", "recipe_overrides",
           "objective_overrides", "describe"]
