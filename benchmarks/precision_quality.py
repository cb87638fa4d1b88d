"""Is bf16 autocast quality-neutral? Short step-based runs, fp32 against bf16, same steps, several
seeds, scored on the held-out split: the evidence behind ``--precision auto`` as the default.
``--recipe`` (default: the default of `pix2pix train`) names the recipe both precisions train.

    OMP_NUM_THREADS=1 nice -n 19 python benchmarks/precision_quality.py \
        [--data DIR] [--arch unet_128] [--base 64] [--size 128] [--steps 600] [--seeds 0,1]
        [--recipe modern|paper] [--allow-emulated]

These are quality figures, not timings: they depend only on the step count, so they may be taken
on a busy machine (one thread, lowest priority). Without --data the built-in maps example is
written at --size. Prints per run L1/PSNR/SSIM on the test split (or val when there is no test),
(and LPIPS on AlexNet and VGG where their weights are installed: `pix2pix evaluate
--install-lpips`), then per precision the mean, the spread between seeds, and bf16 - fp32: "within noise" means the
bf16 - fp32 difference is no larger than the seed-to-seed spread of fp32 itself.
--allow-emulated runs bf16 on a CPU without native bf16 (training refuses it there, because it is
many times slower): the numerics are bf16's all the same, so the quality comparison holds.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import torch

from pix2pix.config import DataConfig, ModelConfig, TrainConfig, apply_overrides
from pix2pix.data import Jitter, PairedDataset, scan_pairs
from pix2pix.data.examples import make_example
from pix2pix.inference.translator import Translator
from pix2pix.metrics.lpips import weights_path
from pix2pix.metrics.quality import Evaluator, evaluate
from pix2pix.recipes import DEFAULT_RECIPE, RECIPES, recipe_overrides
from pix2pix.training import train

METRICS = ("l1", "psnr", "ssim")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None)
    ap.add_argument("--arch", default="unet_128")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--precisions", default="fp32,bf16", help="to split the runs over processes")
    ap.add_argument("--base", type=int, default=64, help="generator and D base channels")
    ap.add_argument("--out", default=None, help="work folder (default: a temporary one)")
    ap.add_argument("--recipe", default=DEFAULT_RECIPE, choices=list(RECIPES),
                    help=f"the training recipe of both precisions (default: {DEFAULT_RECIPE})")
    ap.add_argument("--allow-emulated", action="store_true",
                    help="run bf16 even where the CPU only emulates it (slow; same numerics)")
    args = ap.parse_args()
    if args.allow_emulated:
        import pix2pix.training.loop as loop
        from pix2pix.util.precision import resolve_precision

        loop.resolve_precision = lambda p, device: resolve_precision(p, device, flags={"avx512_bf16"})
        print("bf16 allowed although this CPU may only emulate it (quality only; no timings)")
    torch.set_num_threads(1)
    work = Path(args.out or tempfile.mkdtemp(prefix="pix2pix-precq-"))
    data = Path(args.data) if args.data else work / "maps"
    if not args.data and not (data / "train").is_dir():
        make_example("maps", data, size=args.size)
    split = "test" if (data / "test").is_dir() else "val"
    results: dict[tuple[str, int], dict] = {}
    for seed in map(int, args.seeds.split(",")):
        for precision in args.precisions.split(","):
            out = work / f"{precision}_s{seed}"
            latest = out / "latest.json"
            done = json.loads(latest.read_text())["step"] if latest.exists() else 0
            if done < args.steps:  # a run stopped early (Ctrl-C, SIGTERM) continues where it was
                cfg = TrainConfig(model=ModelConfig(generator=args.arch, base_channels=args.base,
                                                    d_base_channels=args.base),
                                  data=DataConfig(root=str(data), image_size=args.size), out=str(out),
                                  batch_size=args.batch, max_steps=args.steps, seed=seed, device="cpu",
                                  tensorboard="off", sample_every=10**9,
                                  checkpoint_every=10**9, log_every=100)
                # The recipe first, then the precision under test (`paper` names fp32 itself).
                cfg = apply_overrides(cfg, recipe_overrides(args.recipe) + [f"precision={precision}"])
                train(cfg, resume=done > 0, progress=False)
            translator = Translator.from_pretrained(str(out), device="cpu")
            ds = PairedDataset(scan_pairs(data, split), jitter=Jitter("resize", args.size, args.size, False),
                               train=False)
            r = evaluate(translator, ds, metrics=METRICS)
            for net in [n for n in ("alex", "vgg") if weights_path(n).is_file()]:
                lp = evaluate(translator, ds, evaluator=Evaluator(("lpips",), lpips_net=net, strict=True))
                r[f"lpips_{net}"] = lp["lpips"]
            results[(precision, seed)] = r
            print(f"{precision} seed {seed}: " + ", ".join(f"{m} {r[m]:.4f}" for m in columns(r)), flush=True)
    if {p for p, _ in results} != {"fp32", "bf16"}:
        return 0
    print(f"\n{args.arch} (base {args.base}, recipe {args.recipe}) at {args.size}px, {args.steps} steps of batch "
          f"{args.batch}, {split} split "
          f"({results[next(iter(results))]['count']} pairs)")
    summary = {}
    for m in columns(*results.values()):
        by = {p: [results[(p, s)][m] for (pp, s) in results if pp == p] for p in ("fp32", "bf16")}
        mean = {p: statistics.mean(v) for p, v in by.items()}
        spread = {p: max(v) - min(v) for p, v in by.items()}
        diff = mean["bf16"] - mean["fp32"]
        verdict = "within noise" if abs(diff) <= max(spread["fp32"], spread["bf16"]) else "OUTSIDE noise"
        summary[m] = dict(fp32=mean["fp32"], bf16=mean["bf16"], diff=diff, seed_spread=spread)
        print(f"  {m:<5} fp32 {mean['fp32']:.4f} (seed spread {spread['fp32']:.4f})  bf16 {mean['bf16']:.4f} "
              f"(seed spread {spread['bf16']:.4f})  bf16-fp32 {diff:+.4f}: {verdict}")
    (work / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"runs and summary.json in {work}")
    return 0


def columns(*runs: dict) -> list[str]:
    """The metrics every run in ``runs`` has: L1, PSNR, SSIM and the LPIPS backbones scored."""
    return [m for m in (*METRICS, "lpips_alex", "lpips_vgg") if all(m in r for r in runs)]


if __name__ == "__main__":
    sys.exit(main())
