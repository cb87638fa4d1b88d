"""The training loop: data, models, optimisers, checkpoints, logs. Takes a TrainConfig, never argparse.

Phases per iteration: (1) take the next batch of this epoch's reproducible order, (2) set the lr for
the step, (3) D step then G step, (4) log, sample and checkpoint on their cadences, (5) stop cleanly
on Ctrl-C / SIGTERM / max_steps, saving a checkpoint first.
"""
from __future__ import annotations

import contextlib
import json
import logging
import signal
import time
from pathlib import Path
from typing import Iterator, Optional

import torch
from torch.utils.data import DataLoader

from ..checkpoint import PretrainedInfo, checkpoint_dir, load_training_checkpoint, save_training_checkpoint
from ..config import TrainConfig, save_config, to_dict
from ..data import EpochBatchSampler, Jitter, PairedDataset, load_pair, open_split
from ..data.palette import find_palette
from ..models import build_discriminator, build_generator, generator_multiple
from .schedule import lr_factor, set_lr
from .step import StepConfig, train_step
from .tracking import MetricsLog, save_grid

log = logging.getLogger(__name__)


class TrainingInterrupted(Exception):
    """Raised after a clean save when a signal stopped the run; carries the checkpoint path."""

    def __init__(self, signum: int, checkpoint: Path) -> None:
        super().__init__(f"stopped by signal {signum}; checkpoint saved at {checkpoint}")
        self.signum, self.checkpoint = signum, checkpoint


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but no CUDA GPU is visible; use --device cpu")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("device 'mps' was asked for but Apple MPS is not available; use --device cpu")
    return torch.device(name)


def build_datasets(cfg: TrainConfig) -> tuple[PairedDataset, PairedDataset]:
    """The training split (jittered) and a fixed sample set (val split if present, centre crops)."""
    d, m = cfg.data, cfg.model
    jitter = Jitter(d.preprocess, d.image_size, d.resolved_load_size, d.flip)
    common = dict(in_channels=m.in_channels, out_channels=m.out_channels, direction=d.direction,
                  seed=cfg.seed)
    train = open_split(d.root, d.train_split, jitter=jitter, train=True, verify=d.verify, **common)
    if (Path(d.root) / d.val_split).is_dir():
        # A validation split that exists but is broken is an error, not a silent fallback.
        samples = open_split(d.root, d.val_split, jitter=jitter, train=False, verify=d.verify, **common)
    else:
        samples = PairedDataset(train.pairs, jitter=jitter, train=False, **common)
    return train, samples


def training_palette(train_set: PairedDataset, limit: int = 64) -> Optional[list]:
    """The input colours of a label-map dataset (saved for the studio's palette), else None."""
    if train_set.in_channels not in (1, 3, 4):
        return None

    def inputs() -> Iterator:
        for pair in train_set.pairs[:limit]:
            a, b = load_pair(pair)
            yield b if train_set.direction == "BtoA" else a

    return find_palette(inputs())


def _check_size(cfg: TrainConfig) -> None:
    multiple = generator_multiple(cfg.model.generator)
    if cfg.data.preprocess != "none" and cfg.data.image_size % multiple:
        raise ValueError(f"image_size {cfg.data.image_size} is not a multiple of {multiple}, which "
                         f"{cfg.model.generator} needs; use --image-size {multiple} or another generator")


def _rng_state(device: torch.device) -> dict:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[list[int]]:
    """Turn SIGINT/SIGTERM into a flag the loop checks after each step (so it can save first)."""
    received: list[int] = []

    def handler(signum, _frame):
        if received:  # a second Ctrl-C means "now"
            raise KeyboardInterrupt
        received.append(signum)

    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread: leave signals alone
            pass
    try:
        yield received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def train(cfg: TrainConfig, *, resume: bool = False, progress: bool = True) -> Path:
    """Train a pix2pix model; returns the run directory (its latest checkpoint holds the model)."""
    cfg.validate()
    _check_size(cfg)
    run_dir = Path(cfg.out)
    if (run_dir / "latest.json").exists() and not resume:
        raise ValueError(f"{run_dir} already holds a training run; pass --resume to continue it, "
                         f"or choose another --out")
    run_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)

    train_set, sample_set = build_datasets(cfg)
    steps_per_epoch = len(train_set) // cfg.batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"batch_size {cfg.batch_size} is larger than the {len(train_set)} training "
                         f"pairs; lower --batch-size")
    decay_start = cfg.epochs * steps_per_epoch
    decay_end = (cfg.epochs + cfg.decay_epochs) * steps_per_epoch
    total = min(cfg.max_steps or decay_end, decay_end) if decay_end else cfg.max_steps
    assert total is not None

    generator = build_generator(cfg.model).to(device)
    discriminator = build_discriminator(cfg.model).to(device)
    betas = (cfg.beta1, cfg.beta2)
    opt_g = torch.optim.Adam(generator.parameters(), lr=cfg.lr, betas=betas)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=cfg.lr, betas=betas)
    info = PretrainedInfo(model=cfg.model, direction=cfg.data.direction, image_size=cfg.data.image_size,
                          palette=training_palette(train_set))

    step = 0
    if resume:
        path, g_state, d_state, state = load_training_checkpoint(run_dir)
        generator.load_state_dict(g_state)
        discriminator.load_state_dict(d_state)
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        step = int(state["step"])
        _set_rng_state(state["rng"], device)
        log.info("resumed from %s at step %d", path, step)
    save_config(cfg, run_dir / "config.json")

    metrics_log = MetricsLog(run_dir / "metrics.jsonl")
    step_cfg = StepConfig(cfg.gan_mode, cfg.gan_weight, cfg.l1_weight, cfg.model.conditional)
    n_samples = min(cfg.num_samples, len(sample_set))
    fixed = [sample_set[i] for i in range(n_samples)]
    sample_in = torch.stack([s["input"] for s in fixed]).to(device)
    sample_tg = torch.stack([s["target"] for s in fixed]).to(device)

    def save(at_step: int) -> Path:
        state = {"step": at_step, "epoch": at_step // steps_per_epoch, "opt_g": opt_g.state_dict(),
                 "opt_d": opt_d.state_dict(), "rng": _rng_state(device),
                 "config": json.dumps(to_dict(cfg))}
        return save_training_checkpoint(run_dir, step=at_step, generator=generator,
                                        discriminator=discriminator, info=info, state=state,
                                        keep=cfg.keep_checkpoints)

    def sample(at_step: int) -> None:
        generator.eval()
        with torch.no_grad():
            fake = generator(sample_in)
        generator.train()
        save_grid([sample_in, fake, sample_tg], run_dir / "samples" / f"step_{at_step:08d}.png")

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, initial=step, unit="it", dynamic_ncols=True, desc="train")
    generator.train()
    discriminator.train()
    pin = device.type == "cuda"
    t_last, step_last = time.perf_counter(), step
    last_saved: Optional[int] = None
    with _stop_on_signals() as stop:
        while step < total and not stop:
            epoch, start = divmod(step, steps_per_epoch)
            sampler = EpochBatchSampler(len(train_set), cfg.batch_size, cfg.seed, epoch, start)
            # A private generator keeps the DataLoader from drawing on the global RNG, which
            # dropout uses: resumed and uninterrupted runs then see the same random numbers.
            loader = DataLoader(train_set, batch_sampler=sampler, num_workers=cfg.data.workers,
                                pin_memory=pin, generator=torch.Generator(),
                                persistent_workers=False)
            for batch in loader:
                lr = cfg.lr * lr_factor(step, decay_start=decay_start, decay_end=decay_end,
                                        schedule=cfg.lr_schedule)
                set_lr(opt_g, lr)
                set_lr(opt_d, lr)
                real_a = batch["input"].to(device, non_blocking=True)
                real_b = batch["target"].to(device, non_blocking=True)
                metrics = train_step(generator, discriminator, opt_g, opt_d, real_a, real_b, step_cfg)
                step += 1
                if step % cfg.log_every == 0 or step == total:
                    values = {k: float(v) for k, v in metrics.items()}
                    bad = [k for k, v in values.items() if not torch.isfinite(torch.tensor(v))]
                    if bad:
                        raise FloatingPointError(
                            f"loss {', '.join(bad)} became NaN/inf at step {step}; the last good "
                            f"checkpoint is kept in {run_dir}. Lower --lr or check the data")
                    now = time.perf_counter()
                    rate = (step - step_last) / max(now - t_last, 1e-9)
                    t_last, step_last = now, step
                    metrics_log.write({"step": step, "epoch": step / steps_per_epoch, "lr": lr,
                                       "it_per_s": rate, **values})
                    if bar is not None:
                        bar.set_postfix({k.split("/")[-1]: f"{v:.3f}" for k, v in values.items()},
                                        refresh=False)
                if bar is not None:
                    bar.update(1)
                if step % cfg.sample_every == 0 or step == total:
                    sample(step)
                if step % cfg.checkpoint_every == 0 or step == total:
                    save(step)
                    last_saved = step
                if step >= total or stop:
                    break
        if bar is not None:
            bar.close()
        path = save(step) if last_saved != step else checkpoint_dir(run_dir, step)
        if stop:
            raise TrainingInterrupted(stop[0], path)
    return run_dir
