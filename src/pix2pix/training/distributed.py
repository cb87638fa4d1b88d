"""The one module that touches torch.distributed: process group, DDP, synced batch norm, launching.

A run is distributed when ``WORLD_SIZE`` > 1 in the environment, which ``torchrun`` sets, and so
does ``launch`` below (``pix2pix train --num-processes N``): every process runs the same training
function, sees its own slice of each global batch, and only rank 0 writes anything. CUDA devices
use NCCL (one GPU per process, ``cuda:LOCAL_RANK``); CPUs use gloo.
"""
from __future__ import annotations

import datetime
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import torch
import torch.distributed as dist
from torch import nn

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def world_from_env() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def init(device: torch.device) -> tuple[DistContext, torch.device]:
    """Join the process group described by the environment; returns the context and this rank's device.

    ``device`` is the resolved device type; with CUDA each process takes ``cuda:LOCAL_RANK``.
    """
    world = world_from_env()
    if world <= 1:
        return DistContext(), device
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise ValueError(f"process with LOCAL_RANK {local_rank} has no GPU: only "
                             f"{torch.cuda.device_count()} visible; start at most that many per machine")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    elif device.type == "cpu":
        backend = "gloo"
    else:
        raise ValueError(f"multi-process training supports cuda and cpu, not {device.type}; "
                         f"use --device cpu or a single process")
    if not dist.is_initialized():
        # Rank 0 validates and writes checkpoints while the others wait at the next collective.
        dist.init_process_group(backend, timeout=datetime.timedelta(minutes=30))
    ctx = DistContext(rank=rank, world=world, local_rank=local_rank)
    if not ctx.main:
        # Only rank 0 talks: the others keep warnings and errors.
        logging.getLogger("pix2pix").setLevel(logging.WARNING)
    return ctx, device


def shutdown(ctx: DistContext) -> None:
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()


def wrap(module: nn.Module, ctx: DistContext, device: torch.device) -> nn.Module:
    """DDP around ``module`` when distributed (gradients averaged over processes), else ``module``."""
    if not ctx.distributed:
        return module
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [device.index] if device.type == "cuda" else None
    return DDP(module, device_ids=ids)


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        dist.barrier()


def agree(ctx: DistContext, flags: Sequence[bool], device: torch.device) -> list[bool]:
    """Each flag becomes true on every process if it is true on any (so all stop at the same step)."""
    if not ctx.distributed:
        return list(flags)
    t = torch.tensor([int(f) for f in flags], dtype=torch.int32, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return [bool(v) for v in t.tolist()]


def mean(ctx: DistContext, values: torch.Tensor) -> torch.Tensor:
    """The average of ``values`` over processes (logged losses then cover the global batch)."""
    if not ctx.distributed:
        return values
    values = values.clone()
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values / ctx.world


def gather(ctx: DistContext, obj: Any) -> list[Any]:
    """Every process's ``obj``, in rank order (a list of one when not distributed)."""
    if not ctx.distributed:
        return [obj]
    out: list[Any] = [None] * ctx.world
    dist.all_gather_object(out, obj)
    return out


# ---- batch norm over all processes ----------------------------------------------------------

class SyncBatchNorm(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics cover the batches of all processes.

    Same parameters and buffers as BatchNorm2d (checkpoints are interchangeable). Unlike
    ``torch.nn.SyncBatchNorm``, which is GPU-only, it works on any backend (gloo on CPU too):
    per-channel sums go through an autograd-aware all-reduce, so gradients flow across processes.
    Outside a distributed training step it is plain batch norm.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized()
                and dist.get_world_size() > 1):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        c = self.num_features
        xf = x.float()
        count = torch.full((1,), xf.numel() / c, device=x.device, dtype=torch.float32)
        stats = all_reduce(torch.cat([xf.sum(dim=(0, 2, 3)), (xf * xf).sum(dim=(0, 2, 3)), count]))
        total = stats[-1]
        mean = stats[:c] / total
        var = (stats[c:2 * c] / total - mean * mean).clamp_min(0)  # biased, as batch norm uses
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), m)
                unbiased = var.detach() * total / (total - 1).clamp_min(1)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), m)
        y = (xf - mean.view(1, c, 1, 1)) * torch.rsqrt(var + self.eps).view(1, c, 1, 1)
        if self.affine:
            y = y * self.weight.view(1, c, 1, 1) + self.bias.view(1, c, 1, 1)
        return y.to(x.dtype)


def convert_sync_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm2d in ``module`` by SyncBatchNorm, keeping parameters and buffers."""
    for name, child in module.named_children():
        if type(child) is nn.BatchNorm2d:
            sync = SyncBatchNorm(child.num_features, child.eps, child.momentum, child.affine,
                                 child.track_running_stats)
            sync.load_state_dict(child.state_dict())
            setattr(module, name, sync.to(next(child.buffers(), torch.empty(0)).device))
        else:
            convert_sync_batchnorm(child)
    return module


# ---- launching N local processes (what `--num-processes N` does; torchrun does the same) --------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(argv: list[str], num_processes: int, *, grace_s: float = 60.0) -> int:
    """Run ``python -m pix2pix ARGV`` in ``num_processes`` processes joined through env:// rendezvous.

    Signals reach the children once (they run in their own session, so a terminal's Ctrl-C is
    forwarded here, not duplicated). If one child fails, the others get ``grace_s`` seconds and are
    then terminated, since they would otherwise wait in a collective. Returns rank 0's exit status,
    or the first failure's.
    """
    env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()),
               WORLD_SIZE=str(num_processes), LOCAL_WORLD_SIZE=str(num_processes))
    # Share the cores: N processes each running all-core thread pools oversubscribe the CPU,
    # and OpenMP barriers then stall (measured: 3-30x slower steps on a busy 2-core machine).
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // num_processes)))
    procs = []
    for rank in range(num_processes):
        procs.append(subprocess.Popen([sys.executable, "-m", "pix2pix", *argv], start_new_session=True,
                                      env=dict(env, RANK=str(rank), LOCAL_RANK=str(rank),
                                               PIX2PIX_LAUNCHED="1")))

    def forward(signum, _frame):
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        failed_at: Optional[float] = None
        while any(p.poll() is None for p in procs):
            codes = [p.poll() for p in procs]
            if failed_at is None and any(c not in (None, 0) for c in codes):
                failed_at = time.monotonic()
            waited = time.monotonic() - failed_at if failed_at is not None else 0.0
            if waited > grace_s:
                # A child stuck in a collective never reaches its signal check: kill it after 10 s.
                for p in procs:
                    if p.poll() is None:
                        p.kill() if waited > grace_s + 10 else p.terminate()
            time.sleep(0.2)
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    codes = [p.returncode for p in procs]
    return codes[0] if codes[0] else next((c for c in codes if c), 0)
