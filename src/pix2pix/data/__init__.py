"""Paired data: layouts, checks, jitter."""
from .dataset import (DatasetError, EpochBatchSampler, Pair, PairedDataset, check_pairs, collate,
                      load_pair, open_split, scan_pairs)
from .transforms import (Jitter, JitterParams, apply_batch, apply_params, draw_params,
                         params_from_tensor, params_to_tensor)

__all__ = ["DatasetError", "EpochBatchSampler", "Pair", "PairedDataset", "check_pairs", "collate", "load_pair",
           "open_split", "scan_pairs", "Jitter", "JitterParams", "apply_batch", "apply_params",
           "draw_params", "params_from_tensor", "params_to_tensor"]
