"""Whole vs tiled translation: peak memory and time per image size (the data behind auto_tile).

    python benchmarks/tiling.py [--archs unet_256 unet_128] [--sizes 512x512 1024x1024 2048x1536]
                                [--tile 512] [--repeats 2] [--memory-only] [--device cpu|cuda]
                                [--threads N]

Every case (architecture, size, whole or tiled) runs in a fresh process so its peak memory is its
own: on CPU the peak resident set size (``ru_maxrss``) minus the resident size just before the
translation (model loaded, a small warm-up image done); on CUDA ``torch.cuda.max_memory_allocated``
minus the memory allocated before it. ``KB/px`` is that peak over the image's pixels: the figure
``pix2pix.inference.tiling`` uses (``WHOLE_BYTES_PER_PIXEL``). Memory does not depend on load, so
``--memory-only`` figures may be taken on a busy machine; times (best of ``--repeats``, after the
memory run) need a quiet one.

Model: random weights, batch norm, 64 base channels, eval mode (memory and speed do not depend on
the weights). Tiles: ``--tile`` px with the default overlap (tile/4), one tile per forward pass.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def run_case(arch: str, height: int, width: int, tile: int, repeats: int, device: str,
             threads: int) -> dict:
    """One case in this process: peak memory of the first translation, then the best time."""
    import numpy as np
    import torch

    from pix2pix.checkpoint import PretrainedInfo
    from pix2pix.config import ModelConfig
    from pix2pix.inference.translator import Translator
    from pix2pix.models import build_generator

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = ModelConfig(generator=arch)
    translator = Translator(build_generator(model), PretrainedInfo(model=model), device=device)
    image = np.random.default_rng(0).random((height, width, 3), dtype=np.float32)
    translator.translate_array(image[:256, :256])  # warm-up: allocator pools, oneDNN primitives
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        before = _rss_bytes()
    times = []
    for i in range(max(1, repeats)):
        t = time.perf_counter()
        translator.translate_array(image, tile=tile or None)
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
        if i == 0:
            peak = (torch.cuda.max_memory_allocated() if cuda
                    else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return {"arch": arch, "height": height, "width": width, "tile": tile, "device": device,
            "peak_bytes": max(0, peak - before), "bytes_per_px": max(0, peak - before) / (height * width),
            "best_s": min(times), "repeats": len(times)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--archs", nargs="+", default=["unet_256", "unet_128"])
    p.add_argument("--sizes", nargs="+", default=["512x512", "1024x1024", "2048x1536"],
                   help="HEIGHTxWIDTH")
    p.add_argument("--tile", type=int, default=512, help="tile size of the tiled runs (0: none)")
    p.add_argument("--repeats", type=int, default=2, help="timed runs per case")
    p.add_argument("--memory-only", action="store_true", help="one run per case, no times printed")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--json", help="also write the rows to this file")
    p.add_argument("--case", help=argparse.SUPPRESS)  # internal: run one case, print its JSON
    args = p.parse_args()
    if args.case:
        arch, h, w, tile = args.case.split(",")
        print(json.dumps(run_case(arch, int(h), int(w), int(tile), 1 if args.memory_only else args.repeats,
                                  args.device, args.threads)))
        return
    rows = []
    print(f"{'arch':10} {'size':>11} {'mode':>9} {'peak MB':>9} {'KB/px':>7}"
          + ("" if args.memory_only else f" {'best s':>8}"))
    for arch in args.archs:
        for size in args.sizes:
            h, w = (int(v) for v in size.lower().split("x"))
            for tile in ([0, args.tile] if args.tile else [0]):
                cmd = [sys.executable, __file__, "--case", f"{arch},{h},{w},{tile}",
                       "--device", args.device, "--threads", str(args.threads),
                       "--repeats", str(args.repeats)] + ["--memory-only"] * args.memory_only
                out = subprocess.run(cmd, capture_output=True, text=True)
                if out.returncode:
                    print(f"{arch} {size} tile {tile}: failed\n{out.stderr[-2000:]}", file=sys.stderr)
                    continue
                row = json.loads(out.stdout.strip().splitlines()[-1])
                rows.append(row)
                mode = f"tile {tile}" if tile else "whole"
                print(f"{arch:10} {size:>11} {mode:>9} {row['peak_bytes'] / 2**20:9.0f} "
                      f"{row['bytes_per_px'] / 1024:7.2f}" + ("" if args.memory_only else f" {row['best_s']:8.2f}"),
                      flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
