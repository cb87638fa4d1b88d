"""The training loop: data, models, optimisers, checkpoints, logs. Takes a TrainConfig, never argparse.

Setup, in order: (1) processes and device, (2) data, (3) models and optimisers, (4) resume,
(5) wrappers for scale and speed (DDP, torch.compile), (6) outputs (rank 0 only).
Phases per iteration: (a) take the next batch of the run's reproducible order, (b) set the lr for
the step, (c) D step then G step (and the weight average), (d) log, sample, validate and
checkpoint on their cadences, (e) stop cleanly on Ctrl-C / SIGTERM / max_steps / max_time, saving
a checkpoint first, or on a NaN/inf loss, keeping the last good checkpoint.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import time
from pathlib import Path
from typing import Optional

import torch
from torch.utils.data import DataLoader

from ..checkpoint import (PretrainedInfo, checkpoint_dir, load_train_generator, load_training_checkpoint,
                          rng_state, save_training_checkpoint, set_rng_state)
from ..config import TrainConfig, config_dict, save_config, saved_train_config
from ..data import apply_batch, collate, params_from_tensor
from ..data.palette import dataset_palette
from ..util.device import resolve_device
from ..util.fsutil import atomic_write_text
from ..models import DISCRIMINATORS, GENERATORS, build_discriminator, build_generator, check_image_size
from ..models.layers import as_tested, has_batch_norm
from ..util.precision import resolve_precision
from ..util.signals import stop_on_signals
from . import distributed
from .background import BackgroundWriter, snapshot
from .budget import RUNNING_KEYS, Budget, readable_duration, stop_reason as describe_stop
from .datasets import DecodeCheck, build_datasets, fast_loading, uses_cache, validation_set
from .distributed import DistContext
from .distill import DistillTargets
from .ema import EMA
from .health import HealthMonitor
from .perceptual import load_pretrained_encoder
from .preflight import check_world, resume_changes
from .report import write_report
from .result import TrainResult
from .sampler import RunBatchSampler
from .schedule import FittedSchedule, lr_factor, set_lr
from .step import StepConfig, train_step
from .tracking import Tracker, save_grid, truncate_log

log = logging.getLogger(__name__)
AMP_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class TrainingInterrupted(Exception):
    """Raised after a clean save when a signal stopped the run; carries the checkpoint path."""

    def __init__(self, signum: int, checkpoint: Path, result: Optional[TrainResult] = None) -> None:
        super().__init__(f"stopped by signal {signum}; checkpoint saved at {checkpoint}")
        self.signum, self.checkpoint, self.result = signum, checkpoint, result


class TrainingDiverged(FloatingPointError):
    """A loss became NaN or inf; no checkpoint was written after it, the last good one is kept.
    ``result`` (a TrainResult, stopped="diverged") says where."""

    result: Optional[TrainResult] = None


def _optimizer(module: torch.nn.Module, cfg: TrainConfig, device: torch.device,
               lr: float) -> torch.optim.Adam:
    # The fused kernel makes one pass over each tensor instead of ~8 (a fifth of a CPU step).
    fused = device.type in ("cpu", "cuda")
    # Frozen parts (a pretrained discriminator backbone) get no optimiser state.
    params = [p for p in module.parameters() if p.requires_grad]
    return torch.optim.Adam(params, lr=lr, betas=(cfg.beta1, cfg.beta2), fused=fused)


def _on_device(batch: dict, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch's (input, target) in [-1, 1] on ``device``; uint8 items (``params`` present) are
    moved as bytes and jittered there (data.device_jitter)."""
    if "params" not in batch:
        return batch["input"].to(device, non_blocking=True), batch["target"].to(device, non_blocking=True)
    params = [params_from_tensor(p) for p in batch["params"]]

    def moved(x):
        return [t.to(device, non_blocking=True) for t in x] if isinstance(x, list) else \
            x.to(device, non_blocking=True)

    return apply_batch(moved(batch["input"]), params), apply_batch(moved(batch["target"]), params)


def train(cfg: TrainConfig, *, resume: bool = False, progress: bool = True) -> TrainResult:
    """Train a pix2pix model; returns a TrainResult (run directory, final step, checkpoint, last
    losses, why it stopped), which also works as the run directory's path.
    Raises TrainingInterrupted (a signal; checkpoint saved) or TrainingDiverged (a NaN/inf loss),
    each carrying the TrainResult as ``.result``.

    Runs distributed when the environment says so (``torchrun``, or ``pix2pix train
    --num-processes N``): ``cfg.batch_size`` is then the batch of each process.
    """
    cfg.validate()
    check_image_size(cfg.model, cfg.data.image_size, cfg.data.preprocess)
    if os.environ.get("RANK", "0") == "0":  # only rank 0 validates; checked before anything is written
        from .validation import check_best_metric

        check_best_metric(cfg.val_every, cfg.best_metric)
    run_dir = Path(cfg.out)
    if (run_dir / "latest.json").exists() and not resume:
        raise ValueError(f"{run_dir} already holds a training run; pass --resume to continue it, "
                         f"or choose another --out")
    ctx, device = distributed.init(resolve_device(cfg.device))
    # Checked on this device before anything is built: a precision the hardware only emulates
    # would make every step many times slower.
    cfg = dataclasses.replace(cfg, precision=resolve_precision(cfg.precision, device))
    try:
        result = _train(cfg, ctx, device, run_dir, resume=resume, progress=progress)
        # Leave together: a process that tears the group down while rank 0 is still writing its
        # last report can make gloo abort the other ("terminate called without an active exception").
        distributed.barrier(ctx)
        return result
    except TrainingInterrupted:
        # A signal stops every process at the same agreed step (distributed.agree), so they can
        # leave together here too, for the same reason as above.
        distributed.barrier(ctx)
        raise
    finally:
        distributed.shutdown(ctx)


def _train(cfg: TrainConfig, ctx: DistContext, device: torch.device, run_dir: Path, *,
           resume: bool, progress: bool) -> TrainResult:
    t_start = time.monotonic()
    if ctx.main:
        run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)

    # ---- (2) data: every process builds the same order and takes its slice of each batch.
    # One process without the decode-once cache: the full decode check runs in a thread while the
    # models are built, and is waited for before anything is written (DecodeCheck says why).
    background_check = (cfg.data.verify and ctx.main and not ctx.distributed
                        and not uses_cache(cfg, device))
    train_set, sample_set = build_datasets(cfg, verify=cfg.data.verify and ctx.main
                                           and not background_check)
    decode_check = DecodeCheck(train_set, sample_set) if background_check else None
    # Rank 0 also builds (or rebuilds) the decode-once cache; the others use it once it is there.
    loader_set = fast_loading(train_set, cfg, device, build=True) if ctx.main else None
    distributed.barrier(ctx)  # rank 0 checked every file before anyone starts
    if loader_set is None:
        loader_set = fast_loading(train_set, cfg, device, build=False)
    sampler = RunBatchSampler(len(train_set), cfg.batch_size, cfg.seed, rank=ctx.rank, world=ctx.world)
    steps_per_epoch = sampler.steps_per_epoch
    decay_start = cfg.epochs * steps_per_epoch
    decay_end = (cfg.epochs + cfg.decay_epochs) * steps_per_epoch
    total = min(cfg.max_steps or decay_end, decay_end) if decay_end else cfg.max_steps
    assert total is not None

    # ---- (3) models and optimisers (the same initial weights on every process: same seed).
    generator = build_generator(cfg.model)
    backbone = GENERATORS[cfg.model.generator].backbone
    if backbone and not cfg.init_from and not resume:  # a pretrained encoder, for a new run only
        load_pretrained_encoder(generator, backbone)
    discriminator = build_discriminator(cfg.model)
    d_backbone = DISCRIMINATORS[cfg.model.discriminator].backbone
    if d_backbone and not resume:  # frozen pretrained features (--init-from may replace them)
        load_pretrained_encoder(discriminator, d_backbone)
    start = None
    if cfg.init_from and not resume:  # fine-tuning: weights only, before the EMA copies them
        from .init import init_weights

        start = init_weights(cfg.init_from, cfg.model, generator, discriminator,
                             shrink=cfg.init_shrink, perturb=cfg.init_perturb)
    if cfg.sync_batchnorm and ctx.distributed:
        distributed.convert_sync_batchnorm(generator)
        distributed.convert_sync_batchnorm(discriminator)
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    generator = generator.to(device, memory_format=memory_format)
    discriminator = discriminator.to(device, memory_format=memory_format)
    opt_g = _optimizer(generator, cfg, device, cfg.lr)
    opt_d = _optimizer(discriminator, cfg, device, cfg.lr * cfg.d_lr_mult)
    scaler = torch.amp.GradScaler(device.type) if cfg.precision == "fp16" else None
    ema = EMA(generator, cfg.ema) if cfg.ema > 0 else None
    # Distillation: a frozen teacher supplies targets; D may start from the teacher's D.
    teacher, student_taps = None, None
    if cfg.distill.enabled:
        from .distill import FeatureTaps, Teacher

        with torch.random.fork_rng(devices=[]):  # building the teacher must not move the RNG
            teacher = Teacher(cfg, device)
        if cfg.distill.teacher_discriminator and not resume:
            teacher.init_discriminator(discriminator)
        student_taps = (FeatureTaps(generator, training_only=True)
                        if cfg.distill.feature_weight > 0 else None)
    if decode_check is not None:
        # A broken file stops the run here, before it is read for the palette, written or trained.
        decode_check.result()
    info = PretrainedInfo(model=cfg.model, direction=cfg.data.direction, image_size=cfg.data.image_size,
                          palette=dataset_palette(train_set) if ctx.main else None,
                          extra={**({"distilled_from": cfg.distill.teacher} if teacher is not None else {}),
                                 **({"init_from": cfg.init_from} if cfg.init_from else {})})
    if ctx.rank:
        # Dropout differs between processes, as it would between the images of one batch.
        torch.manual_seed(cfg.seed + 1_000_003 * ctx.rank)

    # ---- (4) resume: weights, optimisers, loss scale, weight average, step, every RNG.
    step = _restore(run_dir, ctx, device, generator, discriminator, ema, opt_g, opt_d, scaler,
                    cfg.seed, cfg) if resume else 0
    if step >= total > 0 and resume:
        # A resume whose end is behind it trains nothing; say so rather than "done" alone.
        if ctx.main:
            log.warning("nothing to train: the run is already at step %d and %s ends at step %d; "
                        "raise --max-steps (or --epochs / --decay-epochs) to train further",
                        step, f"--max-steps {cfg.max_steps}" if cfg.max_steps and cfg.max_steps < decay_end
                        else f"its schedule (--epochs {cfg.epochs} + --decay-epochs {cfg.decay_epochs}, "
                             f"{steps_per_epoch} step(s) per epoch)", total)
        total = step  # status.json: "all <step> steps done", not a total behind the step
    budget = Budget(total, cfg.max_time, step, t_start)
    # --lr-schedule fit: the paper's shape compressed to end where the run will (re-aimed at every
    # log step from the budget's estimate), so a time-boxed run ends with its lr decayed.
    fitted = FittedSchedule(decay_start, decay_end, step) if cfg.lr_schedule == "fit" else None
    if resume and cfg.max_time is not None and ctx.main:
        log.info("--max-time %s is a fresh budget for this session, counted from now (not what is "
                 "left of the earlier sessions)", readable_duration(cfg.max_time))
    if ctx.main:
        save_config(cfg, run_dir / "config.json")
        # Resumed: the steps after the checkpoint are run again. New: lines left by a run killed
        # before its first checkpoint belong to no checkpoint.
        truncate_log(run_dir / "metrics.jsonl", step)

    # ---- (5) wrappers: DDP averages gradients over processes; compile fuses the graphs.
    g_run, d_run, d_frozen = (distributed.wrap(generator, ctx, device),
                              distributed.wrap(discriminator, ctx, device), discriminator)
    if cfg.compile != "off":
        mode = None if cfg.compile == "default" else cfg.compile
        g_run, d_run, d_frozen = (torch.compile(m, mode=mode) for m in (g_run, d_run, d_frozen))
    step_cfg = StepConfig(cfg.gan_mode, cfg.gan_weight, cfg.l1_weight, cfg.model.conditional,
                          amp_dtype=AMP_DTYPES[cfg.precision],
                          fuse_d=not has_batch_norm(discriminator),
                          perceptual_weight=cfg.perceptual_weight, shift_weight=cfg.shift_weight,
                          teacher_weight=cfg.distill.teacher_weight if teacher is not None else 0.0,
                          feature_weight=cfg.distill.feature_weight if teacher is not None else 0.0,
                          feature_matching_weight=cfg.feature_matching_weight, r1_weight=cfg.r1_weight,
                          r1_every=cfg.r1_every)
    augment = None
    if cfg.d_augment:
        from .augment import PairAugment

        augment = PairAugment(cfg.d_augment).to(device).train()
    perceptual = None
    if cfg.perceptual_weight > 0:
        from .perceptual import build_perceptual

        perceptual = build_perceptual(cfg.perceptual_net, device=device)
    sampler.start_step = step
    workers = cfg.data.workers
    # One loader for the whole run: workers persist and prefetch across epoch boundaries. A
    # private generator keeps it from drawing on the global RNG, which dropout uses, so resumed
    # and uninterrupted runs see the same random numbers.
    loader = DataLoader(loader_set, batch_sampler=sampler, num_workers=workers, collate_fn=collate,
                        pin_memory=device.type == "cuda", generator=torch.Generator(),
                        prefetch_factor=cfg.data.prefetch if workers else None,
                        persistent_workers=workers > 0)

    # ---- (6) outputs, on rank 0 only.
    export_model = ema.module if ema is not None else generator
    tracker = Tracker(run_dir, tensorboard=cfg.tensorboard, wandb_project=cfg.wandb_project,
                      config=config_dict(cfg)) if ctx.main else None
    evaluator = best = None
    if ctx.main and cfg.val_every:
        from ..metrics.quality import Evaluator
        from .validation import BestKeeper

        evaluator = Evaluator(cfg.val_metric_list, device=device)
        if cfg.best_metric in evaluator.skipped:
            raise ValueError(f"best_metric {cfg.best_metric!r} cannot be computed: "
                             f"{evaluator.skipped[cfg.best_metric]}")
        best = BestKeeper(run_dir, cfg.best_metric) if cfg.best_metric else None
    val_set = validation_set(cfg, sample_set)
    health = HealthMonitor(after=cfg.health_after, metric=cfg.best_metric or "l1") if ctx.main else None
    if health is not None and resume:  # the tracker's log: parsed once, the report reads it too
        health.replay(tracker.log.read())
    n_samples = min(cfg.num_samples, len(sample_set))
    fixed = [sample_set[i] for i in range(n_samples)]
    sample_in = torch.stack([s["input"] for s in fixed]).to(device)
    sample_tg = torch.stack([s["target"] for s in fixed]).to(device)
    status = {"state": "running", "step": step, "total_steps": total, "processes": ctx.world,
              "device": str(device), "precision": cfg.precision}
    if cfg.init_from:  # where the weights started (the resolved model and its digest when new)
        status["init_from"] = start if start is not None else cfg.init_from

    writer = BackgroundWriter()

    def save(at_step: int, background: bool = False) -> Path:
        """Collective: every process hands its RNG state to rank 0, which writes. ``background``:
        rank 0 snapshots the tensors and writes them in a thread while training goes on."""
        rngs = distributed.gather(ctx, rng_state(device))
        path = checkpoint_dir(run_dir, at_step)
        if ctx.main:
            state = {"step": at_step, "epoch": at_step // steps_per_epoch, "opt_g": opt_g.state_dict(),
                     "opt_d": opt_d.state_dict(), "rng": rngs[0], "rng_ranks": rngs,
                     "world_size": ctx.world, "config": json.dumps(config_dict(cfg))}
            if scaler is not None:
                state["scaler"] = scaler.state_dict()
            kwargs = dict(generator=export_model, discriminator=discriminator, info=info, state=state,
                          train_generator=generator if ema is not None else None)
            if background:
                writer.submit(save_training_checkpoint, run_dir, step=at_step,
                              keep=cfg.keep_checkpoints, **snapshot(kwargs))
            else:
                writer.wait()
                path = save_training_checkpoint(run_dir, step=at_step, keep=cfg.keep_checkpoints, **kwargs)
        return path

    def sample(at_step: int) -> None:
        export_model.eval()
        # As the model will test: a paper-recipe model normalises with each sample's own statistics.
        net = as_tested(export_model, cfg.model.test_statistics)
        with torch.no_grad():
            fake = net(sample_in)
        if ema is None:
            generator.train()
        health.sampled(at_step, sample_in, fake, sample_tg)
        path = save_grid([sample_in, fake, sample_tg], run_dir / "samples" / f"step_{at_step:08d}.png")
        tracker.image("samples", path, at_step)

    def run_validation(at_step: int) -> None:
        from .validation import validate

        results = validate(export_model, info, val_set, evaluator, device=device,
                           max_items=cfg.val_max_images)
        if ema is None:
            generator.train()
        tracker.scalars(at_step, {f"val/{k}": v for k, v in results.items()
                                  if isinstance(v, (int, float)) and k != "count"})
        health.validated(at_step, results)
        if best is not None:
            best.update(at_step, results, export_model, info)

    def report() -> None:
        status.update(step=step, elapsed_s=round(time.monotonic() - t_start, 1), health=health.report())
        if status["state"] == "running":
            status.update(budget.status())
        atomic_write_text(run_dir / "status.json", json.dumps(status) + "\n", durable=False)
        write_report(run_dir, status=status, config=config_dict(cfg), lines=tracker.log.read(),
                     best=best.best if best is not None else None)

    bar = None
    if progress and ctx.main:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, initial=step, unit="it", dynamic_ncols=True, desc="train")
    generator.train()
    discriminator.train()
    nonfinite = torch.zeros((), dtype=torch.bool, device=device)
    good_step = step  # the last step known to have finite losses
    t_last, step_last, rate = time.perf_counter(), step, 0.0
    if ctx.main:
        report()  # status.json and report.html say "running" from the start
    last_saved: Optional[int] = step if resume else None
    last_sampled: Optional[int] = None
    stop_reason = ""
    schedule_done = False
    # Whether a signal stops the run, as agreed by every process at the last check. The loop
    # breaks on this, never on ``signals`` itself: a signal that lands on one process between the
    # check and the break would otherwise take it out of the loop a step before the others, and
    # its next collective (the checkpoint's gather) would meet their DDP step and hang both.
    interrupted = False
    values: dict[str, float] = {}  # the last logged losses
    memory = (lambda t: t.contiguous(memory_format=torch.channels_last)) if cfg.channels_last else (lambda t: t)
    batches = iter(loader)
    last_r1: Optional[torch.Tensor] = None
    with writer.joined(), stop_on_signals() as signals:
        while step < total:
            # (a) batch, (b) lr for this step
            batch = next(batches)
            lr = cfg.lr * (fitted.factor(step) if fitted is not None else
                           lr_factor(step, decay_start=decay_start, decay_end=decay_end,
                                     schedule=cfg.lr_schedule))
            set_lr(opt_g, lr)
            set_lr(opt_d, lr * cfg.d_lr_mult)
            real_a, real_b = (memory(t) for t in _on_device(batch, device))
            distill = None
            if teacher is not None:
                t_out, t_feats = teacher.targets(list(batch["name"]), real_a)
                distill = DistillTargets(t_out, t_feats, student_taps)
            # (c) D step, G step, weight average
            metrics = train_step(g_run, d_run, opt_g, opt_d, real_a, real_b, step_cfg, scaler=scaler,
                                 frozen_discriminator=d_frozen, perceptual=perceptual,
                                 distill=distill, augment=augment, step=step)
            # Lazy R1 measures its penalty on some steps only: the last value stands in between,
            # so every logged step has the same metrics.
            if "loss/d_r1" in metrics:
                last_r1 = metrics["loss/d_r1"]
            elif last_r1 is not None:
                metrics["loss/d_r1"] = last_r1
            if ema is not None:
                ema.update(generator, step)
            # Accumulated on the device: no host sync per step on a GPU.
            losses = torch.stack(list(metrics.values()))
            nonfinite |= ~torch.isfinite(losses).all()
            step += 1
            budget.observe(step)
            if bar is not None and cfg.max_time is not None:
                # The bar ends where the run is expected to: at the time cap if that comes first.
                bar.total = budget.expected_last_step()

            # (d) cadences. Losses are read back only on log/sample/validation/checkpoint steps
            # (and every step when distributed, where processes must agree on stopping anyway).
            log_now = step % cfg.log_every == 0 or step == total
            sample_now = step % cfg.sample_every == 0 or step == total
            val_now = bool(cfg.val_every) and (step % cfg.val_every == 0 or step == total)
            save_now = step % cfg.checkpoint_every == 0 or step == total
            time_up = cfg.max_time is not None and time.monotonic() - t_start > cfg.max_time
            check = log_now or sample_now or val_now or save_now or ctx.distributed or time_up or signals
            if check:
                bad, stop_sig, time_up = distributed.agree(
                    ctx, [bool(nonfinite), bool(signals), time_up], device)
                if bad:
                    if ctx.main:
                        status["state"] = "diverged"
                        _stopped(status, step, total, cfg.max_time)
                        report()
                        tracker.close()
                    raise _diverged(metrics, step, good_step, last_saved, run_dir, ctx,
                                    TrainResult(run_dir, step, total, "diverged", metrics=values))
                good_step = step
                if stop_sig:
                    interrupted = True
                    if not signals:
                        signals.append(signal.SIGTERM)  # another process was signalled
                if time_up and not stop_reason:
                    stop_reason = "max_time"
            if fitted is not None and log_now:
                # Every process aims at the same step (their clocks differ a little).
                expected = distributed.mean(
                    ctx, torch.tensor([float(budget.expected_last_step())], device=device))
                fitted.refit(step, int(expected.item()))
                # The machine ran faster than estimated: the lr is at zero, the run is finished.
                schedule_done = fitted.done(step)
            if log_now:
                averaged = distributed.mean(ctx, losses.float())
                values = dict(zip(metrics, averaged.tolist()))
            if log_now and ctx.main:
                now = time.perf_counter()
                rate = (step - step_last) / max(now - t_last, 1e-9)
                t_last, step_last = now, step
                tracker.scalars(step, {"epoch": step / steps_per_epoch, "lr": lr, "it_per_s": rate,
                                       "world_size": ctx.world, **values})
                health.losses_logged(step, values)
                if bar is not None:
                    bar.set_postfix({k.split("/")[-1]: f"{v:.3f}" for k, v in values.items()},
                                    refresh=False)
            if bar is not None:
                bar.update(1)
            if ctx.main and sample_now:
                sample(step)
                last_sampled = step
            if val_now:
                if ctx.main:
                    run_validation(step)
                distributed.barrier(ctx)
            if save_now:
                # The run's last checkpoint is written in the foreground below.
                save(step, background=step < total and not interrupted and not stop_reason)
                last_saved = step
            if ctx.main and (sample_now or val_now):
                report()
            # (e) stop on a signal or the time budget, after the step, with a checkpoint.
            if interrupted or stop_reason or schedule_done:
                break
        if schedule_done:
            total = step  # the fitted schedule's end: "finished: all <step> steps done"
        if bar is not None:
            if interrupted or stop_reason or schedule_done:
                bar.total = bar.n  # the run ends here, whatever the estimate said
                bar.refresh()
            bar.close()
        writer.wait()  # a checkpoint still being written is complete before the run reports
        path = save(step) if last_saved != step else checkpoint_dir(run_dir, step)
        if ctx.main:
            if last_sampled != step:
                sample(step)  # every clean stop shows where the run got to, however short
            status["state"] = ("interrupted" if interrupted else
                               f"stopped ({stop_reason})" if stop_reason else "finished")
            _stopped(status, step, total, cfg.max_time, signals[0] if interrupted else None)
            report()
            tracker.close()
            health.summarise()
        stopped = ("interrupted" if interrupted else "time_limit" if stop_reason else
                   "finished" if step >= decay_end or schedule_done else "max_steps")
        result = TrainResult(run_dir, step, total, stopped, checkpoint=path, metrics=values,
                             best=best.dir if best is not None and best.dir.is_dir() else None)
        if interrupted:
            raise TrainingInterrupted(signals[0], path, result)
        if stop_reason:
            log.info("time budget of %.0f s reached at step %d of %d; checkpoint saved at %s; "
                     "continue with --resume", cfg.max_time, step, total, path)
            if fitted is None and step <= decay_start and cfg.lr_schedule == "linear":
                log.info("the learning rate never decayed (its decay starts at step %d): for one "
                         "time-boxed run, --lr-schedule fit ends it at zero when the time is up",
                         decay_start)
    return result


def _stopped(status: dict, step: int, total: int, max_time: Optional[float],
             signum: Optional[int] = None) -> None:
    """Replace the running estimates in ``status`` with the reason the run stopped."""
    for key in RUNNING_KEYS:
        status.pop(key, None)
    status["stop_reason"] = describe_stop(status["state"], step, total, max_time, signum)


def _restore(run_dir: Path, ctx: DistContext, device: torch.device, generator, discriminator,
             ema: Optional[EMA], opt_g, opt_d, scaler, seed: int, cfg: TrainConfig) -> int:
    """Load the newest checkpoint into the training objects; returns its step."""
    path, g_state, d_state, state = load_training_checkpoint(run_dir)
    saved_cfg = saved_train_config(json.loads(state["config"])) if "config" in state else None
    if saved_cfg is not None:
        saved_world = int(state.get("world_size", 1))
        check_world(saved_world, ctx.world, saved_cfg.batch_size, cfg.batch_size)
        for change in resume_changes(saved_cfg, cfg, saved_world=saved_world, world=ctx.world):
            log.info("resume applies a changed setting: %s", change)
    trained = load_train_generator(path)  # None unless model/ holds a weight average
    generator.load_state_dict(trained if trained is not None else g_state)
    discriminator.load_state_dict(d_state)
    if ema is not None:
        ema.module.load_state_dict(g_state if trained is not None else generator.state_dict())
    opt_g.load_state_dict(state["opt_g"])
    opt_d.load_state_dict(state["opt_d"])
    if scaler is not None and "scaler" in state:
        scaler.load_state_dict(state["scaler"])
    step = int(state["step"])
    saved_world = int(state.get("world_size", 1))
    if saved_world == ctx.world:
        ranks = state.get("rng_ranks") or [state["rng"]]
        set_rng_state(ranks[ctx.rank], device)
    else:
        log.warning("resuming a %d-process run with %d processes: training continues, but not "
                    "bit-identically to an uninterrupted run", saved_world, ctx.world)
        torch.manual_seed(seed + 1_000_003 * ctx.rank + step)
    log.info("resumed from %s at step %d", path, step)
    return step


def _diverged(metrics: dict, step: int, good_step: int, last_saved: Optional[int], run_dir: Path,
              ctx: DistContext, result: TrainResult) -> TrainingDiverged:
    bad = [k for k, v in metrics.items() if not torch.isfinite(v).all()]
    where = f"at step {step}" if good_step == step - 1 else f"between steps {good_step + 1} and {step}"
    kept = (f"The last good checkpoint (step {last_saved}) is kept in {run_dir}; continue from it with "
            f"--resume and a lower --lr" if last_saved is not None else
            "No checkpoint had been written yet")
    names = ", ".join(bad) if bad else "a loss"
    error = TrainingDiverged(f"{names} became NaN or inf {where}{' on some process' if ctx.distributed else ''}; "
                             f"training stopped without saving. {kept}. Check the data for bad "
                             f"values, or try --precision fp32 / a lower --lr")
    error.result = dataclasses.replace(
        result, checkpoint=checkpoint_dir(run_dir, last_saved) if last_saved is not None else None)
    return error
