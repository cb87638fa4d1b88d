"""Fine-tuning vs training from scratch on a small set, at equal steps (`pix2pix train --init-from`).

A source model is trained on one example (``--source-example``, all its training pairs), then two
runs train on ``--pairs`` training pairs of a related example (``--target-example``) for the same
number of steps with the same recipe (the default one): one from scratch, one from the source's
weights (fresh optimisers). Both, and the source model as it is, are scored on the target's
held-out test split with L1, PSNR, SSIM, LPIPS-alex and LPIPS-vgg.

Equal steps means equal compute for the two compared rows (same architecture and recipe); the
source model's own training is reported separately (it is the "pretrained model" a user starts
from). No timing is taken, so it may run on a busy machine:

    OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python benchmarks/finetune.py --work bench-finetune \\
        --source-example relief --target-example maps --pairs 50 --source-steps 3000 --steps 1500

The maps and relief examples share their longitude-band split, so no test tile of the target was
seen by the source model either. A shipped model as the source (the photo examples share their
split by photo, so the built-in sketch model never saw a test photo of edges2photos):

    OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python benchmarks/finetune.py --work bench-ft \
        --source sketch2photo --source-example sketch2photo --target-example edges2photos \
        --base-channels 16 --pairs 50 --steps 1500

``--curve N`` also scores every N-th step's checkpoint of both rows: on 50 pairs both runs reach
their best within a few hundred steps and then drift, and one checkpoint's score moves by up to
±0.06 LPIPS with the batch-norm running statistics of the last ~10 training images (batch 1,
momentum 0.1), so the last step alone says little about which start is better.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import random
import shutil
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from recipes import COLUMNS, cpu_name, score  # noqa: E402

from pix2pix.config import DataConfig, ModelConfig, TrainConfig, apply_overrides  # noqa: E402
from pix2pix.data import Jitter, PairedDataset, scan_pairs  # noqa: E402
from pix2pix.data.examples import make_example  # noqa: E402
from pix2pix.inference.translator import Translator  # noqa: E402
from pix2pix.recipes import DEFAULT_RECIPE, recipe_overrides  # noqa: E402
from pix2pix.training import train  # noqa: E402


def example_data(work: Path, name: str, size: int) -> Path:
    data = work / "data" / f"{name}{size}"
    if not (data / "train").is_dir():
        make_example(name, data, size=size)
    return data


def subset(data: Path, out: Path, n: int, seed: int) -> Path:
    """``out`` with ``n`` training pairs of ``data`` drawn at random, and its test split as is."""
    if out.exists():
        shutil.rmtree(out)
    files = sorted(p for p in (data / "train").iterdir() if p.is_file())
    picked = random.Random(seed).sample(files, min(n, len(files)))
    (out / "train").mkdir(parents=True)
    for f in picked:
        shutil.copy(f, out / "train" / f.name)
    shutil.copytree(data / "test", out / "test")
    return out


def config(data: Path, out: Path, steps: int, args, every: int = 10**9, **kw) -> TrainConfig:
    cfg = TrainConfig(model=ModelConfig(generator=args.generator, base_channels=args.base_channels,
                                        d_base_channels=args.base_channels),
                      data=DataConfig(root=str(data), image_size=args.size), out=str(out),
                      max_steps=steps, epochs=10**6, decay_epochs=0, lr_schedule="constant",
                      seed=args.seed, device="cpu", log_every=100, sample_every=10**9,
                      checkpoint_every=every, keep_checkpoints=10**6, tensorboard="off", **kw)
    # Constant lr: the paper's decay needs a planned length, and both rows get the same one.
    return apply_overrides(cfg, recipe_overrides(args.recipe))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", default="bench-finetune")
    p.add_argument("--source-example", default="relief")
    p.add_argument("--target-example", default="maps")
    p.add_argument("--source", default=None, help="an already trained source model (skips its training)")
    p.add_argument("--pairs", type=int, default=50)
    p.add_argument("--source-steps", type=int, default=3000)
    p.add_argument("--steps", type=int, default=1500, help="training steps of both compared rows")
    p.add_argument("--recipe", default=DEFAULT_RECIPE)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--generator", default="unet_128")
    p.add_argument("--base-channels", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--curve", type=int, default=0, metavar="N",
                   help="also score both rows every N steps (a checkpoint each), to show where each "
                        "run is better than the other, not only at the last step")
    p.add_argument("--init-shrink", type=float, default=1.0,
                   help="fine-tuned row: shrink the source's convolution weights by this factor ...")
    p.add_argument("--init-perturb", type=float, default=0.0,
                   help="... and add this times the run's fresh initial weights (shrink and perturb)")
    p.add_argument("--json", default=None)
    args = p.parse_args()
    torch.set_num_threads(1)
    work = Path(args.work)
    target = subset(example_data(work, args.target_example, args.size), work / "target", args.pairs, args.seed)
    source = args.source
    if source is None:
        src_cfg = config(example_data(work, args.source_example, args.size), work / "source",
                         args.source_steps, args)
        if not (Path(src_cfg.out) / "latest.json").exists():
            train(src_cfg, progress=False)
        source = src_cfg.out
    test_set = PairedDataset(scan_pairs(target, "test"), jitter=Jitter("none", args.size, args.size, False),
                             train=False)
    rows = {f"source model as is ({args.source_example}, 0 steps on {args.target_example})":
            score(Translator.from_pretrained(source, device="cpu"), test_set)}
    curves: dict[str, dict[int, dict[str, float]]] = {}
    for name, kw in (("from scratch", {}), (f"fine-tuned from {args.source_example}",
                                             {"init_from": str(source), "init_shrink": args.init_shrink,
                                              "init_perturb": args.init_perturb})):
        out = work / ("scratch" if not kw else "finetuned")
        if out.exists():
            shutil.rmtree(out)
        run = train(config(target, out, args.steps, args, every=args.curve or 10**9, **kw), progress=False)
        rows[f"{name}, {args.steps} steps on {args.pairs} pairs"] = score(
            Translator.from_pretrained(run.run_dir, device="cpu"), test_set)
        print(name, rows[list(rows)[-1]], flush=True)
        if args.curve:  # every checkpoint's model/ (the weight average, what a user exports)
            curves[name] = {int(c.name.split("_")[-1]): score(Translator.from_pretrained(c, device="cpu"), test_set)
                            for c in sorted((out / "checkpoints").glob("step_*"))}
    lines = [f"Fine-tuning vs scratch: {args.target_example} with {args.pairs} training pairs, recipe "
             f"{args.recipe}, {args.generator} width {args.base_channels} at {args.size}², seed {args.seed}, "
             + (f"source: the model {args.source} as given (trained on {args.source_example})" if args.source
                else f"source trained {args.source_steps} steps on {args.source_example}") + "; test split "
             f"({len(test_set)} pairs); CPU {cpu_name()}.", "",
             "| model | " + " | ".join(COLUMNS) + " |", "|---|" + "---|" * len(COLUMNS)]
    lines += [f"| {k} | " + " | ".join(f"{v[c]:.4f}" for c in COLUMNS) + " |" for k, v in rows.items()]
    keys = list(rows)
    lines.append("")
    lines += [f"fine-tuned vs scratch, {c}: {100 * (rows[keys[2]][c] / rows[keys[1]][c] - 1):+.1f}%"
              for c in ("lpips", "lpips_vgg", "l1")]
    if curves:
        names = list(curves)
        lines += ["", "LPIPS-alex / LPIPS-vgg / L1 at each checkpoint:", "",
                  "| step | " + " | ".join(names) + " | fine-tuned vs scratch (LPIPS-alex) |",
                  "|---|" + "---|" * (len(names) + 1)]
        for step in curves[names[0]]:
            a, b = curves[names[0]][step], curves[names[1]][step]
            lines.append(f"| {step} | " + " | ".join(f"{r['lpips']:.3f} / {r['lpips_vgg']:.3f} / {r['l1']:.3f}"
                                                     for r in (a, b))
                         + f" | {100 * (b['lpips'] / a['lpips'] - 1):+.1f}% |")
    print("\n".join(lines))
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "rows": rows, "curves": curves},
                                              indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
