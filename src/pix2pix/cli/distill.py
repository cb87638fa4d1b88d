"""`pix2pix distill`: train a small student generator on a trained teacher's outputs."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from . import train as train_cli


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..models import STUDENTS

    p = sub.add_parser("distill", help="train a small, fast student on a trained model's outputs",
                       description="Knowledge distillation: the student learns L1 to the teacher's "
                                   "output (plus --l1-weight to the real target), the adversarial "
                                   "loss against a discriminator started from the teacher's, and "
                                   "optionally the teacher's decoder attention maps. Every `train` "
                                   "option works; the result is an ordinary model directory. At the "
                                   "end a table compares teacher and student (size, MACs, latency, "
                                   "held-out L1/PSNR/LPIPS).")
    p.add_argument("--teacher", help="teacher: pretrained, checkpoint or run directory [distill.teacher]")
    p.add_argument("--student", default=None,
                   help=f"student preset ({', '.join(STUDENTS)}) or any generator name "
                        f"(see `pix2pix models`) with --base-channels; default mobile_unet_256_w16")
    p.add_argument("--teacher-weight", type=float, default=None,
                   help="weight of L1 to the teacher's output (default 100) [distill.teacher_weight]")
    p.add_argument("--feature-weight", type=float, default=None,
                   help="weight of the decoder attention-map loss (default 0: off) [distill.feature_weight]")
    p.add_argument("--no-teacher-d", action="store_true",
                   help="start D from scratch, not from the teacher run's discriminator")
    p.add_argument("--no-cache", action="store_true", help="recompute teacher outputs every step")
    p.add_argument("--table-split", default=None,
                   help="split for the closing table (default test, skipped with a note when the "
                        "dataset has none; 'none' skips the table)")
    p.add_argument("--table-backends", default="eager,onnxruntime",
                   help="backends whose latency the closing table measures (comma list; default "
                        "eager,onnxruntime; 'eager' alone skips the ONNX export)")
    train_cli.add_options(p)
    p.set_defaults(run=run)


def student_model(teacher_model, student: str, base_channels):
    """The student's ModelConfig: the teacher's channels, norm and D, a new generator and width."""
    from dataclasses import replace

    from ..models import GENERATORS, STUDENTS

    if student in STUDENTS:
        generator, width = STUDENTS[student]
    elif student in GENERATORS:
        generator, width = student, teacher_model.base_channels
    else:
        raise ValueError(f"--student {student!r} is neither a preset ({', '.join(STUDENTS)}) nor a "
                         f"generator ({', '.join(GENERATORS)}); see `pix2pix models`")
    return replace(teacher_model, generator=generator,
                   base_channels=base_channels if base_channels is not None else width)


def build_distill_config(args: argparse.Namespace):
    from ..checkpoint import read_info
    from ..config import DataConfig, DistillConfig, TrainConfig

    base = None
    if not args.resume:
        if not args.teacher:
            raise ValueError("--teacher MODEL is required (a pretrained, checkpoint or run directory)")
        if args.arch:
            raise ValueError("pix2pix distill takes --student NAME, not --arch")
        try:
            info = read_info(args.teacher)
        except FileNotFoundError as e:  # name the option: the path alone does not say where it came from
            raise FileNotFoundError(f"--teacher {args.teacher}: {e}") from None
        model = student_model(info.model, args.student or "mobile_unet_256_w16", args.base_channels)
        args.base_channels = None  # consumed above
        distill = DistillConfig(teacher=str(args.teacher),
                                teacher_weight=100.0 if args.teacher_weight is None else args.teacher_weight,
                                feature_weight=args.feature_weight or 0.0,
                                teacher_discriminator=not args.no_teacher_d,
                                cache="off" if args.no_cache else "auto")
        # The teacher's loss replaces L1 to the target unless --l1-weight asks for both.
        base = TrainConfig(model=model, data=DataConfig(direction=info.direction,
                                                        image_size=info.image_size),
                           l1_weight=0.0, distill=distill)
    elif args.teacher or args.student:
        raise ValueError("--resume continues the run's saved config; drop --teacher/--student")
    cfg = train_cli.build_config(args, base=base)
    if not cfg.distill.enabled:
        raise ValueError(f"{cfg.out} is not a distillation run (its config has no distill.teacher); "
                         f"use `pix2pix train --resume`")
    return cfg


def table_options(args: argparse.Namespace, data_root: str) -> tuple[str, tuple[str, ...]]:
    """(split, backends) of the closing table, checked before training: a typo found only after
    the run would exit 2 on a finished student. A split named with --table-split must exist;
    the default (test) may be missing, which skips the table with a note."""
    from ..inference.backends import BACKENDS

    backends = tuple(b.strip() for b in args.table_backends.split(",") if b.strip())
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown or not backends:
        raise ValueError(f"--table-backends {args.table_backends!r}: {', '.join(unknown) or 'empty'} is "
                         f"not a backend; choose from {', '.join(BACKENDS)} (comma list)")
    split, root = args.table_split or "test", Path(data_root)
    if args.table_split not in (None, "none") and not (root / split).is_dir():
        found = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        raise ValueError(f"--table-split {split}: {data_root}/{split} does not exist (found: "
                         f"{', '.join(found) or 'nothing'}); name one of those, or none to skip the table")
    return split, backends


def run(args: argparse.Namespace) -> int:
    cfg = build_distill_config(args)
    table_split, backends = table_options(args, cfg.data.root)
    rc, result = train_cli.run_training(args, cfg=cfg, command="distill")
    # 130: stopped by Ctrl-C / SIGTERM after a clean save; the table is written then too.
    if rc not in (0, 130) or result is None or os.environ.get("RANK", "0") != "0":
        return rc
    # Every clean stop (the end, the time budget, a signal) gets the table: a time cap is how
    # most distillations are run.
    state = {"finished": "finished", "max_steps": "finished", "time_limit": "stopped at the time limit",
             "interrupted": "interrupted"}.get(result.stopped)
    if state is None or table_split == "none":
        return rc
    try:
        write_table(cfg, table_split, state, backends=backends)
    except KeyboardInterrupt:
        print("comparison table skipped (interrupted again)", file=sys.stderr)
    return rc


def write_table(cfg, table_split: str, state: str, backends: tuple[str, ...]) -> None:
    """Compare teacher and student on ``table_split``; print and save distill_table.md/.json."""
    from ..metrics.compare import compare_models, format_table, rows_to_dicts

    split = Path(cfg.data.root) / table_split
    if not split.is_dir():
        hint = " (pass --table-split val)" if (split.parent / "val").is_dir() else ""
        print(f"no {split}: comparison table skipped{hint}")
        return
    rows = compare_models({"teacher": cfg.distill.teacher, "student": cfg.out}, cfg.data.root,
                          split=table_split, backends=backends)
    table = format_table(rows)
    when = "" if state == "finished" else f" (student as {state})"
    print(f"\nteacher vs student on {split}{when} (latency: 256x256, batch 1, this machine)\n{table}")
    (Path(cfg.out) / "distill_table.md").write_text(table + "\n")
    (Path(cfg.out) / "distill_table.json").write_text(json.dumps(rows_to_dicts(rows), indent=2) + "\n")
    print(f"saved {cfg.out}/distill_table.md and .json")
