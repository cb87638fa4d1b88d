"""`pix2pix export`: a trained generator to ONNX, checked against PyTorch in ONNX Runtime."""
from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a trained generator to ONNX (with a parity check)",
                       description="Write an ONNX model with dynamic batch, height and width "
                                   "(sides multiples of the generator's), check it in ONNX Runtime "
                                   "against PyTorch and report the largest difference.")
    p.add_argument("--model", required=True, help="pretrained dir, checkpoint dir or run dir")
    p.add_argument("--out", required=True, help="output .onnx file")
    p.add_argument("--fp16", action="store_true",
                   help="half-precision weights and compute behind float32 inputs/outputs (GPU, web, mobile)")
    p.add_argument("--int8", action="store_true",
                   help="also write OUT.int8.onnx, dynamically quantised for CPUs, and report its PSNR")
    p.add_argument("--sample", help="an image to run the checks on (default: a random image)")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (17 or newer; default 18)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..export import OPSET, export_checked
    from ..inference import Translator

    out = Path(args.out)
    if out.suffix.lower() != ".onnx":
        raise ValueError(f"--out {out} should end in .onnx")
    if args.opset is not None and args.opset < 17:
        raise ValueError(f"--opset {args.opset} is too old; use 17 or newer (default {OPSET})")
    translator = Translator.from_pretrained(args.model, device="cpu")
    sample = None
    if args.sample:
        from ..imageio import read_image
        from ..inference import pad_to_multiple

        # The Translator prepares the sample exactly as it prepares any input (channels, range).
        x, _ = translator.prepare(read_image(args.sample))
        sample, _ = pad_to_multiple(x[None], translator.multiple)
    report = export_checked(translator.generator, translator.info, out, fp16=args.fp16, int8=args.int8,
                            sample=sample, opset=args.opset or OPSET)
    kind = "fp16" if args.fp16 else "fp32"
    print(f"wrote {report.path} ({report.size_mb:.1f} MB, {kind}, opset {report.opset}, "
          f"dynamic batch/height/width, sides multiples of {translator.multiple})")
    print(f"parity: ONNX Runtime vs PyTorch fp32 on {'x'.join(map(str, report.check_shape))}: "
          f"max |diff| {report.max_abs_diff:.2e}")
    if report.int8_path is not None:
        print(f"wrote {report.int8_path} ({report.int8_size_mb:.1f} MB, int8 dynamic quantisation): "
              f"PSNR {report.int8_psnr_db:.1f} dB against the {kind} output")
    return 0
