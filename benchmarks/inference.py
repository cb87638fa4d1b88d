"""Milliseconds per image for every inference backend, beside the compute floor.

    python benchmarks/inference.py [--sizes 256 512] [--batches 1 8] [--repeats 3] [--only NAME ...]
                                   [--threads N] [--upsample transpose|resize]

Model: unet_256, 64 base channels, batch norm, eval mode (random weights: speed does not depend
on their values); its decoder the paper's transposed convolutions, or with --upsample resize the
default recipe's resize-convs. floor = FLOPs per image of the graph ONNX Runtime runs
(pix2pix.inference.inference_graph.for_inference: resize-convs at the input resolution, 16 of the
36 multiply-adds; torch.utils.flop_counter, ~12.1 GFLOP at 256^2 for the paper's decoder) / the
fp32 2048^3 matmul rate, measured again right before each case so that both sides of the ratio see
the same load on a shared machine. Times are the best and the median of ``repeats`` calls after a
warm-up call (which also compiles, for torch.compile).

Variants (the CPU levers tried):
  eager            the module as it is (NCHW)
  eager-cl         channels_last weights and inputs (oneDNN convolutions without reorders)
  compile-nofreeze torch.compile (inductor) on channels_last
  compile          the `compile` backend: + inductor freezing (folds batch norm into the convs,
                   prepacks oneDNN weights)
  ort              the `onnxruntime` backend (its export: the rewritten graph, export_fast): all
                   graph optimisations, intra-op threads = torch's
  ort-plain        the same on the plain export of the module (what the backend ran before
                   2026-12-06: a resize-conv as an upsample and a 3x3 convolution at 2x)
  ort-basic        ONNX Runtime with basic graph optimisations only
  ort-1thread      ONNX Runtime on one intra-op thread
  ort-int8         the dynamically quantised int8 export (`pix2pix export --int8`)
  ort-fp16         the fp16 export (`pix2pix export --fp16`), for comparison on CPU
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from typing import Callable

import torch

sys.path.insert(0, os.path.dirname(__file__))
from common import count_flops, matmul_rate, timed  # noqa: E402

from pix2pix.checkpoint import PretrainedInfo  # noqa: E402
from pix2pix.config import ModelConfig  # noqa: E402
from pix2pix.inference.inference_graph import for_inference  # noqa: E402
from pix2pix.models import build_generator  # noqa: E402

VARIANTS = ["eager", "eager-cl", "compile-nofreeze", "compile", "ort", "ort-plain", "ort-basic", "ort-1thread",
            "ort-int8", "ort-fp16"]


def ort_runner(path: str, *, level: str = "all", threads: int = 0) -> Callable[[torch.Tensor], object]:
    import onnxruntime as ort

    from pix2pix.inference.onnx import run_onnx

    options = ort.SessionOptions()
    options.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if level == "all"
                                        else ort.GraphOptimizationLevel.ORT_ENABLE_BASIC)
    options.intra_op_num_threads = threads or torch.get_num_threads()
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    return lambda x: run_onnx(session, x.numpy())


def build_runners(generator: torch.nn.Module, info: PretrainedInfo, names: list[str],
                  folder: str) -> dict[str, Callable[[torch.Tensor], object]]:
    from pix2pix.inference.backends import CompiledBackend, OnnxRuntimeBackend
    from pix2pix.inference.onnx import export_fast, export_onnx, quantize_int8

    runners: dict[str, Callable[[torch.Tensor], object]] = {}
    fp32, plain = os.path.join(folder, "g.onnx"), os.path.join(folder, "plain.onnx")
    if any(n.startswith("ort") for n in names):
        t = time.perf_counter()
        export_fast(generator, info, fp32)
        if "ort-plain" in names:
            export_onnx(generator, info, plain)
        print(f"(ONNX export: {time.perf_counter() - t:.1f} s)")
    for name in names:
        g = build_generator(info.model, init=False).eval()
        g.load_state_dict(generator.state_dict())
        if name == "eager":
            runners[name] = g
        elif name == "eager-cl":
            g = g.to(memory_format=torch.channels_last)
            runners[name] = lambda x, g=g: g(x.contiguous(memory_format=torch.channels_last))
        elif name == "compile-nofreeze":
            runners[name] = CompiledBackend(g, freeze=False)
        elif name == "compile":
            runners[name] = CompiledBackend(g)
        elif name == "ort":
            runners[name] = OnnxRuntimeBackend(fp32, torch.device("cpu"))
        elif name == "ort-plain":
            runners[name] = OnnxRuntimeBackend(plain, torch.device("cpu"))
        elif name == "ort-basic":
            runners[name] = ort_runner(fp32, level="basic")
        elif name == "ort-1thread":
            runners[name] = ort_runner(fp32, threads=1)
        elif name == "ort-int8":
            runners[name] = ort_runner(str(quantize_int8(fp32, os.path.join(folder, "g.int8.onnx"))))
        elif name == "ort-fp16":
            runners[name] = ort_runner(str(export_onnx(generator, info, os.path.join(folder, "g16.onnx"),
                                                       fp16=True)))
        else:
            raise SystemExit(f"unknown variant {name}; choose from {', '.join(VARIANTS)}")
    return runners


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", nargs="+", default=VARIANTS, help="variants to run")
    ap.add_argument("--threads", type=int, default=None,
                    help="threads for everything, the matmul floor included (default: torch's)")
    ap.add_argument("--upsample", choices=["transpose", "resize"], default="transpose",
                    help="the decoder: the paper's transposed convolutions, or the default recipe's resize-convs")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    info = PretrainedInfo(model=ModelConfig(generator="unet_256", upsample=args.upsample))
    generator = build_generator(info.model).eval()
    fast, _ = for_inference(generator)  # the graph ONNX Runtime runs: the floor's FLOPs
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} CPUs visible; unet_256 base 64, {args.upsample} decoder, fp32 unless named")
    with tempfile.TemporaryDirectory() as folder, torch.inference_mode():
        runners = build_runners(generator, info, args.only, folder)
        print(f"{'variant':<16}{'size':>6}{'batch':>6}{'GFLOP/img':>10}{'floor ms':>10}"
              f"{'best ms/img':>12}{'median':>9}{'x floor':>9}")
        for size in args.sizes:
            flops = count_flops(lambda: fast(torch.zeros(1, 3, size, size)))
            for batch in args.batches:
                x = torch.rand(batch, 3, size, size) * 2 - 1
                for name, run in runners.items():
                    rate = matmul_rate(repeats=5)
                    best, median = timed(lambda: run(x), args.repeats)
                    floor = flops / rate
                    print(f"{name:<16}{size:>6}{batch:>6}{flops / 1e9:>10.2f}{floor * 1e3:>10.1f}"
                          f"{best / batch * 1e3:>12.1f}{median / batch * 1e3:>9.1f}"
                          f"{best / batch / floor:>9.2f}", flush=True)


if __name__ == "__main__":
    main()
