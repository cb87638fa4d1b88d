"""Inference: the Translator (one home for pre- and post-processing), its backends, the one tiling
rule for large images, and translation of many files."""
from .folders import PipelineStats, translate_files
from .tiling import auto_tile
from .translator import Translator

__all__ = ["Translator", "translate_files", "PipelineStats", "auto_tile"]
