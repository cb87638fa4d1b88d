"""`pix2pix translate`: files and folders through a trained model, any image size."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .options import add_statistics_options, batch_stats_choice
from .translate_video import add_video_arguments

log = logging.getLogger(__name__)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("translate", help="translate images with a trained model",
                       description="Translate image files or folders. The model directory (or run "
                                   "directory) knows its architecture: no training flags needed.")
    p.add_argument("inputs", nargs="+", help="image files or folders of images, video clips, or "
                                               "folders of frames with --sequence")
    p.add_argument("--model", required=True, help="pretrained dir, checkpoint dir or run dir")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.add_argument("--dropout", action="store_true", help="keep dropout on (outputs vary per run)")
    add_statistics_options(p)
    p.add_argument("--paper", action="store_true", help="the paper's test mode: --dropout --batch-stats")
    p.add_argument("--seed", type=int, default=None, help="seed for --dropout")
    p.add_argument("--recursive", action="store_true", help="descend into subfolders, keeping the tree")
    p.add_argument("--backend", default="auto", choices=("auto", "eager", "compile", "onnxruntime"),
                   help="what runs the network; auto picks the fastest for the device and logs it")
    p.add_argument("--batch-size", type=int, default=4, help="images of equal size per forward pass")
    p.add_argument("--tile", type=int, default=None,
                   help="translate images larger than this in overlapping tiles of this many px "
                        "(a multiple of the generator's; default: 1024 px tiles when the whole image would "
                        "need more than 1 GiB on CPU, about 2 Mpx, or half the free GPU memory; 0: never)")
    p.add_argument("--overlap", type=int, default=None, help="tile overlap in px (default tile/4)")
    p.add_argument("--workers", type=int, default=2, help="threads for decoding and for encoding")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--strict", action="store_true",
                   help="stop at the first unreadable image (default: skip it, translate the rest, "
                        "list what was skipped and exit with status 1)")
    add_video_arguments(p)
    p.set_defaults(run=run)


def collect_inputs(inputs: list[str], recursive: bool) -> list[tuple[Path, Path]]:
    """(image path, output path relative to --out) for every input image; errors name the path."""
    from ..util.imageio import is_image_file
    from ..video.io import is_video_file

    found: list[tuple[Path, Path]] = []
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            pattern = "**/*" if recursive else "*"
            entries = sorted(p for p in path.glob(pattern) if p.is_file())  # one walk of the tree
            files = [p for p in entries if is_image_file(p)]
            # Folders are searched for images only: say so when clips are there, not skip them silently.
            clips = [p for p in entries if is_video_file(p)]
            hint = (f"; its {len(clips)} clip(s) are left out: give clips as files, e.g. "
                    f"{clips[0]}" if clips else "")
            if not files:
                raise ValueError(f"{path} holds no images (looked for png, jpg, tif, bmp, webp, npy){hint}")
            if clips:
                log.warning("%s: translating its %d image(s)%s", path, len(files), hint)
            found += [(f, f.relative_to(path)) for f in files]
        elif path.is_file():
            found.append((path, Path(path.name)))
        else:
            raise FileNotFoundError(f"input {path} does not exist")
    # One file named twice (`shots/ shots/a.png`, or a shell glob beside its folder) is translated
    # once: it is one output, not a clash of two.
    unique: dict[tuple[Path, Path], tuple[Path, Path]] = {}
    for src, rel in found:
        unique.setdefault((src.resolve(), rel), (src, rel))
    found = list(unique.values())
    # Outputs are named after the input without its extension (x.jpg -> x.png): two inputs with
    # one name would overwrite each other's output.
    by_output: dict[Path, list[Path]] = {}
    for src, rel in found:
        by_output.setdefault(rel.with_suffix(""), []).append(src)
    clashes = [srcs for srcs in by_output.values() if len(srcs) > 1]
    if clashes:
        listed = "; ".join(" and ".join(map(str, srcs)) for srcs in clashes[:5])
        raise ValueError(f"{len(clashes)} output name(s) would be written twice, so one translation "
                         f"would overwrite the other: {listed}. Rename one of each, or translate "
                         f"them into separate --out folders")
    return found


def warn_file_like_out(out: Path) -> None:
    """``--out result.mp4`` makes a folder of that name (``--out`` is always a folder): say so, as
    a user who named a file expects one."""
    from ..util.imageio import IMAGE_EXTENSIONS
    from ..video.io import VIDEO_EXTENSIONS

    if not out.exists() and out.suffix.lower() in IMAGE_EXTENSIONS + VIDEO_EXTENSIONS:
        log.warning("--out %s is a folder: the outputs go inside it, named as their inputs "
                    "(give a folder name to silence this)", out)


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm.auto import tqdm

    from ..inference.translator import Translator
    from ..inference.folders import check_outputs, check_pipeline, translate_files

    from .translate_video import run_clips, split_inputs

    image_inputs, clips, folders = split_inputs(args)
    files = collect_inputs(image_inputs, args.recursive) if image_inputs else []
    check_pipeline(args.batch_size, args.workers)
    # Before the model loads and before any clip is translated: an --out that is a file, or
    # outputs over their own inputs, would otherwise fail (or destroy the input) part way.
    check_outputs(files, args.out)
    warn_file_like_out(Path(args.out))
    if args.seed is not None:
        torch.manual_seed(args.seed)
    translator = Translator.from_pretrained(args.model, device=args.device,
                                            dropout=args.dropout or args.paper,
                                            batch_stats=batch_stats_choice(args, paper=args.paper),
                                            backend=args.backend)
    if args.tile:
        from ..inference.tiling import check_tiling

        check_tiling(args.tile, args.tile // 4 if args.overlap is None else args.overlap, translator.multiple)
    if clips or folders:
        code = run_clips(args, translator, clips, folders)
        if code or not files:
            return code
    out_dir = Path(args.out)
    images = tqdm(total=len(files), desc="translate", unit="img", disable=args.no_progress or len(files) < 2)
    tiles: dict = {}

    def on_tile(done: int, total: int) -> None:
        # One bar per tiled image: the job that takes minutes is the one that needs it.
        if args.no_progress:
            return
        if "bar" not in tiles or tiles["bar"].total != total or done <= tiles["done"]:
            tiles["bar"] = tqdm(total=total, desc="tiles", unit="tile", leave=False)
            tiles["done"] = 0
        tiles["bar"].update(done - tiles["done"])
        tiles["done"] = done
        if done == total:
            tiles["bar"].close()

    with images:
        stats = translate_files(translator, files, out_dir, batch_size=args.batch_size, tile=args.tile,
                                overlap=args.overlap, workers=args.workers, on_image=images.update,
                                on_tile=on_tile, strict=args.strict)
    if stats.interrupted:
        print(f"interrupted: {stats.images} of {len(files)} image(s) translated into {out_dir}; "
              f"rerun to translate them all")
        return 130
    done = (f"translated {stats.images} image(s)" if not stats.skipped else
            f"translated {stats.images} of {len(files)} image(s)")
    print(f"{done} into {out_dir} in {stats.seconds:.1f} s "
          f"({stats.images_per_second:.2f} img/s; backend {translator.backend.name}, "
          f"{stats.inference_seconds:.1f} s in inference)")
    if stats.skipped:
        print(f"skipped {len(stats.skipped)} unreadable file(s):\n"
              + "\n".join(f"  {path}: {reason}" for path, reason in stats.skipped), file=sys.stderr)
        return 1
    return 0
