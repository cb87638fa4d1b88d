"""The training loader alone: pairs per second, and per core, at 256² with jitter and flip.

    python benchmarks/loader.py [--size 256] [--pairs 256] [--batch 16] [--batches 40]
                                [--workers 0,1,2,4,8] [--formats png,jpg] [--layouts combined,folders]
                                [--pipelines files,cache,cache_u8] [--device cpu|cuda] [--data DIR]

Data: the built-in maps example at --size (real satellite and map tiles, so PNG and JPEG compress
as real data does), written as A|B files and as A/ B/ folders, in PNG and JPEG (quality 95).
Pipelines (what one item costs in a loader worker):
  files     today's path: decode the file(s), float32, resize 286 (bicubic), crop, flip on the CPU
  files_u8  decode, uint8 out (no jitter in the worker: data.device_jitter=on)
  cache     the decode-once cache (data.cache=on), float32 jitter on the CPU: the same batches
  cache_u8  cache + uint8 out: what `pix2pix train` does on a GPU by default (both "auto")
For the _u8 pipelines the jitter then runs batched on --device (pix2pix.data.apply_batch); its
rate is printed once per batch size, and the pipeline's rate is the loader's alone.

Workers are separate processes with one torch thread each (PyTorch's loader sets that), so
"per core" is pairs/s divided by max(workers, 1); the main process is also given one thread.
The consumption line is the rate a GPU step would take pairs at: FLOPs per pair of unet_256 +
70² PatchGAN at 256² (counted here by torch.utils.flop_counter) at an assumed fraction of an
H100's dense bf16 rate (--gpu-tflops, --mfu); benchmarks/gpu.py measures the real one.
Loader workers, decoding and file reads are all CPU work: run it on an idle machine.
"""
from __future__ import annotations

import argparse
import itertools
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import DataLoader

from pix2pix.data import EpochBatchSampler, Jitter, PairedDataset, apply_batch, collate, \
    params_from_tensor, scan_pairs
from pix2pix.data.cache import build_cache
from pix2pix.data.examples import make_example

PIPELINES = {"files": (False, False), "files_u8": (False, True), "cache": (True, False),
             "cache_u8": (True, True)}


class Batches:
    """Endless (index, seed) batches, epoch after epoch, like the training run's sampler."""

    def __init__(self, n: int, batch: int) -> None:
        self.n, self.batch = n, batch

    def __iter__(self):
        for epoch in itertools.count():
            yield from EpochBatchSampler(self.n, self.batch, seed=0, epoch=epoch)


def write_layouts(src: Path, out: Path, n: int) -> dict[tuple[str, str], Path]:
    """The first ``n`` A|B pairs of ``src/train`` as {(layout, format): dataset root}."""
    files = sorted((src / "train").iterdir())[:n]
    roots = {}
    for fmt in ("png", "jpg"):
        for layout in ("combined", "folders"):
            root = out / f"{layout}_{fmt}"
            roots[(layout, fmt)] = root
            if (root / "train").is_dir():
                continue
            for f in files:
                ab = Image.open(f).convert("RGB")
                w, h = ab.size
                kw = {"quality": 95} if fmt == "jpg" else {}
                if layout == "combined":
                    (root / "train").mkdir(parents=True, exist_ok=True)
                    ab.save(root / "train" / f"{f.stem}.{fmt}", **kw)
                else:
                    for side, box in (("A", (0, 0, w // 2, h)), ("B", (w // 2, 0, w, h))):
                        (root / "train" / side).mkdir(parents=True, exist_ok=True)
                        ab.crop(box).save(root / "train" / side / f"{f.stem}.{fmt}", **kw)
    return roots


def loader_rate(ds: PairedDataset, batch: int, workers: int, batches: int, pin: bool) -> float:
    """Pairs per second over ``batches`` batches, after the first few (worker start-up, caches)."""
    loader = DataLoader(ds, batch_sampler=Batches(len(ds), batch), num_workers=workers,
                        collate_fn=collate, pin_memory=pin, prefetch_factor=4 if workers else None,
                        persistent_workers=workers > 0)
    it = iter(loader)
    for _ in range(max(2, workers)):
        next(it)
    t = time.perf_counter()
    for _ in range(batches):
        next(it)
    rate = batches * batch / (time.perf_counter() - t)
    del it, loader
    return rate


def device_jitter_rate(ds: PairedDataset, batch: int, device: str, repeats: int = 20) -> float:
    """Pairs per second of apply_batch on ``device`` (uint8 batch already there, both sides)."""
    items = [ds[k] for k in next(iter(Batches(len(ds), batch)))]
    b = collate(items)
    params = [params_from_tensor(p) for p in b["params"]]
    a, t = b["input"].to(device), b["target"].to(device)
    for _ in range(3):
        apply_batch(a, params), apply_batch(t, params)
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        apply_batch(a, params), apply_batch(t, params)
    if device == "cuda":
        torch.cuda.synchronize()
    return repeats * batch / (time.perf_counter() - start)


def consumption(size: int, tflops: float, mfu: float) -> tuple[float, float]:
    """(GFLOP per pair of one unet_256 + PatchGAN training iteration, pairs/s at tflops * mfu)."""
    sys.path.insert(0, os.path.dirname(__file__))
    from common import count_flops
    from pix2pix.config import ModelConfig
    from pix2pix.models import build_discriminator, build_generator
    from pix2pix.training.step import StepConfig, train_step

    cfg = ModelConfig(generator="unet_256")
    g, d = build_generator(cfg), build_discriminator(cfg)
    og, od = torch.optim.Adam(g.parameters()), torch.optim.Adam(d.parameters())
    a, b = torch.rand(2, 1, 3, size, size) * 2 - 1
    flops = count_flops(lambda: train_step(g, d, og, od, a, b, StepConfig()))
    return flops / 1e9, tflops * 1e12 * mfu / flops


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--pairs", type=int, default=256, help="pairs per dataset")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--batches", type=int, default=40, help="timed batches per case")
    ap.add_argument("--workers", default="0,1,2,4,8")
    ap.add_argument("--formats", default="png,jpg")
    ap.add_argument("--layouts", default="combined,folders")
    ap.add_argument("--pipelines", default=",".join(PIPELINES))
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                    help="where the _u8 pipelines' jitter runs (and pinned memory when cuda)")
    ap.add_argument("--data", default=None, help="work folder (kept; default: a temporary one)")
    ap.add_argument("--gpu-tflops", type=float, default=989.0, help="dense bf16 peak (H100 SXM: 989)")
    ap.add_argument("--mfu", type=float, default=0.2,
                    help="assumed fraction of it a unet_256 bf16 step achieves (small convolutions, norms)")
    ap.add_argument("--no-flops", action="store_true", help="skip the FLOP count (a CPU step)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    work = Path(args.data or tempfile.mkdtemp(prefix="pix2pix-loader-"))
    src = work / "maps"
    if not (src / "train").is_dir():
        make_example("maps", src, size=args.size)
    roots = write_layouts(src, work, args.pairs)
    jitter = Jitter("resize_crop", args.size, round(args.size * 286 / 256), True)
    load = os.getloadavg()[0]
    print(f"torch {torch.__version__}, {os.cpu_count()} cores, load average {load:.1f}; {args.size}² "
          f"resize_crop to {jitter.load_size} + flip, batch {args.batch}, {args.pairs} pairs per dataset; "
          f"jitter of _u8 pipelines on {args.device}")
    if not args.no_flops:
        gflop, rate = consumption(args.size, args.gpu_tflops, args.mfu)
        print(f"consumption assumed: unet_256 + 70² PatchGAN = {gflop:.1f} GFLOP per pair per "
              f"iteration; at {args.mfu:.0%} of {args.gpu_tflops:.0f} TFLOP/s (H100 bf16 dense) a "
              f"GPU takes {rate:,.0f} pairs/s at any batch size that reaches that efficiency "
              f"(batch 16: {rate / args.batch:,.0f} it/s)")
    workers = [int(w) for w in args.workers.split(",")]
    pin = args.device == "cuda"
    print(f"\n{'layout':<9}{'fmt':<5}{'pipeline':<10}" + "".join(f"{'w=' + str(w):>10}" for w in workers)
          + f"{'per core':>10}  (pairs/s; per core at the most workers)")
    jitter_rates = {}
    for fmt in args.formats.split(","):
        for layout in args.layouts.split(","):
            root = roots[(layout, fmt)]
            pairs = scan_pairs(root, "train")
            cache = None
            for name in args.pipelines.split(","):
                use_cache, raw = PIPELINES[name]
                if use_cache and cache is None:
                    cache = build_cache(pairs, work / "cache" / f"{layout}_{fmt}")
                ds = PairedDataset(pairs, jitter=jitter, cache=cache if use_cache else None, raw=raw)
                rates = [loader_rate(ds, args.batch, w, args.batches, pin) for w in workers]
                if raw and "u8" not in jitter_rates:
                    jitter_rates["u8"] = device_jitter_rate(ds, args.batch, args.device)
                print(f"{layout:<9}{fmt:<5}{name:<10}" + "".join(f"{r:>10.0f}" for r in rates)
                      + f"{rates[-1] / max(workers[-1], 1):>10.0f}", flush=True)
    if "u8" in jitter_rates:
        print(f"\ndevice-side jitter (apply_batch, input and target, batch {args.batch}) on {args.device}: "
              f"{jitter_rates['u8']:,.0f} pairs/s")
    print(f"load average at the end {os.getloadavg()[0]:.1f}; data in {work}")
    if not args.data:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
