"""`pix2pix train`: build and validate one TrainConfig, print and save it, then train."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# CLI flag -> config path. Defaults live in the dataclasses, not here.
FLAGS: dict[str, tuple[str, type, str]] = {
    "data": ("data.root", str, "dataset folder holding train/ (and val/, test/)"),
    "out": ("out", str, "run directory for checkpoints, logs and samples"),
    "arch": ("model.generator", str, "generator: unet_256, unet_128, resnet_9blocks, resnet_6blocks"),
    "discriminator": ("model.discriminator", str, "patch or pixel"),
    "d_layers": ("model.d_layers", int, "PatchGAN layers: 1 (16px), 3 (70px), 5 (286px)"),
    "norm": ("model.norm", str, "batch, instance or none"),
    "base_channels": ("model.base_channels", int, "generator width (64 in the paper)"),
    "in_channels": ("model.in_channels", int, "input image channels"),
    "out_channels": ("model.out_channels", int, "output image channels"),
    "dropout": ("model.dropout", float, "generator dropout rate (0 disables)"),
    "direction": ("data.direction", str, "AtoB or BtoA"),
    "image_size": ("data.image_size", int, "training crop size"),
    "load_size": ("data.load_size", int, "resize before cropping (default size*286/256)"),
    "preprocess": ("data.preprocess", str, "resize_crop, crop, resize or none"),
    "workers": ("data.workers", int, "data loader worker processes"),
    "batch_size": ("batch_size", int, "images per step"),
    "epochs": ("epochs", int, "epochs at constant learning rate"),
    "decay_epochs": ("decay_epochs", int, "epochs of linear decay to zero after that"),
    "max_steps": ("max_steps", int, "stop after this many steps"),
    "lr": ("lr", float, "Adam learning rate"),
    "gan_mode": ("gan_mode", str, "vanilla, lsgan or hinge"),
    "l1_weight": ("l1_weight", float, "weight of the L1 loss (lambda, 100 in the paper)"),
    "gan_weight": ("gan_weight", float, "weight of the adversarial loss (0: L1 only)"),
    "seed": ("seed", int, "random seed"),
    "device": ("device", str, "auto, cpu, cuda or mps"),
    "log_every": ("log_every", int, "steps between metric lines"),
    "sample_every": ("sample_every", int, "steps between sample grids"),
    "checkpoint_every": ("checkpoint_every", int, "steps between checkpoints"),
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a generator on a paired dataset",
                       description="Train a pix2pix generator. Precedence: defaults < --config file "
                                   "< options < --set overrides. With --resume the run's saved "
                                   "config is the starting point.")
    for flag, (path, tp, help_) in FLAGS.items():
        p.add_argument("--" + flag.replace("_", "-"), dest=flag, type=tp, default=None,
                       help=f"{help_} [{path}]")
    p.add_argument("--no-flip", dest="no_flip", action="store_true", help="no horizontal flips")
    p.add_argument("--config", help="YAML or JSON config file")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config field, e.g. --set model.norm=instance (repeatable)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")
    p.add_argument("--dry-run", action="store_true", help="check config and data, print, do not train")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def build_config(args: argparse.Namespace):
    from ..config import TrainConfig, apply_overrides, from_dict, load_config_file

    cfg = TrainConfig()
    if args.resume:
        if not args.out:
            raise ValueError("--resume needs --out RUN_DIR (the run to continue)")
        saved = Path(args.out) / "config.json"
        if not saved.is_file():
            raise FileNotFoundError(f"{saved} not found: {args.out} is not a training run to resume")
        cfg = from_dict(TrainConfig, json.loads(saved.read_text()))
    if args.config:
        cfg = apply_overrides(cfg, _flatten(load_config_file(args.config)))
    overrides = [f"{path}={getattr(args, flag)}" for flag, (path, _, _) in FLAGS.items()
                 if getattr(args, flag) is not None]
    if args.no_flip:
        overrides.append("data.flip=false")
    cfg = apply_overrides(cfg, overrides + args.overrides)
    cfg.validate()
    return cfg


def _flatten(data: dict, prefix: str = "") -> list[str]:
    items: list[str] = []
    for k, v in data.items():
        if isinstance(v, dict):
            items += _flatten(v, f"{prefix}{k}.")
        else:
            items.append(f"{prefix}{k}={'none' if v is None else v}")
    return items


def run(args: argparse.Namespace) -> int:
    from ..config import to_dict

    cfg = build_config(args)
    print(json.dumps(to_dict(cfg), indent=2))
    if args.dry_run:
        from ..training.loop import _check_size, build_datasets

        _check_size(cfg)
        train_set, samples = build_datasets(cfg)
        print(f"dry run: {len(train_set)} training pairs, {len(samples)} sample pairs; config is valid")
        return 0
    from ..training import TrainingInterrupted, train

    try:
        run_dir = train(cfg, resume=args.resume, progress=not args.no_progress)
    except TrainingInterrupted as e:
        print(f"interrupted: checkpoint saved at {e.checkpoint}; continue with "
              f"`pix2pix train --resume --out {cfg.out}`", file=sys.stderr)
        return 130
    print(f"done: model in {run_dir} (translate with `pix2pix translate --model {run_dir} IMAGES --out DIR`)")
    return 0
