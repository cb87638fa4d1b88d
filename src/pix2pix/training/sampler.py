"""The batch order of a whole run, sharded over processes, for one long-lived DataLoader."""
from __future__ import annotations

from typing import Iterator

from torch.utils.data import Sampler

from ..data import EpochBatchSampler


class RunBatchSampler(Sampler):
    """Batches of ``(index, jitter_seed)`` from global step ``start_step`` on, epoch after epoch.

    Each global batch (``batch_size * world`` items, reproducible from (seed, epoch) through
    EpochBatchSampler) is split into ``world`` slices and this process takes slice ``rank``. So N
    processes with batch b see exactly the items one process with batch N*b sees, and a resumed
    run sees the batches the uninterrupted one would have. Endless: the loop decides when to stop,
    which lets loader workers prefetch across epoch boundaries.
    """

    def __init__(self, n: int, batch_size: int, seed: int, start_step: int = 0, *, rank: int = 0,
                 world: int = 1) -> None:
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} is outside a world of {world} processes")
        self.n, self.batch_size, self.seed, self.start_step = n, batch_size, seed, start_step
        self.rank, self.world = rank, world
        self.steps_per_epoch = n // (batch_size * world)
        if self.steps_per_epoch == 0:
            total = f" x {world} processes = {batch_size * world}" if world > 1 else ""
            raise ValueError(f"batch_size {batch_size}{total} is larger than the {n} training "
                             f"pairs; lower --batch-size")

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        epoch, start = divmod(self.start_step, self.steps_per_epoch)
        lo, hi = self.rank * self.batch_size, (self.rank + 1) * self.batch_size
        while True:
            for batch in EpochBatchSampler(self.n, self.batch_size * self.world, self.seed, epoch, start):
                yield batch[lo:hi]
            epoch, start = epoch + 1, 0
