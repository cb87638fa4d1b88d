"""Command-line options that several commands share, each defined once."""
from __future__ import annotations

import argparse
from typing import Optional


def add_statistics_options(p: argparse.ArgumentParser) -> None:
    """``--batch-stats`` / ``--running-stats``: override the model's test-time statistics."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("--batch-stats", action="store_true",
                   help="normalise batch norms with each image's own statistics (the paper's test mode; "
                        "the default for models trained with --recipe paper or imported)")
    g.add_argument("--running-stats", action="store_true",
                   help="normalise batch norms with the running statistics saved in the model "
                        "(the default for the other models)")


def batch_stats_choice(args: argparse.Namespace, paper: bool = False) -> Optional[bool]:
    """True / False where the options ask for batch / running statistics, None for the model's own;
    ``paper`` (the paper's whole test mode) asks for batch statistics unless --running-stats."""
    if args.running_stats:
        return False
    return True if args.batch_stats or paper else None


__all__ = ["add_statistics_options", "batch_stats_choice"]
