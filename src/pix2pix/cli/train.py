"""`pix2pix train`: build and validate one TrainConfig, print and save it, then train."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

from .. import recipes


def duration(text: str) -> float:
    """'90' (seconds), '45m', '2h30m', '1d' -> seconds (the config's parser, as an argparse type)."""
    from ..config import parse_duration

    try:
        return parse_duration(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def metric_or_none(text: str) -> str:
    """``--best-metric none`` keeps no best/ checkpoint (the config's empty string)."""
    return "" if text.strip().lower() == "none" else text

# CLI flag -> config path. Defaults live in the dataclasses, not here.
FLAGS: dict[str, tuple[str, type, str]] = {
    "data": ("data.root", str, "dataset folder holding train/ (and val/, test/)"),
    "out": ("out", str, "run directory for checkpoints, logs and samples"),
    "arch": ("model.generator", str, "generator: {generators}"),
    "discriminator": ("model.discriminator", str, "{discriminators}"),
    "d_layers": ("model.d_layers", int, "PatchGAN layers: 1 (16px), 3 (70px), 5 (286px)"),
    "d_scales": ("model.d_scales", int, "scales of the multiscale discriminator (2 or 3 in pix2pixHD)"),
    "norm": ("model.norm", str, "{norms}"),
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
    "lr_schedule": ("lr_schedule", str, "linear (constant for --epochs, then to 0 over --decay-epochs; "
                                        "the paper's), constant, or fit (that shape fitted to where the "
                                        "run ends: --max-time or --max-steps; for one time-boxed run)"),
    "gan_mode": ("gan_mode", str, "vanilla, lsgan or hinge"),
    "l1_weight": ("l1_weight", float, "weight of the L1 loss (lambda, 100 in the paper)"),
    "gan_weight": ("gan_weight", float, "weight of the adversarial loss (0: L1 only)"),
    "seed": ("seed", int, "random seed"),
    "device": ("device", str, "auto, cpu, cuda or mps"),
    "log_every": ("log_every", int, "steps between metric lines"),
    "sample_every": ("sample_every", int, "steps between sample grids"),
    "checkpoint_every": ("checkpoint_every", int, "steps between checkpoints"),
    "precision": ("precision", str, "auto (bf16 where native: GPU, AVX512-BF16/AMX CPU; else fp32), fp32, bf16 or fp16 (loss scaling)"),
    "compile": ("compile", str, "torch.compile: off, default, reduce-overhead, max-autotune"),
    "prefetch": ("data.prefetch", int, "batches each loader worker prepares ahead"),
    "data_cache": ("data.cache", str, "decode-once uint8 cache of the training split: auto (on a GPU), on, off"),
    "device_jitter": ("data.device_jitter", str, "resize/crop/flip on the training device: auto (on a GPU), on, off"),
    "val_every": ("val_every", int, "steps between validations on the val split (0: never)"),
    "val_metrics": ("val_metrics", str, "comma list of l1, psnr, ssim, lpips, fid"),
    "best_metric": ("best_metric", metric_or_none, "metric that picks best/ (none: keep no best/)"),
    "ema": ("ema", float, "EMA decay of the generator weights, e.g. 0.999 (0: off)"),
    "upsample": ("model.upsample", str, "decoder upsampling: transpose (paper) or resize (no checkerboard)"),
    "perceptual_weight": ("perceptual_weight", float, "weight of the perceptual loss (0: off, as in the paper)"),
    "d_lr_mult": ("d_lr_mult", float, "D learning rate = lr * this (two time-scale update rule)"),
    "init_from": ("init_from", str, "fine-tune: start from this model's weights (pretrained, run or "
                                   "checkpoint dir); its architecture is used, optimisers start fresh"),
    "feature_matching": ("feature_matching_weight", float,
                         "weight of the feature-matching loss on D's activations (pix2pixHD: 10; 0: off)"),
    "d_augment": ("d_augment", str, "paired differentiable augmentation of what D sees: a comma list "
                                    "of translation, cutout, color (needs kornia; '' off)"),
    "r1": ("r1_weight", float, "R1 gradient penalty weight on D's real pairs (0: off)"),
    "r1_every": ("r1_every", int, "lazy R1: the penalty on every Nth D step at N times the weight "
                                  "(1: every step)"),
    "max_time": ("max_time", duration, "stop cleanly after this long, e.g. 3600, 90m, 2h30m"),
    "tensorboard": ("tensorboard", str, "auto (when installed), on or off"),
    "wandb": ("wandb_project", str, "Weights & Biases project to log to (off when empty)"),
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a generator on a paired dataset",
                       description="Train a pix2pix generator. Precedence: defaults < --recipe "
                                   f"(default: {recipes.DEFAULT_RECIPE}) < --config file < options < --set "
                                   "overrides. With --resume the run's saved config is the "
                                   "starting point.")
    add_options(p)
    p.set_defaults(run=run)


def add_options(p: argparse.ArgumentParser) -> None:
    """The training options, shared by `pix2pix train` and `pix2pix distill`."""
    from ..models import DISCRIMINATORS, GENERATORS, describe
    from ..models.layers import NORMS

    names = {"generators": ", ".join(GENERATORS), "discriminators": describe(DISCRIMINATORS),
             "norms": ", ".join(NORMS)}
    for flag, (path, tp, help_) in FLAGS.items():
        p.add_argument("--" + flag.replace("_", "-"), dest=flag, type=tp, default=None,
                       help=f"{help_.format(**names)} [{path}]")
    p.add_argument("--no-flip", dest="no_flip", action="store_true", help="no horizontal flips")
    p.add_argument("--channels-last", action="store_true", help="NHWC memory layout [channels_last]")
    p.add_argument("--sync-batchnorm", action="store_true",
                   help="batch-norm statistics over all processes [sync_batchnorm]")
    p.add_argument("--spectral-norm", action="store_true",
                   help="spectral norm on every discriminator convolution [model.d_spectral_norm]")
    p.add_argument("--recipe", choices=list(recipes.RECIPES),
                   help=f"a named recipe applied first (default {recipes.DEFAULT_RECIPE}): "
                        f"{recipes.describe(recipes.RECIPES)}")
    p.add_argument("--objective", choices=list(recipes.OBJECTIVES),
                   help=f"the paper's loss ablations: {recipes.describe(recipes.OBJECTIVES)}")
    p.add_argument("--num-processes", type=int, default=1, metavar="N",
                   help="train in N processes on this machine (one per GPU; gloo on CPU)")
    p.add_argument("--config", help="YAML or JSON config file")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config field, e.g. --set model.norm=instance (repeatable)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")
    p.add_argument("--dry-run", action="store_true", help="check config and data, print, do not train")
    p.add_argument("--memory", action="store_true",
                   help="a memory plan: the dry run, then 2 real training steps of this configuration "
                        "in a fresh process, and their peak memory (implies --dry-run)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_config(args: argparse.Namespace, base=None):
    """The run's TrainConfig: ``base`` (default: the defaults) < --recipe < --config < options <
    --set; with --resume, the run's saved config instead of ``base``. Without ``base`` and
    --resume, a missing --recipe means ``DEFAULT_RECIPE`` (``pix2pix train``'s default)."""
    from ..config import TrainConfig, apply_overrides, load_config_file, merge, saved_train_config

    cfg = base if base is not None else TrainConfig()
    if args.resume:
        if not args.out:
            raise ValueError("--resume needs --out RUN_DIR (the run to continue)")
        saved = Path(args.out) / "config.json"
        if not saved.is_file():
            raise FileNotFoundError(f"{saved} not found: {args.out} is not a training run to resume")
        cfg = saved_train_config(json.loads(saved.read_text()))
    # A recipe comes first, so a config file, the run's own options and --set refine it. A new
    # `pix2pix train` run without --recipe starts from the default one; a resumed run or a
    # caller's ``base`` (distill) keeps its own settings.
    recipe = args.recipe or (recipes.DEFAULT_RECIPE if base is None and not args.resume else None)
    if recipe:
        cfg = apply_overrides(cfg, recipes.recipe_overrides(recipe))
    file_values = load_config_file(args.config) if args.config else {}
    source = _init_source(args, file_values)
    if source and not args.resume:
        # Fine-tuning: the generator's architecture comes from the model started from (over the
        # recipe's), so only options that ask for another one can make it mismatch. The same
        # whether the source came as --init-from, --set init_from= or the config file's init_from.
        from ..training.init import adopt_architecture

        cfg = dataclasses.replace(cfg, model=adopt_architecture(cfg.model, source))
    if args.config:
        try:
            cfg = merge(cfg, file_values)
        except ValueError as e:
            # A wrong key or value is in that file, not on the command line: say which file.
            text = str(e)
            raise ValueError(text if text.startswith("config file") else
                             f"config file {args.config}: {text}") from None
    if args.objective:
        cfg = apply_overrides(cfg, recipes.objective_overrides(args.objective))
    options: dict = {}
    for flag, (path, _, _) in FLAGS.items():
        if getattr(args, flag) is not None:
            *sections, key = path.split(".")
            node = options
            for section in sections:
                node = node.setdefault(section, {})
            node[key] = getattr(args, flag)
    if args.no_flip:
        options.setdefault("data", {})["flip"] = False
    if args.channels_last:
        options["channels_last"] = True
    if args.sync_batchnorm:
        options["sync_batchnorm"] = True
    if args.spectral_norm:
        options.setdefault("model", {})["d_spectral_norm"] = True
    cfg = apply_overrides(merge(cfg, options), args.overrides)
    cfg.validate()
    return cfg


def _init_source(args: argparse.Namespace, file_values: dict) -> str:
    """The model a new run fine-tunes from, wherever it was given (the last of the config file,
    --init-from and --set init_from=... wins, as for every field); "" for a fresh start."""
    source = str(file_values.get("init_from") or "")
    source = args.init_from or source
    for item in args.overrides:
        key, sep, value = item.partition("=")
        if sep and key.strip() == "init_from":
            source = value.strip()
    return source


def _launch(cfg, args: argparse.Namespace) -> int:
    """Start ``--num-processes`` copies of this command, each given the resolved config."""
    import tempfile

    from ..config import save_config
    from ..training.distributed import launch

    if args.num_processes < 1:
        raise ValueError(f"--num-processes {args.num_processes} must be at least 1")
    fd, tmp = tempfile.mkstemp(prefix="pix2pix-config-", suffix=".json")
    os.close(fd)
    try:
        save_config(cfg, tmp)
        argv = ["train", "--config", tmp, "--out", cfg.out]
        argv += ["--resume"] * args.resume + ["--no-progress"] * args.no_progress
        return launch(argv, args.num_processes)
    finally:
        os.unlink(tmp)


def _launched_result(run_dir: str):
    """The TrainResult of a run that child processes trained: it reaches the launcher only
    through the run directory's status.json (None when there is none)."""
    from ..training.result import TrainResult

    path = Path(run_dir) / "status.json"
    if not path.is_file():
        return None
    status = json.loads(path.read_text())
    state = status.get("state", "")
    stopped = {"finished": "finished", "interrupted": "interrupted", "diverged": "diverged"}.get(
        state, "time_limit" if state.startswith("stopped") else "finished")
    return TrainResult(Path(run_dir), int(status.get("step", 0)), int(status.get("total_steps", 0)),
                       stopped)


def run(args: argparse.Namespace, cfg=None, command: str = "train") -> int:
    """Train ``cfg`` (default: built from ``args``); ``command`` names the CLI in messages."""
    return run_training(args, cfg, command)[0]


def run_training(args: argparse.Namespace, cfg=None, command: str = "train"):
    """(exit status, the TrainResult or None when nothing trained) of `pix2pix COMMAND`."""
    from ..config import config_dict
    from ..training.distributed import world_from_env

    cfg = cfg if cfg is not None else build_config(args)
    # Under torchrun or --num-processes every process runs this; only rank 0 prints.
    main = os.environ.get("RANK", "0") == "0"
    child = world_from_env() > 1
    if main and not os.environ.get("PIX2PIX_LAUNCHED"):  # the launcher printed it already
        print(json.dumps(config_dict(cfg), indent=2))
    args.dry_run = args.dry_run or getattr(args, "memory", False)
    if args.num_processes > 1 and not child and not args.dry_run:
        rc = _launch(cfg, args)
        return rc, _launched_result(cfg.out) if rc == 0 else None
    if args.dry_run:
        from ..models import check_image_size
        from ..training.datasets import build_datasets

        from ..training.validation import check_best_metric

        check_image_size(cfg.model, cfg.data.image_size, cfg.data.preprocess)
        check_best_metric(cfg.val_every, cfg.best_metric)
        train_set, samples = build_datasets(cfg)
        print(f"dry run: {len(train_set)} training pairs, {len(samples)} sample pairs; config is valid")
        if getattr(args, "memory", False):
            from ..training.memory import measure_step_memory

            print(measure_step_memory(cfg).describe())
        return 0, None
    from ..training import TrainingDiverged, TrainingInterrupted, train

    try:
        result = train(cfg, resume=args.resume, progress=not args.no_progress)
    except TrainingInterrupted as e:
        if main:
            print(f"interrupted: checkpoint saved at {e.checkpoint}; continue with "
                  f"`pix2pix {command} --resume --out {cfg.out}`", file=sys.stderr)
        return 130, e.result
    except TrainingDiverged as e:
        if main:
            print(f"pix2pix {command}: stopped: {e}", file=sys.stderr)
        return 3, e.result
    if not main:
        return 0, result
    if result.stopped == "time_limit":
        print(f"stopped (max_time) at step {result.step} of {result.total_steps}; continue with "
              f"`pix2pix {command} --resume --out {cfg.out}`")
        return 0, result
    print(f"done: model in {result.run_dir} (translate with `pix2pix translate --model "
          f"{result.run_dir} IMAGES --out DIR`)")
    if result.best is not None:
        print(f"best validation checkpoint: {result.best}; report: {result.run_dir}/report.html")
    return 0, result
