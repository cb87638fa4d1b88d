"""Equal-compute recipe ablation: each candidate recipe trains for the same time budget on several
built-in examples, and is scored on the held-out test split against the paper recipe and trivial
baselines (input copied through; every pixel the mean training target colour).

Fair budgets on a shared machine: a raw wall-clock budget would hand whichever candidate happened
to run while the neighbours were idle more steps. So the script first measures every candidate's
step time *interleaved* (round-robin, median of several rounds, on the same real batches) as
process CPU time on ``--threads`` threads (1 by default: CPU time then counts only work, not
OpenMP spin-waits, and is nearly load-independent), and gives each a step budget =
budget_seconds / its step time; then trains. Load during training slows every candidate's
wall-clock without changing how many steps it gets.

    .venv/bin/python benchmarks/recipes.py --budget 150 --examples maps,relief,edges2photos

Seeds in separate processes: ``--step-times SEED0.json`` gives the later seeds the step times the
first one measured, so every seed of a candidate trains the same number of steps.

Needs the LPIPS weights (`pix2pix evaluate --install-lpips`) for the LPIPS column and for the
perceptual-loss candidates. Prints one table (markdown) and writes --json.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from pix2pix.config import DataConfig, ModelConfig, TrainConfig, apply_overrides
from pix2pix.data import Jitter, PairedDataset, scan_pairs
from pix2pix.data.examples import make_example
from pix2pix.inference.translator import Translator
from pix2pix.metrics.quality import Evaluator, evaluate
from pix2pix.models import build_discriminator, build_generator
from pix2pix.models.layers import has_batch_norm
from pix2pix.recipes import RECIPES
from pix2pix.training import StepConfig, train, train_step
from pix2pix.training.ema import EMA
from pix2pix.training.loop import AMP_DTYPES
from pix2pix.util.precision import resolve_precision

METRICS = ("l1", "psnr", "ssim", "lpips")
# Scored columns: LPIPS on AlexNet (the backbone the perceptual loss trains on) and on VGG16 (a
# second backbone, so a model trained on AlexNet features is not graded only by AlexNet).
COLUMNS = ("l1", "psnr", "ssim", "lpips", "lpips_vgg")
# Candidates: recipe name -> overrides on top of that recipe ("name+key=value" style is allowed
# with --candidate NAME=OVERRIDES,...).
DEFAULT_CANDIDATES = "paper,modern,paper+perceptual"
EXTRA = {"paper+perceptual": ("paper", ["perceptual_weight=10"]),
         "paper+resize": ("paper", ["model.upsample=resize"]),
         # The next-leap candidates, each alone on top of modern.
         "modern+augment": ("modern", ["d_augment=translation,cutout,color"]),
         # R1 joined `modern` on 2026-12-07; the recipe before, for the tables of earlier screens.
         "modern+r1": ("modern", ["r1_weight=0.1"]),
         "modern-r1": ("modern", ["r1_weight=0"]),
         # R1 on every D step (as adopted) or lazily on every 16th at 16x the weight (StyleGAN2).
         "modern+r1eager": ("modern", ["r1_weight=0.1", "r1_every=1"]),
         "modern+r1lazy": ("modern", ["r1_weight=0.1", "r1_every=16"]),
         # A 10x stronger R1 (the health check's advice where D wins).
         "modern+r1g1": ("modern", ["r1_weight=1"]),
         # A slower discriminator (two time-scale update rule), where D wins outright (gray2color).
         "modern+dlr": ("modern", ["d_lr_mult=0.5"]),
         "modern+msfm": ("modern", ["model.discriminator=multiscale", "feature_matching_weight=10"]),
         # The U-Net with the pretrained AlexNet encoder (at 128 px, the examples' size here).
         "modern+alex": ("modern", ["model.generator=unet_alex_128"]),
         # A 1x1 convolution from the input to the output's pre-activation (U-Nets).
         "modern+inskip": ("modern", ["model.input_skip=true"]),
         # The discriminator on frozen ImageNet AlexNet features (models/projected.py).
         "modern+projected": ("modern", ["model.discriminator=projected"]),
         "modern+projected+fm": ("modern", ["model.discriminator=projected", "feature_matching_weight=10"]),
         # The perceptual loss on VGG16 features instead of (or beside) AlexNet's: "vgg3" stops at
         # relu3_3, the shallow part small enough to ship (training/perceptual.py).
         "modern+vgg": ("modern", ["perceptual_net=vgg"]),
         "modern+vgg3": ("modern", ["perceptual_net=vgg3"]),
         "modern+alex+vgg3": ("modern", ["perceptual_net=alex+vgg3"]),
         "modern+alex+vgg3@64": ("modern", ["perceptual_net=alex+vgg3@64"]),
         # Levers not screened before at the default width: a 3x stronger perceptual loss, a
         # 2.5x learning rate, and batch 4 (more pairs per CPU-second; lr scaled by sqrt(4)).
         "modern+pw30": ("modern", ["perceptual_weight=30"]),
         "modern+lr5e-4": ("modern", ["lr=5e-4"]),
         "modern+b4": ("modern", ["batch_size=4", "lr=4e-4"])}


def candidate_overrides(name: str) -> list[str]:
    if name in RECIPES:
        return list(RECIPES[name].overrides)
    if name in EXTRA:
        base, extra = EXTRA[name]
        return list(RECIPES[base].overrides) + extra
    raise SystemExit(f"unknown candidate {name!r}; choose from {', '.join([*RECIPES, *EXTRA])}")


def score(translator_or_none, test_set: PairedDataset, predict=None) -> dict[str, float]:
    """L1, PSNR, SSIM, LPIPS-alex and LPIPS-vgg of a model (or of ``predict(input, target)``)."""
    ev_alex, ev_vgg = Evaluator(METRICS, strict=True), Evaluator(("lpips",), lpips_net="vgg", strict=True)
    for i in range(len(test_set)):
        item = test_set[i]
        if predict is None:
            fake = translator_or_none.translate_tensor(item["input"][None])
        else:
            fake = predict(item["input"], item["target"])
            if fake is None:
                return {}
            fake = fake[None]
        ev_alex.add(fake, item["target"][None])
        ev_vgg.add(fake, item["target"][None])
    out = ev_alex.result()
    out["lpips_vgg"] = ev_vgg.result()["lpips"]
    return {k: out[k] for k in COLUMNS}


def base_config(root: Path, out: Path, size: int, generator: str, width: int = 64) -> TrainConfig:
    # Cadences off the critical path: no samples/validation, one checkpoint at the end.
    return TrainConfig(model=ModelConfig(generator=generator, base_channels=width, d_base_channels=width),
                       data=DataConfig(root=str(root), image_size=size),
                       out=str(out), epochs=1, decay_epochs=1, seed=0, device="cpu",
                       log_every=50, sample_every=10**9, checkpoint_every=10**9, tensorboard="off")


def step_timer(cfg: TrainConfig, batches: list[tuple[torch.Tensor, torch.Tensor]]):
    """A callable running ``len(batches)`` training steps of ``cfg``'s recipe as the loop runs
    them (its precision as resolved on this CPU, e.g. bf16 for `auto` where native, and its weight
    EMA); returns s/step."""
    from pix2pix.training.perceptual import build_perceptual

    torch.manual_seed(0)
    g, d = build_generator(cfg.model), build_discriminator(cfg.model)
    og = torch.optim.Adam(g.parameters(), cfg.lr, betas=(cfg.beta1, cfg.beta2), fused=True)
    od = torch.optim.Adam(d.parameters(), cfg.lr * cfg.d_lr_mult, betas=(cfg.beta1, cfg.beta2), fused=True)
    perceptual = build_perceptual(cfg.perceptual_net) if cfg.perceptual_weight > 0 else None
    amp = AMP_DTYPES[resolve_precision(cfg.precision, torch.device("cpu"))]
    # Every loss that training runs counts in the step time (before 2026-12-07 (night) R1 did not,
    # so R1 candidates trained more steps than their budget).
    step_cfg = StepConfig(cfg.gan_mode, cfg.gan_weight, cfg.l1_weight, cfg.model.conditional, amp_dtype=amp,
                          fuse_d=not has_batch_norm(d), perceptual_weight=cfg.perceptual_weight,
                          feature_matching_weight=cfg.feature_matching_weight, r1_weight=cfg.r1_weight,
                          r1_every=cfg.r1_every)
    ema = EMA(g, cfg.ema) if cfg.ema > 0 else None
    augment = None
    if cfg.d_augment:
        from pix2pix.training.augment import PairAugment

        augment = PairAugment(cfg.d_augment).train()
    g.train(), d.train()

    def run() -> float:
        t = time.process_time()
        for i, (a, b) in enumerate(batches, 1):
            train_step(g, d, og, od, a, b, step_cfg, perceptual=perceptual, augment=augment, step=i - 1)
            if ema is not None:
                ema.update(g, i)
        return (time.process_time() - t) / len(batches)

    return run


def measure_step_times(cfgs: dict[str, TrainConfig], train_set: PairedDataset, rounds: int,
                       steps: int) -> dict[str, float]:
    """Median seconds per step of every candidate, measured round-robin (same load for all)."""
    times: dict[str, list[float]] = {k: [] for k in cfgs}
    timers = {}
    for name, cfg in cfgs.items():
        # A lazy R1 penalty comes once per r1_every steps: a round times whole windows of them.
        window = cfg.r1_every if cfg.r1_weight > 0 else 1
        n_steps = -(-steps // window) * window
        items = [train_set[(i % len(train_set), 0)] for i in range(n_steps * cfg.batch_size)]
        batches = [(torch.stack([x["input"] for x in items[j:j + cfg.batch_size]]),
                    torch.stack([x["target"] for x in items[j:j + cfg.batch_size]]))
                   for j in range(0, len(items), cfg.batch_size)]
        timers[name] = step_timer(cfg, batches)
        timers[name]()  # warm-up: first-call kernel selection
    for _ in range(rounds):
        for name in cfgs:
            times[name].append(timers[name]())
    return {k: statistics.median(v) for k, v in times.items()}


def given_step_times(path: str, example: str, candidates: list[str]) -> dict[str, float]:
    """Each candidate's measured CPU-s per step for ``example`` in an earlier run's --json."""
    measured = json.loads(Path(path).read_text()).get("examples", {}).get(example, {}).get("candidates", {})
    missing = [name for name in candidates if "step_s" not in measured.get(name, {})]
    if missing:
        raise SystemExit(f"--step-times {path}: no measured step time for {example} / {', '.join(missing)}; "
                         f"it has {', '.join(measured) or 'none'} for {example}: run that seed first, or "
                         f"leave out --step-times to measure them here")
    return {name: float(measured[name]["step_s"]) for name in candidates}


def baseline_scores(train_set: PairedDataset, test_set: PairedDataset) -> dict[str, dict]:
    mean = torch.stack([train_set[i]["target"].mean(dim=(1, 2)) for i in range(len(train_set))]).mean(0)
    out = {}
    for name, predict in (("identity (copy input)", lambda x, t: x if x.shape == t.shape else None),
                          ("mean colour", lambda x, t: mean[:, None, None].expand_as(t))):
        scores = score(None, test_set, predict)
        if scores:  # gray input, colour target: no identity baseline
            out[name] = scores
    return out


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()} ({os.cpu_count()} cores)"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--examples", default="maps,relief,edges2photos")
    p.add_argument("--candidates", default=DEFAULT_CANDIDATES)
    p.add_argument("--budget", type=float, default=150.0, help="seconds of training per candidate per example")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--generator", default="unet_128")
    p.add_argument("--base-channels", type=int, default=32,
                   help="G and D width for every candidate (64 in the paper; 32 gets 4x the steps)")
    p.add_argument("--seed", type=int, default=0, help="training seed of every run (one process per "
                   "seed, e.g. two processes side by side; merge their --json with --table)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds")
    p.add_argument("--timing-steps", type=int, default=4, help="steps per timing round")
    p.add_argument("--work", default="bench-recipes", help="folder for datasets and runs")
    p.add_argument("--json", default=None, help="write all figures here")
    p.add_argument("--step-times", default=None, metavar="RUN.json",
                   help="take each candidate's CPU-s per step from an earlier run's --json instead of "
                        "measuring them: every seed then gets the same step budgets (measured per "
                        "process, they follow the load at that moment)")
    p.add_argument("--reference", default="paper",
                   help="the row the Δ columns compare against, e.g. \"paper --batch-stats\" (the paper's test mode)")
    p.add_argument("--table", default=None, metavar="A.json,B.json",
                   help="only print the combined table of earlier runs (e.g. one per example, run in parallel)")
    args = p.parse_args()
    if args.table:
        parts = [json.loads(Path(f).read_text()) for f in args.table.split(",")]
        examples: dict = {}
        for r in parts:  # the same example from several seeds: candidates keyed "name@seed"
            for k, v in r["examples"].items():
                ex = examples.setdefault(k, dict(v, candidates={}))
                ex["candidates"].update({f"{c}@{r.get('seed', 0)}": x for c, x in v["candidates"].items()})
        merged = dict(parts[0], examples=examples,
                      total_s=max(r.get("total_s", 0) for r in parts),
                      load_start=[max(r["load_start"][0] for r in parts)])
        print(table(merged, args.reference))
        return 0

    torch.set_num_threads(args.threads)
    work = Path(args.work)
    candidates = args.candidates.split(",")
    results: dict = {"budget_s": args.budget, "seed": args.seed, "size": args.size, "generator": args.generator,
                     "base_channels": args.base_channels,
                     "cpu": cpu_name(), "threads": torch.get_num_threads(),
                     "load_start": os.getloadavg(), "examples": {}}
    t0 = time.time()
    for example in args.examples.split(","):
        data = work / "data" / f"{example}{args.size}"
        if not (data / "train").is_dir():
            make_example(example, data, size=args.size)
        jitter = Jitter("resize_crop", args.size, int(round(args.size * 286 / 256)), True)
        train_set = PairedDataset(scan_pairs(data, "train"), jitter=jitter, train=True)
        plain = Jitter("none", args.size, args.size, False)
        test_set = PairedDataset(scan_pairs(data, "test"), jitter=plain, train=False)
        cfgs = {}
        for name in candidates:
            cfg = apply_overrides(base_config(data, work / "runs" / f"seed{args.seed}" / example / name,
                                              args.size, args.generator, args.base_channels),
                                  candidate_overrides(name) + [f"seed={args.seed}"])
            cfgs[name] = cfg
        step_s = (given_step_times(args.step_times, example, candidates) if args.step_times
                  else measure_step_times(cfgs, train_set, args.rounds, args.timing_steps))
        ex: dict = {"train_pairs": len(train_set), "test_pairs": len(test_set),
                    "baselines": baseline_scores(PairedDataset(train_set.pairs, jitter=plain, train=False),
                                                 test_set),
                    "candidates": {}}
        for name, cfg in cfgs.items():
            steps = max(1, int(args.budget / step_s[name]))
            per_epoch = len(train_set) // cfg.batch_size
            # The paper's schedule shortened to exactly the budget's steps: constant lr, then linear
            # decay to 0 over the second half (`fit` compresses a step schedule that spans at least
            # the budget to end at max_steps). Whole epochs, as before 2026-12-05, cut runs short
            # of their budget by up to a third, by different amounts per candidate.
            span = max(1, -(-steps // per_epoch))
            cfg = dataclasses.replace(cfg, max_steps=steps, epochs=span, decay_epochs=span,
                                      lr_schedule="fit")
            out = Path(cfg.out)
            if out.exists():  # a fresh run each time
                import shutil

                shutil.rmtree(out)
            t = time.time()
            run = train(cfg, progress=False)
            run_dir, trained = run.run_dir, run.step
            wall = time.time() - t
            # Every row with the running statistics (as the tables since 2026-12-01 are), whatever
            # the model's own test mode; the paper's test mode is the row below.
            translator = Translator.from_pretrained(run_dir, device="cpu", batch_stats=False)
            scores = score(translator, test_set)
            if has_batch_norm(translator.generator):
                # Also in the paper's test mode (each image's own statistics), the mode the reference
                # implementation tests in: `--table --reference "paper --batch-stats"` compares with it.
                scores["batch_stats"] = score(Translator.from_pretrained(run_dir, device="cpu", batch_stats=True),
                                              test_set)
            ex["candidates"][name] = {"step_s": step_s[name], "steps": steps, "steps_trained": trained,
                                      "train_wall_s": wall,
                                      "overrides": candidate_overrides(name), "seed": args.seed,
                                      **scores}
            print(f"[{time.time() - t0:6.0f}s] {example} {name} seed {args.seed}: {steps} steps "
                  f"({step_s[name]:.3f} CPU-s/step {'given' if args.step_times else 'measured'}, {wall:.0f} s wall) "
                  + " ".join(f"{m}={scores.get(m, float('nan')):.4f}" for m in COLUMNS), flush=True)
            if args.json:  # every finished run is on disk, whatever stops the script later
                results["examples"][example] = ex
                Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
        results["examples"][example] = ex
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    results["load_end"] = os.getloadavg()
    results["total_s"] = time.time() - t0
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


# The row name suffix of a run scored with each test image's own batch-norm statistics.
BATCH_STATS = "--batch-stats"


def _fmt(values: list[float], digits: int) -> str:
    """Mean, and ± the spread (half the range) when there are several seeds."""
    mean = sum(values) / len(values)
    if len(values) == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {(max(values) - min(values)) / 2:.{digits}f}"


def table(results: dict, reference: str = "paper") -> str:
    """One markdown table: baselines, then each candidate's mean ± spread over seeds, and its
    change against ``reference`` of the same seed (mean over seeds; [worst seed] in brackets)."""
    lines = [f"Equal-compute ablation: {results['budget_s']:.0f} CPU-s of training per candidate per "
             f"example (step budget = budget / interleaved median CPU time per step), "
             f"{results['generator']} width {results['base_channels']} at "
             f"{results['size']}², batch per recipe, {results['threads']} thread(s), CPU {results['cpu']}, "
             f"load avg {results['load_start'][0]:.1f} at start, total {results.get('total_s', 0) / 60:.0f} min.",
             "", "| example | recipe | seeds | steps | L1 ↓ | PSNR ↑ | SSIM ↑ | LPIPS-alex ↓ | LPIPS-vgg ↓ "
             f"| ΔL1 vs {reference} | ΔLPIPS-alex | ΔLPIPS-vgg |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    digits = {"l1": 4, "psnr": 2, "ssim": 3, "lpips": 4, "lpips_vgg": 4}
    for example, ex in results["examples"].items():
        for name, base in ex["baselines"].items():
            lines.append(f"| {example} | *{name}* | – | – | " + " | ".join(
                f"{base[m]:.{digits[m]}f}" if m in base else "–" for m in COLUMNS) + " | | | |")
        runs: dict[str, dict[int, dict]] = {}
        for key, c in ex["candidates"].items():
            runs.setdefault(key.split("@")[0], {})[int(c.get("seed", 0))] = c
        for key, c in ex["candidates"].items():  # batch-norm runs scored in the paper's test mode too
            if "batch_stats" in c:
                runs.setdefault(f"{key.split('@')[0]} {BATCH_STATS}", {})[int(c.get("seed", 0))] = {
                    **{k: v for k, v in c.items() if k in ("steps", "steps_trained")}, **c["batch_stats"]}
        paper = runs.get(reference, {})
        for name, by_seed in runs.items():
            cells = [_fmt([c[m] for c in by_seed.values()], digits[m]) if all(m in c for c in by_seed.values())
                     else "–" for m in COLUMNS]
            deltas = []
            for m in ("l1", "lpips", "lpips_vgg"):
                rel = [100 * (c[m] / paper[sd][m] - 1) for sd, c in by_seed.items()
                       if sd in paper and m in c and m in paper[sd]]
                if name == reference or not rel:
                    deltas.append("")
                else:
                    worst = max(rel)
                    deltas.append(f"{sum(rel) / len(rel):+.1f}%" + (f" [{worst:+.1f}%]" if len(rel) > 1 else ""))
            # Steps trained (of the step budget, when the run stopped short of it).
            steps = "/".join(str(c["steps_trained"]) + (f" of {c['steps']}" if c["steps_trained"] < c["steps"] else "")
                             if "steps_trained" in c else str(c["steps"]) for c in by_seed.values())
            lines.append(f"| {example} | {name} | {','.join(map(str, sorted(by_seed)))} | {steps} | "
                         + " | ".join(cells) + " | " + " | ".join(deltas) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
