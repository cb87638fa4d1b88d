"""`pix2pix translate`: files and folders through a trained model, any image size."""
from __future__ import annotations

import argparse
import time
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("translate", help="translate images with a trained model",
                       description="Translate image files or folders. The model directory (or run "
                                   "directory) knows its architecture: no training flags needed.")
    p.add_argument("inputs", nargs="+", help="image files or folders of images")
    p.add_argument("--model", required=True, help="pretrained dir, checkpoint dir or run dir")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.add_argument("--dropout", action="store_true", help="keep dropout on (outputs vary per run)")
    p.add_argument("--batch-stats", action="store_true",
                   help="normalise with each image's own statistics instead of the running ones")
    p.add_argument("--paper", action="store_true", help="the paper's test mode: --dropout --batch-stats")
    p.add_argument("--seed", type=int, default=None, help="seed for --dropout")
    p.add_argument("--recursive", action="store_true", help="descend into subfolders, keeping the tree")
    p.set_defaults(run=run)


def collect_inputs(inputs: list[str], recursive: bool) -> list[tuple[Path, Path]]:
    """(image path, output path relative to --out) for every input image; errors name the path."""
    from ..imageio import is_image_file

    found: list[tuple[Path, Path]] = []
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            pattern = "**/*" if recursive else "*"
            files = sorted(p for p in path.glob(pattern) if p.is_file() and is_image_file(p))
            if not files:
                raise ValueError(f"{path} holds no images (looked for png, jpg, tif, bmp, webp, npy)")
            found += [(f, f.relative_to(path)) for f in files]
        elif path.is_file():
            found.append((path, Path(path.name)))
        else:
            raise FileNotFoundError(f"input {path} does not exist")
    return found


def run(args: argparse.Namespace) -> int:
    import torch

    from ..imageio import read_image, save_array
    from ..inference import Translator

    files = collect_inputs(args.inputs, args.recursive)
    if args.seed is not None:
        torch.manual_seed(args.seed)
    translator = Translator.from_pretrained(args.model, device=args.device,
                                            dropout=args.dropout or args.paper,
                                            batch_stats=args.batch_stats or args.paper)
    out_dir = Path(args.out)
    t0 = time.perf_counter()
    from tqdm.auto import tqdm

    for src, rel in tqdm(files, desc="translate", unit="img", disable=len(files) < 2):
        result = translator.translate_array(read_image(src))
        suffix = ".png" if result.shape[2] in (1, 3, 4) else ".npy"
        save_array(result, out_dir / rel.with_suffix(suffix))
    dt = time.perf_counter() - t0
    print(f"translated {len(files)} image(s) into {out_dir} in {dt:.1f} s "
          f"({len(files) / max(dt, 1e-9):.2f} img/s)")
    return 0
