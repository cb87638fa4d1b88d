"""Throughput of the dataset tools on this machine: pairs per second for `combine`, `edges`
(Canny) and `edges --detector hed`, on real photos (scikit-image/scikit-learn wheels and the Debian
wallpapers when installed). Each figure is end to end: decode, work, encode, write.

Run: python benchmarks/data_tools.py [--workers N] [--hed-photos 6]
The load average is printed beside the figures: other processes on the machine slow them down.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(__file__))
from common import count_flops, matmul_rate  # noqa: E402

from pix2pix.data.examples import example_photos  # noqa: E402
from pix2pix.data.hed import HED  # noqa: E402
from pix2pix.data.pairmakers import CannyEdges, HedEdges, Tiling, make_pairs  # noqa: E402
from pix2pix.data.helpers import default_workers  # noqa: E402
from pix2pix.data.prepare import combine  # noqa: E402


def _rate(n: int, seconds: float) -> str:
    return f"{n} pairs in {seconds:.1f} s = {n / seconds:.1f} pairs/s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--hed-photos", type=int, default=6, help="photos for the (slow) HED run")
    args = parser.parse_args()
    photos = [p.path for p in example_photos()]
    tiling = Tiling(size=256, stride=256, short_side=512)
    print(f"cores {os.cpu_count()}, workers {args.workers}, torch threads {torch.get_num_threads()}, "
          f"{len(photos)} photos, 256 px tiles from photos shrunk to a 512 px short side")
    print(f"load average before: {os.getloadavg()[0]:.2f} (other processes share these cores)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        canny = make_pairs(photos, tmp / "canny", CannyEdges(), tiling=tiling, workers=args.workers)
        n = sum(canny["pairs"].values())
        print(f"edges (Canny):     {_rate(n, time.perf_counter() - t)}")

        try:
            hed = HedEdges()
            t = time.perf_counter()
            result = make_pairs(photos[:args.hed_photos], tmp / "hed", hed, tiling=tiling, val=0, test=0)
            n = sum(result["pairs"].values())
            print(f"edges (HED, CPU):  {_rate(n, time.perf_counter() - t)} (model load included)")
            x = torch.zeros(1, 3, 256, 256)
            with torch.no_grad():
                flops = count_flops(lambda: HED()(x))
            floor = flops / matmul_rate()
            print(f"  HED forward at 256x256: {flops / 1e9:.1f} GFLOP; compute floor {floor:.2f} s/pair "
                  f"({1 / floor:.1f} pairs/s) at this machine's fp32 matmul rate, measured now")
        except ValueError as e:
            print(f"edges (HED):       skipped: {e}")

        # combine: split the Canny pairs into A/ and B/ folders of separate files, then pair them back.
        for side in ("A", "B"):
            (tmp / side).mkdir()
        for f in (tmp / "canny").rglob("*.png"):
            ab = np.asarray(Image.open(f))
            Image.fromarray(ab[:, :256]).save(tmp / "A" / f.name)
            Image.fromarray(ab[:, 256:]).save(tmp / "B" / f.with_suffix(".jpg").name, quality=95)
        for workers in sorted({1, args.workers}):
            t = time.perf_counter()
            report = combine(tmp / "A", tmp / "B", tmp / f"combined{workers}", workers=workers)
            print(f"combine ({workers} thread{'s' if workers > 1 else ''}): "
                  f"{_rate(report.total, time.perf_counter() - t)}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
