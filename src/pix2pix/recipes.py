"""Named training recipes: presets of config overrides, applied before a run's own options.

``paper`` is the defaults in fp32 (Isola et al. 2017). The others were chosen by the equal-compute
ablation in ``benchmarks/recipes.py`` (figures in README.md, "Training recipes").
"""
from __future__ import annotations

RECIPES: dict[str, list[str]] = {
    # The paper's training, bit-exact with the training before recipes existed: the defaults,
    # in fp32 (the default precision became "auto", bf16 where the hardware has it).
    "paper": ["precision=fp32"],
    # Resize-convolution decoder (no checkerboard), a perceptual loss on the LPIPS backbone and
    # an average of the generator weights.
    "modern": ["model.upsample=resize", "perceptual_weight=10", "ema=0.999"],
}


def recipe_overrides(name: str) -> list[str]:
    """The ``--set``-style overrides of recipe ``name``."""
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; choose one of {', '.join(RECIPES)}")
    return list(RECIPES[name])


__all__ = ["RECIPES", "recipe_overrides"]
