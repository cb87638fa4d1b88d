"""ONNX Runtime latency of generators at 256x256, batch 1, measured in per-process CPU time.

    python benchmarks/student_latency.py runs/a runs/b ... [--threads 1] [--repeats 30]

On a shared machine wall time measures the neighbours; with one intra-op thread the process's
CPU time per image is what an idle core would take. The matmul floor is measured the same way, in
the same run, so the "x floor" column compares like with like.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from pix2pix.inference.onnx import cached_onnx
from pix2pix.inference.translator import Translator
from pix2pix.models.profile import profile


def cpu_ms(fn, repeats: int) -> tuple[float, float]:
    """(median CPU ms, median wall ms) of ``fn()``."""
    cpu, wall = [], []
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        fn()
        cpu.append((time.process_time() - c0) * 1000)
        wall.append((time.perf_counter() - w0) * 1000)
    return statistics.median(cpu), statistics.median(wall)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=30)
    args = ap.parse_args()
    import onnxruntime as ort

    torch.set_num_threads(args.threads)
    a, b = torch.randn(512, 512), torch.randn(512, 512)
    mm_cpu, _ = cpu_ms(lambda: a @ b, 200)
    gflops = 2 * 512**3 / (mm_cpu / 1000) / 1e9
    print(f"matmul fp32, {args.threads} thread(s): {gflops:.0f} GFLOP/s of CPU time")
    print("| model | GMAC@256 | ORT CPU ms | ORT wall ms | floor ms | x floor |")
    print("|---|---|---|---|---|---|")
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 256, 256)).astype(np.float32)
    for path in args.models:
        t = Translator.from_pretrained(path, device="cpu")
        p = profile(t.generator, size=256)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = args.threads
        opts.inter_op_num_threads = 1
        sess = ort.InferenceSession(str(cached_onnx(t.generator, t.info)), opts,
                                    providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        for _ in range(3):
            sess.run(None, {name: x})
        c, w = cpu_ms(lambda: sess.run(None, {name: x}), args.repeats)
        floor = 2 * p.macs / (gflops * 1e9) * 1000
        print(f"| {path} | {p.macs / 1e9:.3f} | {c:.1f} | {w:.1f} | {floor:.1f} | {c / floor:.2f} |")


if __name__ == "__main__":
    main()
