"""`pix2pix data`: dataset tools: examples, check, combine, split, resize, pair makers, download."""
from __future__ import annotations

import argparse
import json
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="prepare, check and download paired datasets")
    dsub = p.add_subparsers(dest="data_command", metavar="TOOL", required=True)

    ex = dsub.add_parser("example", help="write a built-in example dataset made from shipped images")
    ex.add_argument("name", nargs="?", help="example name (see --list)")
    ex.add_argument("--out", help="output folder")
    ex.add_argument("--size", type=int, default=256, help="tile size in pixels")
    ex.add_argument("--list", action="store_true", help="list the examples")
    ex.set_defaults(run=run_example)

    chk = dsub.add_parser("check", help="check a dataset as training would (exit 1 on problems)")
    chk.add_argument("root", help="dataset folder")
    chk.add_argument("--splits", default="train,val,test", help="comma-separated splits to check")
    chk.add_argument("--json", action="store_true", help="print the report as JSON")
    chk.add_argument("--no-decode", action="store_true",
                     help="read headers only (fast; misses truncated files and duplicates)")
    chk.add_argument("--min-size", type=int, default=256, help="warn about images smaller than this")
    chk.add_argument("--strict", action="store_true", help="exit 1 on warnings too (e.g. duplicates)")
    _add_run_options(chk)
    chk.set_defaults(run=run_check)

    cmb = dsub.add_parser("combine", help="pair A/ and B/ folders by file name into a dataset")
    cmb.add_argument("a_dir", metavar="A_DIR", help="inputs (with train/val/test subfolders, or flat)")
    cmb.add_argument("b_dir", metavar="B_DIR", help="targets, same file names (extensions may differ)")
    cmb.add_argument("--out", required=True, help="dataset folder to write")
    cmb.add_argument("--layout", choices=("combined", "folders"), default="combined",
                     help="combined: one A|B image per pair; folders: copy into A/ and B/")
    cmb.add_argument("--ext", default="png", help="format of combined images: png, jpg, tif, npy")
    cmb.add_argument("--split", default="train", help="split for flat input folders")
    cmb.add_argument("--strict", action="store_true", help="exit 1 if any file could not be paired")
    _add_run_options(cmb)
    cmb.set_defaults(run=run_combine)

    spl = dsub.add_parser("split", help="split a dataset into train/val/test, reproducibly")
    spl.add_argument("root", help="dataset folder: flat, or everything in train/")
    spl.add_argument("--val", type=float, default=0.1, help="fraction for validation")
    spl.add_argument("--test", type=float, default=0.1, help="fraction for test")
    spl.add_argument("--seed", type=int, default=0)
    spl.add_argument("--group", help="regex: names giving the same match stay in one split "
                                     "(e.g. '^(.*)_r\\d+c\\d+$' keeps tiles of one photo together)")
    spl.add_argument("--out", help="copy into this folder instead of moving files in place")
    spl.set_defaults(run=run_split)

    rsz = dsub.add_parser("resize", help="resize every pair of a dataset into a new folder")
    rsz.add_argument("root", help="dataset folder")
    rsz.add_argument("--out", required=True, help="folder to write (never the input)")
    rsz.add_argument("--size", required=True, help="N or WxH per image (per half for A|B images)")
    rsz.add_argument("--fit", choices=("crop", "stretch", "short"), default="crop",
                     help="crop: cover then centre-crop; stretch: exact size; short: short side to N")
    rsz.add_argument("--nearest", choices=("none", "A", "B", "both"), default="none",
                     help="sides holding label maps (nearest-neighbour, no new label values)")
    _add_run_options(rsz)
    rsz.set_defaults(run=run_resize)

    from ..data.pairmakers import PAIR_MAKERS

    for name, spec in PAIR_MAKERS.items():
        mk = dsub.add_parser(name, help=f"make pairs from photos: {spec.description}")
        _add_maker_options(mk)
        for option in spec.options:
            mk.add_argument(option.flag, **option.kwargs)
        mk.set_defaults(run=run_pair_maker, maker=name)

    dl = dsub.add_parser("download", help="download a standard pix2pix dataset (resumable, verified)")
    dl.add_argument("name", nargs="?", help="dataset name (see --list)")
    dl.add_argument("--out", default="datasets", help="parent folder; the dataset lands in OUT/NAME")
    dl.add_argument("--base-url", default=None, help="where NAME.tar.gz is served")
    dl.add_argument("--sha256", help="expected SHA-256 of the archive")
    dl.add_argument("--keep-archive", action="store_true", help="keep NAME.tar.gz after extraction")
    dl.add_argument("--timeout", type=float, default=60.0, help="network timeout in seconds")
    dl.add_argument("--list", action="store_true", help="list the datasets")
    dl.add_argument("--no-progress", action="store_true", help="no progress bar")
    dl.set_defaults(run=run_download)


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=int, default=None, help="threads (default: CPU cores, at most 8)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_maker_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("photos", nargs="+", help="photos or folders of photos (searched recursively)")
    p.add_argument("--out", required=True, help="dataset folder to write (train/val/test)")
    p.add_argument("--size", type=int, default=256, help="tile size in pixels")
    p.add_argument("--tiles", choices=("grid", "random"), default="grid", help="tiling of each photo")
    p.add_argument("--stride", type=int, help="grid step in pixels (default: the tile size)")
    p.add_argument("--per-photo", type=int, default=0, help="random crops per photo / cap on grid tiles")
    p.add_argument("--short-side", type=int, help="first shrink photos whose short side is longer")
    p.add_argument("--min-std", type=float, default=0.02, help="skip flat tiles (gray std below this)")
    p.add_argument("--val", type=float, default=0.1, help="fraction of photos for validation")
    p.add_argument("--test", type=float, default=0.1, help="fraction of photos for test")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--layout", choices=("combined", "folders"), default="combined")
    p.add_argument("--ext", default="png", help="png, jpg (smaller), tif or npy")
    _add_run_options(p)


def run_example(args: argparse.Namespace) -> int:
    from ..data.examples import EXAMPLES, make_example

    if args.list or not args.name:
        for ex in EXAMPLES.values():
            print(f"{ex.name}: {ex.description}\n  source: {ex.source}\n  licence: {ex.licence}\n"
                  f"  needs: pip install {ex.package}")
        return 0
    if not args.out:
        raise ValueError("--out DIR is required to write an example")
    summary = make_example(args.name, args.out, size=args.size)
    print(f"wrote {args.name} to {args.out}: " + ", ".join(f"{k} {v}" for k, v in summary["pairs"].items()))
    return 0


def run_check(args: argparse.Namespace) -> int:
    from ..data.prepare import inspect_dataset

    splits = [s for s in args.splits.split(",") if s]
    report = inspect_dataset(args.root, splits=splits, decode=not args.no_decode, min_size=args.min_size,
                             workers=args.workers, progress=not args.no_progress and not args.json)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for split, info in report["splits"].items():
            if info is None:
                print(f"{split}: missing")
                continue
            sizes = ", ".join(f"{k} x{v}" for k, v in list(info["sizes"].items())[:4])
            more = f" (+{len(info['sizes']) - 4} more sizes)" if len(info["sizes"]) > 4 else ""
            modes = ", ".join(f"{k} x{v}" for k, v in info["modes"].items())
            broken = f", {info['broken']} broken" if info["broken"] else ""
            print(f"{split}: {info['pairs']} pairs{broken} ({info['layout']}); sizes {sizes or '-'}{more}; "
                  f"modes {modes or '-'}")
        for e in report["errors"]:
            print(f"error: {e}")
        for w in report["warnings"]:
            print(f"warning: {w}")
        n_e, n_w = len(report["errors"]), len(report["warnings"])
        print("ok" if not n_e and not n_w else f"{n_e} error(s), {n_w} warning(s)"
              + (" (errors stop training)" if n_e else ""))
    return 1 if report["errors"] or (args.strict and report["warnings"]) else 0


def run_combine(args: argparse.Namespace) -> int:
    import time

    from ..data.prepare import combine

    start = time.perf_counter()
    report = combine(args.a_dir, args.b_dir, args.out, layout=args.layout, ext=args.ext, split=args.split,
                     workers=args.workers, progress=not args.no_progress)
    seconds = time.perf_counter() - start
    for problem in report.problems:
        print(f"not paired: {problem}", file=sys.stderr)
    print(f"wrote {report.total} pairs to {args.out} (" +
          ", ".join(f"{k} {v}" for k, v in report.written.items()) +
          f") in {seconds:.1f} s, {report.total / max(seconds, 1e-9):.1f} pairs/s; "
          f"{len(report.problems)} file(s) not paired")
    return 1 if args.strict and report.problems else 0


def run_split(args: argparse.Namespace) -> int:
    from ..data.prepare import split_dataset

    counts = split_dataset(args.root, val=args.val, test=args.test, seed=args.seed, group=args.group,
                           out=args.out)
    print(f"{args.out or args.root}: " + ", ".join(f"{k} {v}" for k, v in counts.items()) +
          f" (seed {args.seed})")
    return 0


def run_resize(args: argparse.Namespace) -> int:
    from ..data.prepare import parse_size, resize_dataset

    size = parse_size(args.size)
    if args.fit == "short" and size[0] != size[1]:
        raise ValueError("--fit short takes one number (the short side), not WxH")
    result = resize_dataset(args.root, args.out, size, fit=args.fit, nearest=args.nearest,
                            workers=args.workers, progress=not args.no_progress)
    for problem in result["problems"]:
        print(f"skipped: {problem}", file=sys.stderr)
    print(f"resized into {args.out}: " + ", ".join(f"{k} {v}" for k, v in result["written"].items()) +
          (f"; {len(result['problems'])} skipped" if result["problems"] else ""))
    return 0


def build_maker(args: argparse.Namespace):
    """The pair maker the command line asks for (its options read from the table)."""
    from ..data.pairmakers import PAIR_MAKERS, build_pair_maker

    options = {o.dest: getattr(args, o.dest) for o in PAIR_MAKERS[args.maker].options}
    return build_pair_maker(args.maker, options, args.size)


def run_pair_maker(args: argparse.Namespace) -> int:
    import time

    from ..data.pairmakers import Tiling, make_pairs

    maker = build_maker(args)
    tiling = Tiling(size=args.size, mode=args.tiles, stride=args.stride, per_photo=args.per_photo,
                    short_side=args.short_side, min_std=args.min_std)
    start = time.perf_counter()
    result = make_pairs(args.photos, args.out, maker, tiling=tiling, val=args.val, test=args.test,
                        seed=args.seed, layout=args.layout, ext=args.ext, workers=args.workers,
                        progress=not args.no_progress)
    seconds = time.perf_counter() - start
    for problem in result["problems"]:
        print(f"skipped: {problem}", file=sys.stderr)
    total = sum(result["pairs"].values())
    print(f"wrote {total} {args.maker} pairs to {args.out} (" +
          ", ".join(f"{k} {v}" for k, v in result["pairs"].items()) + ") from " +
          ", ".join(f"{v} {k}" for k, v in result["photos"].items()) + " photos" +
          (f"; {result['skipped_flat']} flat or blank tiles skipped" if result["skipped_flat"] else "") +
          f"; {seconds:.1f} s, {total / max(seconds, 1e-9):.1f} pairs/s")
    return 0


def run_download(args: argparse.Namespace) -> int:
    from ..data.download import BASE_URL, DATASETS, download

    if args.list or not args.name:
        for d in DATASETS.values():
            print(f"{d.name}: {d.description}\n  source: {d.source}")
        print(f"from {BASE_URL}/NAME.tar.gz")
        return 0
    result = download(args.name, args.out, base_url=args.base_url or BASE_URL, sha256=args.sha256,
                      keep_archive=args.keep_archive, progress=not args.no_progress, timeout=args.timeout)
    print(f"{args.name}: {result['members']} files in {result['path']} (archive sha256 {result['sha256']})")
    return 0
