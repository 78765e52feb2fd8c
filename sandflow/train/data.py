"""The loop's batches: from a tensor, a Dataset, a DataLoader or a ``step -> batch`` callable.

Every kind of data becomes one iterator of per-rank batches that starts at
any step, so that a checkpoint's data position is just its step:

* a tensor, a ``Dataset`` or a ``DataLoader``'s dataset is read in epochs,
  each a permutation seeded by ``(seed, epoch)`` and the same on every rank;
  step ``s`` takes the ``s``-th run of ``batch_size`` indices (the last,
  incomplete batch of an epoch is dropped) and rank ``r`` of ``w`` keeps
  every ``w``-th of them from the ``r``-th: the sharding of torch's
  ``DistributedSampler``, computed from the step.
* a callable ``data(step)`` returns the global batch; rank ``r`` keeps its
  rows ``r::w`` of it.
* ``None`` (objectives without data, such as reverse-KL fits) gives ``None``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

__all__ = ["Data", "EpochBatches", "batches", "shard"]

Data = Tensor | Dataset | DataLoader | Callable[[int], Any] | None


def shard(batch: Any, rank: int, world: int) -> Any:  # noqa: ANN401
    """Rows ``rank::world`` of a tensor batch, or of each tensor of a tuple or list batch."""
    if world == 1 or batch is None:
        return batch
    if isinstance(batch, Tensor):
        if len(batch) % world:
            raise ValueError(
                f"the global batch has {len(batch)} rows, which {world} processes cannot "
                "share equally: make the batch size a multiple of the number of processes"
            )
        return batch[rank::world]
    if isinstance(batch, tuple | list):
        return type(batch)(shard(part, rank, world) for part in batch)
    raise TypeError(f"cannot split a batch of type {type(batch).__name__} between processes")


class EpochBatches(Sampler[list[int]]):
    """Per-rank index lists of the global batches ``start .. stop - 1``, seeded epoch by epoch.

    Args:
        size: number of examples.
        batch_size: the global batch.
        seed: seeds the permutation of epoch ``e`` with ``seed + e``.
        rank: this process's rank.
        world: number of processes.
        start: first step.
        stop: one past the last step.

    Example:
        >>> list(EpochBatches(10, 4, seed=0, rank=1, world=2, start=0, stop=3))
        [[1, 5], [9, 8], [6, 2]]
    """

    def __init__(
        self, size: int, batch_size: int, *, seed: int, rank: int, world: int, start: int, stop: int
    ) -> None:
        if not 0 < batch_size <= size:
            raise ValueError(f"batch_size must be in 1..{size} (the data size), got {batch_size}")
        if batch_size % world:
            raise ValueError(
                f"batch_size is the global batch and must be a multiple of the {world} "
                f"processes, got {batch_size}"
            )
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.rank, self.world, self.start, self.stop = rank, world, start, stop
        self._epoch, self._order = -1, torch.empty(0, dtype=torch.long)

    def __len__(self) -> int:
        return max(self.stop - self.start, 0)

    def indices(self, step: int) -> Tensor:
        """This rank's indices at ``step``."""
        epoch, k = divmod(step, self.size // self.batch_size)
        if epoch != self._epoch:
            generator = torch.Generator().manual_seed(self.seed + epoch)
            self._epoch, self._order = epoch, torch.randperm(self.size, generator=generator)
        return self._order[k * self.batch_size : (k + 1) * self.batch_size][self.rank :: self.world]

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start, self.stop):
            yield self.indices(step).tolist()


def _to(batch: Any, device: torch.device) -> Any:  # noqa: ANN401
    if isinstance(batch, Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, tuple | list):
        return type(batch)(_to(part, device) for part in batch)
    return batch


def batches(
    data: Data,
    *,
    batch_size: int | None,
    seed: int,
    rank: int,
    world: int,
    start: int,
    stop: int,
    device: torch.device,
) -> Iterator[Any]:
    """This rank's batches for the steps ``start .. stop - 1``, on ``device``.

    Example:
        >>> it = batches(torch.arange(10.0), batch_size=4, seed=0, rank=0, world=1,
        ...              start=0, stop=3, device=torch.device("cpu"))
        >>> [len(b) for b in it]
        [4, 4, 4]
    """
    if data is None:
        return iter([None] * max(stop - start, 0))
    if callable(data) and not isinstance(data, Dataset | DataLoader):
        return (_to(shard(data(step), rank, world), device) for step in range(start, stop))
    loader = data if isinstance(data, DataLoader) else None
    dataset = loader.dataset if loader is not None else data
    if batch_size is None:
        if loader is None or loader.batch_size is None:
            raise ValueError("batch_size (the global batch) is needed for a tensor or a Dataset")
        batch_size = loader.batch_size
    sampler = EpochBatches(
        len(dataset), batch_size, seed=seed, rank=rank, world=world, start=start, stop=stop
    )
    if isinstance(dataset, Tensor):
        return (
            _to(dataset[sampler.indices(step).to(dataset.device)], device)
            for step in range(start, stop)
        )
    workers = loader.num_workers if loader is not None else 0
    loader = DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=workers,
        collate_fn=loader.collate_fn if loader is not None else None,
        pin_memory=loader.pin_memory if loader is not None else False,
        worker_init_fn=loader.worker_init_fn if loader is not None else None,
        # workers are seeded from (seed, rank, start): the loop's own generators stay untouched
        generator=torch.Generator().manual_seed(seed * 1_000_003 + rank * 7919 + start),
    )
    return (_to(batch, device) for batch in loader)
