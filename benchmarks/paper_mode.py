"""Translation speed with each image's own batch-norm statistics (the paper's test mode): 8
images of 256² through an imported-style unet_256 at width 64, best of 3 batches of 8.

    PYTHONPATH=src python benchmarks/paper_mode.py LABEL                    # the backend auto picks
    PYTHONPATH=src python benchmarks/paper_mode.py LABEL --backend eager    # or name one

The old paper mode was eager-only; run this from an older checkout's src/ too (PYTHONPATH=OLD/src)
to compare code versions in turns (docs/benchmarks.md, "The paper's test mode, faster").
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import torch

from pix2pix.checkpoint import PretrainedInfo, save_pretrained
from pix2pix.config import ModelConfig
from pix2pix.inference.translator import Translator
from pix2pix.models import build_generator


def model_dir() -> str:
    """A random unet_256/64 with batch-norm statistics, made once and reused by later runs."""
    folder = os.path.join(tempfile.gettempdir(), "pix2pix_paper_mode_model")
    if not os.path.isdir(folder):
        torch.manual_seed(0)
        cfg = ModelConfig(generator="unet_256", base_channels=64)
        g = build_generator(cfg)
        g.train()
        g(torch.randn(2, 3, 256, 256))  # running statistics that are not the initial ones
        save_pretrained(g.eval(), PretrainedInfo(model=cfg), folder)
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("label", help="printed before the figure (e.g. the code version)")
    ap.add_argument("--backend", default="auto")
    args = ap.parse_args()
    t = Translator.from_pretrained(model_dir(), device="cpu", batch_stats=True, backend=args.backend)
    images = [(np.random.default_rng(i).random((256, 256, 3)) * 255).astype(np.uint8) for i in range(8)]
    t.translate_batch(images[:2])  # warm-up
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        t.translate_batch(images)
        best = min(best, time.perf_counter() - start)
    print(f"{args.label}: backend {t.backend.name}, {1000 * best / len(images):.1f} ms per 256² image "
          f"(best of 3 batches of 8), load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
