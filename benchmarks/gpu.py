"""The CUDA path, measured in one go on one GPU (about 6-8 minutes on an H100):

    python benchmarks/gpu.py [--budget 450] [--out DIR]

1. Training iteration (D step + G step) of unet_256 + 70² PatchGAN at 256², batch 1, 16 and 64,
   in fp32, bf16 autocast, bf16 + channels_last, and bf16 + channels_last + torch.compile (the
   paper's recipe), then the default recipe (`modern`: resize-conv decoder, AlexNet perceptual
   loss, weight EMA) in bf16 + channels_last, as `pix2pix train` runs it: it/s,
   pairs/s, the fraction of the GPU's bf16 matmul rate measured in this run (FLOPs counted by
   torch.utils.flop_counter x it/s / the 8192³ bf16 matmul rate), and peak memory.
2. The loader (benchmarks/loader.py's cases, 8 workers, 256² A|B PNGs) beside what the best bf16
   step at batch 16 consumes.
3. End to end through the CLI: `pix2pix train` for 200 steps on CUDA (the defaults: precision auto,
   data cache and device jitter auto, --workers 8), `translate` on CUDA and on the CPU with the
   same weights (max difference printed), `export` to ONNX and that model against PyTorch on the
   CPU.
4. Inference throughput of the generator at batch 1 and 32: eager fp32, eager bf16, torch.compile
   (bf16), ONNX Runtime CUDA when onnxruntime-gpu is installed; peak memory.
Every case is timed after warm-up, with a device synchronise around the timed steps. Cases that
would overrun --budget seconds are skipped with a line saying so. Without a CUDA GPU it says so
and exits 0; `--device cpu --tiny` runs every path on tiny sizes (a check of the script, not a
measurement).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from common import count_flops  # noqa: E402
from train_step import make_step  # noqa: E402

from pix2pix.config import ModelConfig  # noqa: E402
from pix2pix.models import build_generator  # noqa: E402

# name: (autocast dtype, channels_last, compile, recipe)
VARIANTS = {"fp32": (None, False, False, "paper"), "bf16": (torch.bfloat16, False, False, "paper"),
            "bf16_cl": (torch.bfloat16, True, False, "paper"),
            "bf16_cl_compile": (torch.bfloat16, True, True, "paper"),
            "modern_bf16_cl": (torch.bfloat16, True, False, "modern")}
T0 = time.monotonic()


class Clock:
    def __init__(self, budget: float) -> None:
        self.end = T0 + budget

    def left(self) -> float:
        return self.end - time.monotonic()


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def peak_gb(device: str) -> float:
    return torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else float("nan")


def reset_peak(device: str) -> None:
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def matmul_rate(device: str, dtype: torch.dtype, n: int, repeats: int = 20) -> float:
    """FLOP/s of an n³ matmul in ``dtype``: the best of ``repeats`` timed batches of 5."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(repeats):
        sync(device)
        t = time.perf_counter()
        for _ in range(5):
            a @ b
        sync(device)
        best = min(best, (time.perf_counter() - t) / 5)
    return 2 * n**3 / best


def timed_rate(fn: Callable[[], object], device: str, min_s: float, max_iters: int) -> float:
    """Calls per second over at least ``min_s`` seconds (or ``max_iters`` calls), synchronised."""
    sync(device)
    n, t = 0, time.perf_counter()
    while n < max_iters and (n < 3 or time.perf_counter() - t < min_s):
        fn()
        n += 1
    sync(device)
    return n / (time.perf_counter() - t)


def train_cases(args, device: str, clock: Clock, bf16_rate: float) -> dict:
    """Section 1; returns {(variant, batch): it/s}."""
    print(f"\n== 1. training iteration: unet_256 + 70² PatchGAN at {args.size}², fused Adam ==")
    print(f"{'variant':<17}{'batch':>6}{'it/s':>9}{'pairs/s':>9}{'TFLOP/s':>9}{'of bf16 mm':>11}"
          f"{'peak GB':>9}{'1st call s':>11}")
    rates: dict = {}
    flops: dict[tuple[str, int], int] = {}
    for name in args.variants.split(","):
        amp, cl, compiled, recipe = VARIANTS[name]
        amp = None if args.tiny else amp
        for batch in map(int, args.batches.split(",")):
            need = 120 if compiled else 15
            if clock.left() < need + args.reserve:
                print(f"{name:<17}{batch:>6}  skipped: {clock.left():.0f} s left of the budget")
                continue
            reset_peak(device)
            try:
                t = time.perf_counter()
                step = make_step("unet_256", args.size, batch, device, True, cl, amp, compiled, False,
                                 recipe=recipe, base_channels=args.base, sync=False)
                step()
                sync(device)
                first = time.perf_counter() - t
                if (recipe, batch) not in flops:
                    flops[(recipe, batch)] = count_flops(step)
                for _ in range(2):
                    step()
                rate = timed_rate(step, device, args.min_s, args.max_iters)
            except torch.cuda.OutOfMemoryError:
                print(f"{name:<17}{batch:>6}  out of memory")
                continue
            finally:
                step = None  # noqa: F841 - frees the models before the next case
            rates[(name, batch)] = rate
            achieved = flops[(recipe, batch)] * rate
            print(f"{name:<17}{batch:>6}{rate:>9.2f}{rate * batch:>9.0f}{achieved / 1e12:>9.1f}"
                  f"{achieved / bf16_rate:>11.1%}{peak_gb(device):>9.2f}{first:>11.1f}", flush=True)
    for (recipe, batch), f in flops.items():
        print(f"  {recipe}, batch {batch}: {f / 1e9:.1f} GFLOP per iteration ({f / batch / 1e9:.1f} per pair)")
    return rates


def loader_case(args, device: str, clock: Clock, rates: dict, work: Path) -> Optional[Path]:
    """Section 2; returns the dataset root (for section 4), or None when it could not be made."""
    print("\n== 2. loader beside the step ==")
    from loader import PIPELINES, device_jitter_rate, loader_rate, write_layouts
    from pix2pix.data import Jitter, PairedDataset, scan_pairs
    from pix2pix.data.cache import build_cache
    from pix2pix.data.examples import make_example

    src = work / "maps"
    try:
        if not (src / "train").is_dir():
            make_example("maps", src, size=args.size)
    except Exception as e:  # noqa: BLE001 - a missing optional package: say so, go on
        print(f"skipped: the maps example cannot be made here ({e})")
        return None
    if clock.left() < 30 + args.reserve:
        print(f"skipped: {clock.left():.0f} s left of the budget")
        return src
    root = write_layouts(src, work / "layouts", args.loader_pairs)[("combined", "png")]
    pairs = scan_pairs(root, "train")
    jitter = Jitter("resize_crop", args.size, round(args.size * 286 / 256), True)
    workers = min(args.loader_workers, os.cpu_count() or 1)
    batch = 16 if not args.tiny else 2
    cache = build_cache(pairs, work / "cache")
    for name in ("files", "cache", "cache_u8"):
        use_cache, raw = PIPELINES[name]
        ds = PairedDataset(pairs, jitter=jitter, cache=cache if use_cache else None, raw=raw)
        rate = loader_rate(ds, batch, workers, args.loader_batches, pin=device == "cuda")
        print(f"loader {name:<9} {workers} workers, batch {batch}: {rate:8.0f} pairs/s "
              f"({rate / workers:.0f} per worker)", flush=True)
    ds = PairedDataset(pairs, jitter=jitter, cache=cache, raw=True)
    print(f"device-side jitter on {device}: {device_jitter_rate(ds, batch, device):,.0f} pairs/s")
    best = {n: r for (n, b), r in rates.items() if b == 16}
    for name, rate in sorted(best.items(), key=lambda kv: -kv[1]):
        print(f"step {name} at batch 16 consumes {rate * 16:,.0f} pairs/s")
    return src


def inference_cases(args, device: str, clock: Clock, work: Path) -> None:
    print(f"\n== 4. inference: unet_256 generator at {args.size}², eval mode ==")
    cfg = ModelConfig(generator="unet_256", base_channels=args.base, d_base_channels=args.base)
    g = build_generator(cfg).to(device).eval()
    ort_session = None
    try:
        import onnxruntime as ort

        if device == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
            from pix2pix.checkpoint import PretrainedInfo
            from pix2pix.inference.onnx import export_onnx
            from pix2pix.inference.onnx import ort_session as make_session

            info = PretrainedInfo(model=cfg, direction="AtoB", image_size=args.size)
            path = export_onnx(g, info, work / "bench.onnx")
            ort_session = make_session(path, device="cuda")
        else:
            print(f"ONNX Runtime CUDA: not installed (providers {ort.get_available_providers()}); "
                  f"pip install onnxruntime-gpu")
    except ImportError:
        print("ONNX Runtime: not installed")
    compiled = None
    print(f"{'backend':<16}{'batch':>6}{'img/s':>10}{'ms/batch':>10}{'peak GB':>9}")
    for batch in map(int, args.infer_batches.split(",")):
        x = torch.rand(batch, 3, args.size, args.size, device=device) * 2 - 1
        cases: dict[str, Callable[[], object]] = {
            "eager fp32": lambda: g(x),
            "eager bf16": lambda: _autocast(device, lambda: g(x)),
        }
        if not args.tiny and clock.left() > 90 + args.reserve:
            compiled = compiled or torch.compile(g)
            cases["compile bf16"] = lambda: _autocast(device, lambda: compiled(x))
        else:
            why = "--tiny" if args.tiny else f"{clock.left():.0f} s left of the budget"
            print(f"compile bf16    {batch:>6}  skipped: {why}")
        if ort_session is not None:
            xn = x.cpu().numpy()
            cases["onnxruntime cuda"] = lambda: ort_session.run(None, {ort_session.get_inputs()[0].name: xn})
        for name, fn in cases.items():
            reset_peak(device)
            with torch.no_grad():
                for _ in range(3):
                    fn()
                rate = timed_rate(fn, device, args.min_s, args.max_iters)
            print(f"{name:<16}{batch:>6}{rate * batch:>10.1f}{1e3 / rate:>10.2f}{peak_gb(device):>9.2f}",
                  flush=True)


def _autocast(device: str, fn: Callable[[], object]) -> object:
    with torch.autocast(device, dtype=torch.bfloat16):
        return fn()


def cli(*argv: str) -> tuple[float, str]:
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pix2pix", *argv], capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"pix2pix {' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return time.perf_counter() - t, proc.stdout + proc.stderr


def end_to_end(args, device: str, clock: Clock, data: Optional[Path], work: Path) -> None:
    print("\n== 3. end to end through the CLI ==")
    if data is None:
        print("skipped: no dataset (see section 2)")
        return
    if clock.left() < 60:
        print(f"skipped: {clock.left():.0f} s left of the budget")
        return
    from PIL import Image

    run = work / "run"
    shutil.rmtree(run, ignore_errors=True)
    steps = 200 if not args.tiny else 4
    extra = ["--set", f"model.base_channels={args.base}", "--set", f"model.d_base_channels={args.base}"]
    wall, out = cli("train", "--data", str(data), "--out", str(run), "--device", device,
                    "--image-size", str(args.size), "--max-steps", str(steps), "--log-every", "50",
                    "--sample-every", "100000", "--checkpoint-every", "100000",
                    "--workers", str(min(8, os.cpu_count() or 1)), "--tensorboard", "off", *extra)
    status = json.loads((run / "status.json").read_text())
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    print(f"train: {steps} steps in {wall:.1f} s wall (imports, checks, cache build included); "
          f"precision {status.get('precision')}; logged rate {lines[-1].get('it_per_s', float('nan')):.1f} it/s")
    inputs = work / "inputs"
    shutil.rmtree(inputs, ignore_errors=True)
    inputs.mkdir()
    for f in sorted((data / "val").iterdir())[:8]:
        ab = Image.open(f).convert("RGB")
        ab.crop((0, 0, ab.size[0] // 2, ab.size[1])).save(inputs / f.name)
    outs = {}
    for dev in (device, "cpu"):
        dst = work / f"translated_{dev}"
        shutil.rmtree(dst, ignore_errors=True)
        wall, _ = cli("translate", str(inputs), "--model", str(run), "--out", str(dst), "--device", dev,
                      "--no-progress")
        outs[dev] = dst
        print(f"translate on {dev}: {len(list(inputs.iterdir()))} images in {wall:.1f} s wall")
    if device != "cpu":
        diffs = [np.abs(np.asarray(Image.open(outs[device] / f.name), dtype=np.int16)
                        - np.asarray(Image.open(outs["cpu"] / f.name), dtype=np.int16))
                 for f in sorted(inputs.iterdir())]
        print(f"translate {device} against cpu, same weights: max |difference| "
              f"{max(int(d.max()) for d in diffs)} of 255, mean {np.mean([d.mean() for d in diffs]):.3f}")
    onnx = work / "model.onnx"
    wall, out = cli("export", "--model", str(run), "--out", str(onnx))
    print(f"export: {wall:.1f} s; " + " ".join(out.strip().splitlines()[-1:]))
    from pix2pix.inference.onnx import ort_session, run_onnx
    from pix2pix.inference.translator import Translator

    x = torch.rand(2, 3, args.size, args.size) * 2 - 1
    ref = Translator.from_pretrained(str(run), device="cpu").translate_tensor(x).numpy()
    for dev in ([device] if device != "cpu" else []) + ["cpu"]:
        try:
            got = run_onnx(ort_session(onnx, device=dev), x.numpy())
        except ValueError as e:
            print(f"onnxruntime on {dev}: {e}")
            continue
        print(f"onnxruntime on {dev} against PyTorch on cpu, same weights: max |difference| "
              f"{np.abs(got - ref).max():.2e} (outputs in [-1, 1])")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--budget", type=float, default=450, help="seconds for the whole script")
    ap.add_argument("--reserve", type=float, default=150, help="seconds kept for sections 2-4")
    ap.add_argument("--out", default=None, help="work folder (default: a temporary one, removed)")
    ap.add_argument("--sections", default="1,2,3,4", help="which sections to run (comma list)")
    ap.add_argument("--tiny", action="store_true", help="tiny sizes: checks the script, measures nothing")
    args = ap.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print(f"no CUDA GPU here (torch {torch.__version__}, CUDA build {torch.version.cuda}): nothing "
              f"to measure; run this on a GPU machine (or `--device cpu --tiny` to check the script)")
        return 0
    big = not args.tiny
    args.size = 256  # unet_256 needs a multiple of 256
    args.base = 64 if big else 4
    args.batches = "1,16,64" if big else "1"
    # torch.compile and emulated bf16 take minutes on a CPU: --tiny steps eager, each recipe once,
    # in fp32 (train_cases drops the autocast).
    args.variants = ",".join(n for n in VARIANTS if big or n in ("fp32", "modern_bf16_cl"))
    args.infer_batches = "1,32" if big else "1"
    args.min_s, args.max_iters = (2.0, 500) if big else (0.05, 3)
    args.loader_pairs, args.loader_workers, args.loader_batches = (512, 8, 40) if big else (8, 2, 2)
    if args.tiny:  # a check of every path: no budget, no skipping
        args.reserve, args.budget = 0, float("inf")
    device = args.device
    clock = Clock(args.budget)
    work = Path(args.out or tempfile.mkdtemp(prefix="pix2pix-gpu-"))
    work.mkdir(parents=True, exist_ok=True)
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    print(f"{name}; torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN "
          f"{torch.backends.cudnn.version() if device == 'cuda' else '-'}; TF32 matmul "
          f"{torch.backends.cuda.matmul.allow_tf32}, TF32 cuDNN {torch.backends.cudnn.allow_tf32}; "
          f"{os.cpu_count()} CPU cores")
    n = 8192 if big else 256
    bf16_rate = matmul_rate(device, torch.bfloat16, n)
    fp32_rate = matmul_rate(device, torch.float32, n, repeats=5)
    print(f"{n}³ matmul: bf16 {bf16_rate / 1e12:.1f} TFLOP/s, fp32 {fp32_rate / 1e12:.1f} TFLOP/s "
          f"(the fractions below are of the bf16 rate)")
    sections = set(args.sections.split(","))
    try:
        rates = train_cases(args, device, clock, bf16_rate) if "1" in sections else {}
        data = loader_case(args, device, clock, rates, work) if sections & {"2", "3"} else None
        if "3" in sections:
            try:
                end_to_end(args, device, clock, data, work)
            except RuntimeError as e:
                print(f"end to end FAILED: {e}")
        if "4" in sections:
            inference_cases(args, device, clock, work)
    finally:
        if not args.out:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\ntotal {time.monotonic() - T0:.0f} s (budget {args.budget:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
