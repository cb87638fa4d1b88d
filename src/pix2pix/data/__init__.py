"""Paired data: layouts, checks, jitter."""
from .dataset import (DatasetError, EpochBatchSampler, Pair, PairedDataset, check_pairs, load_pair,
                      open_split, scan_pairs)
from .transforms import Jitter, JitterParams, apply_params, draw_params

__all__ = ["DatasetError", "EpochBatchSampler", "Pair", "PairedDataset", "check_pairs", "load_pair",
           "open_split", "scan_pairs", "Jitter", "JitterParams", "apply_params",
           "draw_params"]
