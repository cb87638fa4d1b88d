"""`pix2pix export`: a trained generator to ONNX, checked against PyTorch in ONNX Runtime."""
from __future__ import annotations

import argparse

from .options import add_statistics_options, batch_stats_choice


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a trained generator to ONNX (with a parity check)",
                       description="Write an ONNX model with dynamic batch, height and width "
                                   "(sides multiples of the generator's), check it in ONNX Runtime "
                                   "against PyTorch and report the largest difference.")
    p.add_argument("--model", help="pretrained dir, checkpoint dir or run dir (with --web also an "
                                    ".onnx file; default there: the built-in model, where there is one)")
    p.add_argument("--out", help="output .onnx file")
    p.add_argument("--web", metavar="DIR",
                   help="instead of --out: write DIR, a self-contained page (index.html) that runs the "
                        "model in the browser with ONNX Runtime Web, offline, from disk or a static host")
    p.add_argument("--fp32", action="store_true",
                   help="with --web: keep full-precision weights (default fp16 where parity holds)")
    p.add_argument("--no-webgpu", action="store_true",
                   help="with --web: leave out the WebGPU runtime (27 MB; WASM only)")
    p.add_argument("--fp16", action="store_true",
                   help="half-precision weights and compute behind float32 inputs/outputs (GPU, web, mobile)")
    p.add_argument("--int8", action="store_true",
                   help="also write OUT.int8.onnx, dynamically quantised for CPUs, and report its PSNR")
    p.add_argument("--sample", help="an image to run the checks on (default: a random image)")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (17 or newer; default 18)")
    add_statistics_options(p)
    p.set_defaults(run=run)


def _default_model() -> str:
    """The built-in model's directory, where this install has one."""
    try:
        from ..builtin import builtin_model_dir  # type: ignore[import-not-found]
    except ImportError:
        raise ValueError("--web needs --model DIR (a pretrained, checkpoint or run directory, or an "
                         ".onnx file): this install has no built-in model") from None
    return str(builtin_model_dir())


def run_web(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..inference.translator import Translator
    from ..serve.models import default_name
    from ..export.web import export_web
    from ..export.web_runtime import RuntimeUnavailable

    if args.out or args.fp16 or args.int8 or args.sample or args.opset:
        raise ValueError("--web takes only --model, --fp32 and --no-webgpu (it writes fp16 by "
                         "default); --out/--fp16/--int8/--sample/--opset are for .onnx exports")
    model = args.model or _default_model()
    translator = Translator.from_pretrained(model, device="cpu", batch_stats=batch_stats_choice(args),
                                            backend="onnxruntime" if model.endswith(".onnx") else "eager")
    try:
        report = export_web(translator, args.web, source=model, name=default_name(Path(model)),
                            fp32=args.fp32, webgpu=not args.no_webgpu)
    except RuntimeUnavailable as e:
        raise ValueError(str(e)) from None
    if report.note:
        print(f"note: {report.note}")
    parity = "" if report.max_abs_diff is None else f", max |diff| vs PyTorch {report.max_abs_diff:.2e}"
    print(f"wrote {report.folder}/index.html: model {report.model_mb:.1f} MB ({report.precision}{parity}) "
          f"+ ONNX Runtime Web {report.runtime_mb:.1f} MB ({' + '.join(report.flavours)}) "
          f"= {report.folder_mb:.1f} MB on disk (base64 in scripts, so it also opens from disk)")
    print(f"open {report.folder / 'index.html'} in a browser (one WASM thread from a file), or serve it "
          f"for threads: python -m http.server -d {report.folder} 8000")
    return 0


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..inference.onnx import OPSET, export_fast
    from ..inference.translator import Translator

    if args.web:
        return run_web(args)
    if not args.out or not args.model:
        raise ValueError("give --model DIR and --out FILE.onnx (or --web DIR for a browser page)")
    if args.fp32 or args.no_webgpu:
        raise ValueError("--fp32 and --no-webgpu go with --web (an .onnx export is fp32 unless --fp16)")
    out = Path(args.out)
    if out.suffix.lower() != ".onnx":
        raise ValueError(f"--out {out} should end in .onnx")
    if args.opset is not None and args.opset < 17:
        raise ValueError(f"--opset {args.opset} is too old; use 17 or newer (default {OPSET})")
    translator = Translator.from_pretrained(args.model, device="cpu", batch_stats=batch_stats_choice(args))
    sample = None
    if args.sample:
        from ..util.imageio import read_image
        from ..inference.translator import pad_to_multiple

        # The Translator prepares the sample exactly as it prepares any input (channels, range).
        x, _ = translator.prepare(read_image(args.sample))
        sample, _ = pad_to_multiple(x[None], translator.multiple)
    # The graph ONNX Runtime runs fastest (resize-convs at the input resolution), held to the model.
    report, _ = export_fast(translator.generator, translator.info, out, fp16=args.fp16, int8=args.int8,
                            sample=sample, opset=args.opset or OPSET)
    kind = "fp16" if args.fp16 else "fp32"
    print(f"wrote {report.path} ({report.size_mb:.1f} MB, {kind}, opset {report.opset}, "
          f"dynamic batch/height/width, sides multiples of {translator.multiple})")
    print(f"parity: ONNX Runtime vs PyTorch fp32 on {'x'.join(map(str, report.check_shape))}: "
          f"max |diff| {report.max_abs_diff:.2e}")
    if report.int8_path is not None:
        print(f"wrote {report.int8_path} ({report.int8_size_mb:.1f} MB, int8 dynamic quantisation): "
              f"PSNR {report.int8_psnr_db:.1f} dB against the {kind} output")
        print(int8_verdict(report, kind))
    return 0


def int8_verdict(report, kind: str) -> str:
    """What int8 gives on this machine: size and speed ratios, with a warning when it is slower."""
    from ..inference.onnx import INT8_RUNS

    size = report.size_mb / max(report.int8_size_mb, 1e-9)
    speed = report.int8_speedup
    shape = "x".join(map(str, report.check_shape[2:]))
    measured = (f"{report.int8_ms_per_run:.1f} ms vs {report.ms_per_run:.1f} ms {kind} per {shape} image, "
                f"median of {INT8_RUNS} runs each in ONNX Runtime on this machine")
    if speed >= 1:
        return (f"int8 here: {speed:.1f}x faster than {kind} ({measured}) and {size:.1f}x smaller "
                f"({report.size_mb:.1f} -> {report.int8_size_mb:.1f} MB)")
    return (f"warning: int8 is {1 / speed:.1f}x SLOWER than {kind} on this machine ({measured}); it is "
            f"{size:.1f}x smaller ({report.size_mb:.1f} -> {report.int8_size_mb:.1f} MB). This CPU has "
            f"no fast int8 path: use {report.path.name} here unless file size matters more")
