"""Crashes lose at most one checkpoint interval: a short run killed with SIGKILL at 24 planned moments (at least 20 must land)
(during steps, inside checkpoint writes, sample and report writes), resumed after each kill, ends
with the same weights as an uninterrupted run, bit for bit; no kill leaves a damaged file.

The runs are real processes started from a fork server that has imported torch once (a cold
interpreter per trial would spend most of the budget importing). Kills inside writes are set up
in the child: at the N-th call of one of the functions that write the run's files, the child
writes part of the file and SIGKILLs itself, which is what a crash at that moment leaves."""
from __future__ import annotations

import io
import json
import logging
import multiprocessing
import os
import random
import signal
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

from pix2pix.checkpoint import checkpoint_problem, latest_checkpoint, load_training_checkpoint, read_tensors
from pix2pix.config import DataConfig, ModelConfig, TrainConfig

TOTAL = 36


def _config(data: Path, out: Path) -> TrainConfig:
    return TrainConfig(
        model=ModelConfig(generator="unet_128", base_channels=4, d_base_channels=4),
        data=DataConfig(root=str(data), image_size=128), out=str(out), batch_size=1, epochs=5,
        decay_epochs=5, max_steps=TOTAL, device="cpu", log_every=1, sample_every=2,
        checkpoint_every=3, keep_checkpoints=2, num_samples=2, tensorboard="off", seed=3)


def _partial_then_die(path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data[: max(1, len(data) // 2)])
        f.flush()
        os.fsync(f.fileno())
    os.kill(os.getpid(), signal.SIGKILL)


def _install_kill(point: tuple[str, int]) -> None:
    """In the child: die at the ``n``-th occurrence of ``event``."""
    import safetensors.torch

    import pix2pix.checkpoint as ckpt
    import pix2pix.training.loop as loop
    import pix2pix.training.tracking as tracking

    event, n = point
    seen = {"n": 0}

    def due() -> bool:
        seen["n"] += 1
        return seen["n"] == n

    if event in ("weights", "discriminator"):  # mid-write of a checkpoint's safetensors file
        real = ckpt.save_file

        def save_file(tensors, filename, metadata=None):
            is_d = str(filename).endswith("discriminator.safetensors")
            if (event == "discriminator") == is_d and due():
                _partial_then_die(filename, safetensors.torch.save(tensors, metadata=metadata))
            return real(tensors, filename, metadata=metadata)

        ckpt.save_file = save_file
    elif event == "state":  # mid-write of state.pt
        real_save = torch.save

        def save(obj, f, *a, **k):
            if due():
                buf = io.BytesIO()
                real_save(obj, buf)
                _partial_then_die(f, buf.getvalue())
            return real_save(obj, f, *a, **k)

        torch.save = save
    elif event == "before_rename":  # every file written and synced, not yet renamed into place
        real_tree = ckpt.fsync_tree

        def fsync_tree(root):
            real_tree(root)
            if due():
                os.kill(os.getpid(), signal.SIGKILL)

        ckpt.fsync_tree = fsync_tree
    elif event == "latest":  # renamed into place, latest.json half written
        real_atomic = ckpt.atomic_write_bytes

        def atomic_write_bytes(path, data, **k):
            if due():
                _partial_then_die(Path(path).with_name(f".{Path(path).name}.{os.getpid()}.tmp"), data)
            return real_atomic(path, data, **k)

        ckpt.atomic_write_bytes = atomic_write_bytes
    elif event == "prune":  # latest.json replaced, an old checkpoint half deleted
        real_rmtree = ckpt.shutil.rmtree

        def rmtree(path, *a, **k):
            if Path(path).name.endswith(".deleting") and Path(path).exists() and due():
                next(p for p in Path(path).rglob("*") if p.is_file()).unlink()  # half deleted
                os.kill(os.getpid(), signal.SIGKILL)
            return real_rmtree(path, *a, **k)

        ckpt.shutil.rmtree = rmtree
    elif event == "sample":  # a sample grid half written
        real_grid = tracking.atomic_write_bytes

        def grid_write(path, data, **k):
            if due():
                _partial_then_die(Path(path).with_name(f".{Path(path).name}.{os.getpid()}.tmp"), data)
            return real_grid(path, data, **k)

        tracking.atomic_write_bytes = grid_write
    elif event == "status":  # status.json half written
        real_text = loop.atomic_write_text

        def status_write(path, text, **k):
            if due():
                _partial_then_die(Path(path).with_name(f".{Path(path).name}.{os.getpid()}.tmp"), text.encode())
            return real_text(path, text, **k)

        loop.atomic_write_text = status_write
    else:
        raise AssertionError(event)


def _child(cfg: TrainConfig, resume: bool, point, log_file: str) -> None:
    torch.set_num_threads(1)
    logging.basicConfig(filename=log_file, level=logging.INFO, force=True)
    if point is not None:
        _install_kill(point)
    from pix2pix.training import train

    train(cfg, resume=resume, progress=False)


def _steps_logged(run: Path) -> int:
    try:
        lines = (run / "metrics.jsonl").read_text().splitlines()
        return json.loads(lines[-1])["step"] if lines else 0
    except (OSError, ValueError, IndexError):
        return 0


def _check_files(run: Path) -> None:
    """Every finished file of the run is whole: JSON parses, PNGs decode, checkpoints read."""
    for path in run.rglob("*"):
        if not path.is_file() or ".tmp" in path.name or any(p.name.endswith(".tmp") for p in path.parents):
            continue  # temporary names are by design not results (never read, cleaned up later)
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".jsonl":
            [json.loads(line) for line in path.read_text().splitlines()]
        elif path.suffix == ".png":
            Image.open(path).load()
        elif path.suffix == ".safetensors":
            read_tensors(path)
    for ckpt in (run / "checkpoints").glob("step_*"):
        assert checkpoint_problem(ckpt) is None, (ckpt, checkpoint_problem(ckpt))


@pytest.fixture(scope="module")
def fork_server():
    ctx = multiprocessing.get_context("forkserver")
    # torch._dynamo too: every optimizer's constructor imports it (~1.5 s per process otherwise).
    ctx.set_forkserver_preload(["torch", "torch._dynamo", "pix2pix.training", "pix2pix.checkpoint",
                                "safetensors.torch"])
    return ctx


def _run(ctx, cfg, resume, point, log_file, kill_after_steps=None, jitter=0.0) -> int:
    proc = ctx.Process(target=_child, args=(cfg, resume, point, str(log_file)))
    proc.start()
    if kill_after_steps is not None:
        deadline = time.monotonic() + 120

        def started() -> bool:  # the old log's lines count only once the resume has cut them
            return not resume or "resumed from" in (log_file.read_text() if log_file.exists() else "")

        while proc.is_alive() and time.monotonic() < deadline and not (
                started() and _steps_logged(Path(cfg.out)) >= kill_after_steps):
            time.sleep(0.002)
        time.sleep(jitter)
        if proc.is_alive():
            os.kill(proc.pid, signal.SIGKILL)
    proc.join(180)
    return proc.exitcode


def test_sigkill_at_24_moments_then_resume_gives_the_uninterrupted_weights(tiny_dataset, tmp_path, fork_server):
    ref_cfg = _config(tiny_dataset, tmp_path / "reference")
    assert _run(fork_server, ref_cfg, False, None, tmp_path / "ref.log") == 0

    cfg = _config(tiny_dataset, tmp_path / "run")
    run = Path(cfg.out)
    rng = random.Random(0)
    # Kills inside writes (event, occurrence counted from the start of that process) and kills
    # from outside after N more steps plus a random delay, alternating.
    inside = [("weights", 1), ("state", 2), ("discriminator", 1), ("before_rename", 2), ("latest", 1),
              ("sample", 3), ("prune", 1), ("status", 4), ("state", 1), ("latest", 3),
              ("sample", 1), ("before_rename", 1)]
    plan = []
    for i, point in enumerate(inside):
        plan.append(("inside", point))
        plan.append(("outside", (1 + i % 2, rng.uniform(0.0, 0.1))))
    kills, resumed_from, trial, code = 0, [], 0, None
    while code != 0:  # until a process has run to the end
        resume = (run / "checkpoints").is_dir() and any((run / "checkpoints").glob("step_*"))
        expected = int(latest_checkpoint(run).name[5:]) if resume else 0
        log_file = tmp_path / f"trial{trial}.log"
        if trial < len(plan):
            kind, arg = plan[trial]
            if kind == "inside":
                code = _run(fork_server, cfg, resume, arg, log_file)
            else:
                code = _run(fork_server, cfg, resume, None, log_file,
                            kill_after_steps=expected + arg[0], jitter=arg[1])
        else:
            code = _run(fork_server, cfg, resume, None, log_file)  # the last, uninterrupted part
        trial += 1
        text = log_file.read_text() if log_file.exists() else ""
        if resume:  # it started from the checkpoint latest.json named (or the newest whole one)
            assert f"at step {expected}" in text, (trial, plan[trial - 1] if trial <= len(plan) else None, code, text[-2000:])
            resumed_from.append(expected)
        if code == -signal.SIGKILL:
            kills += 1
        else:
            assert code == 0, text[-3000:]
        _check_files(run)
        load_training_checkpoint(run) if resume or (run / "latest.json").exists() else None
        assert trial < 60, "the run makes no progress"
    assert kills >= 20, f"only {kills} kills landed"
    print(f"\n{kills} SIGKILLs over {trial} processes; resumed from steps {resumed_from}")

    # The killed-and-resumed run ends where the uninterrupted one does, bit for bit.
    got, want = load_training_checkpoint(run), load_training_checkpoint(Path(ref_cfg.out))
    assert got[3]["step"] == want[3]["step"] == TOTAL
    for a, b in ((got[1], want[1]), (got[2], want[2])):
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), k
    steps = [json.loads(l)["step"] for l in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, TOTAL + 1))


def test_resume_is_bit_exact_with_validation_on(tiny_dataset, tmp_path, lpips_weights, one_thread):
    """Validation (with the LPIPS network, built after the RNG is restored) draws no random number
    from the training stream: 2 + 2 resumed steps equal 4 steps bit for bit."""
    from dataclasses import replace

    from pix2pix.training import train

    def cfg(out, steps):
        return replace(_config(tiny_dataset, tmp_path / out), max_steps=steps, val_every=1,
                       val_metrics="l1,lpips", best_metric="lpips", checkpoint_every=2)

    full = train(cfg("full", 4), progress=False)
    half = train(cfg("half", 2), progress=False)
    train(cfg("half", 4), resume=True, progress=False)
    a, b = load_training_checkpoint(full), load_training_checkpoint(half)
    for x, y in ((a[1], b[1]), (a[2], b[2])):
        for k in x:
            assert torch.equal(x[k], y[k]), k
    lines = [json.loads(l) for l in (half / "metrics.jsonl").read_text().splitlines()]
    assert [l["step"] for l in lines if "val/lpips" in l] == [1, 2, 3, 4]
