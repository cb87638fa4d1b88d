"""Named training recipes: presets of config overrides, applied before a run's own options.

``paper`` is exactly the dataclass defaults (Isola et al. 2017). ``DEFAULT_RECIPE`` is what
``pix2pix train`` uses when no ``--recipe`` is given, chosen by the equal-compute ablation in
``benchmarks/recipes.py`` (figures and commands in docs/quality.md). Its perceptual loss reads the
AlexNet backbone that ships inside the package, so it trains offline right after install.
"""
from __future__ import annotations

RECIPES: dict[str, list[str]] = {
    # Today's defaults, nothing changed: bit-exact with the training before recipes existed.
    "paper": [],
    # Resize-convolution decoder (no checkerboard), a perceptual loss on the LPIPS backbone and
    # an average of the generator weights.
    "modern": ["model.upsample=resize", "perceptual_weight=10", "ema=0.999"],
}

# One line per recipe for the CLI's help.
DESCRIPTIONS: dict[str, str] = {
    "paper": "the paper's training exactly (transposed-conv decoder, L1 + cGAN)",
    "modern": "resize-conv decoder + perceptual loss on the shipped AlexNet features + weight EMA",
}

# The recipe `pix2pix train` applies when no --recipe is given (a resumed run keeps its own config).
DEFAULT_RECIPE = "modern"


def recipe_overrides(name: str) -> list[str]:
    """The ``--set``-style overrides of recipe ``name``."""
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; choose one of {', '.join(RECIPES)}")
    return list(RECIPES[name])


__all__ = ["DEFAULT_RECIPE", "DESCRIPTIONS", "RECIPES", "recipe_overrides"]
