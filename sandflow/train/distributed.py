"""torch.distributed for the loop: the process group under torchrun, global batches, averages.

``torchrun`` (single node or multi-node) starts one process per device and
sets ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT``; :func:`setup` then joins the default process group (gloo on
CPU, NCCL on CUDA) from those variables. With ``WORLD_SIZE`` unset or 1
nothing is initialised and the loop runs in one process.
"""

from __future__ import annotations

import atexit
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import Tensor, nn

from sandflow.bijectors import ActNorm

__all__ = ["Processes", "all_gather_batch", "initialize_actnorm", "setup", "spawn"]


@dataclass(frozen=True)
class Processes:
    """This process's place among the training processes, and its device."""

    rank: int
    world: int
    device: torch.device

    @property
    def main(self) -> bool:
        """Rank 0 logs and writes checkpoints."""
        return self.rank == 0

    def sum(self, values: list[float]) -> list[float]:
        """``values`` summed over the ranks (float64)."""
        if self.world == 1:
            return values
        total = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(total)
        return total.tolist()

    def gather(self, value: Any) -> list[Any]:  # noqa: ANN401
        """Every rank's ``value`` (a picklable object), in rank order."""
        if self.world == 1:
            return [value]
        values: list[Any] = [None] * self.world
        dist.all_gather_object(values, value)
        return values


def setup(module: nn.Module, device: str | torch.device | None = None) -> Processes:
    """Join the process group if ``WORLD_SIZE > 1``; pick the device.

    The device is ``device`` if given; else, under torchrun with CUDA,
    ``cuda:LOCAL_RANK``; else the device of ``module``'s first parameter.
    A process group this function starts is destroyed at exit.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if device is not None:
        device = torch.device(device)
    elif world > 1 and torch.cuda.is_available():
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    else:
        device = next(iter(module.parameters()), torch.empty(0)).device
    if world > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        atexit.register(_destroy)
    if dist.is_initialized():
        return Processes(dist.get_rank(), dist.get_world_size(), device)
    return Processes(0, 1, device)


def spawn(worker: Callable[..., None], world: int, *args: Any) -> None:  # noqa: ANN401
    """Run ``worker(rank, world, *args)`` in ``world`` local processes, as torchrun would.

    Each process gets torchrun's variables (``MASTER_ADDR`` 127.0.0.1, a free
    ``MASTER_PORT``, ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``) and one torch
    thread, so that :func:`setup` joins them in one process group: DDP on one
    machine without torchrun, as in tests and benchmarks. ``worker`` must be
    picklable (a module-level function); an error in a rank is raised here.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_rank, args=(worker, world, port, args), nprocs=world)


def _rank(rank: int, worker: Callable[..., None], world: int, port: int, args: tuple) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world),
    )
    torch.set_num_threads(1)
    worker(rank, world, *args)


def _destroy() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def all_gather_batch(batch: Any, processes: Processes) -> Any:  # noqa: ANN401
    """The global batch from the ranks' shards (rows ``rank::world``), in its original order."""
    if processes.world == 1 or batch is None:
        return batch
    if isinstance(batch, tuple | list):
        return type(batch)(all_gather_batch(part, processes) for part in batch)
    if not isinstance(batch, Tensor):
        raise TypeError(f"cannot gather a batch of type {type(batch).__name__}")
    parts = [torch.empty_like(batch) for _ in range(processes.world)]
    dist.all_gather(parts, batch.contiguous())
    return torch.stack(parts, 1).flatten(0, 1)


def initialize_actnorm(
    module: nn.Module,
    loss: Callable[[nn.Module, Any], Tensor],
    batch: Any,  # noqa: ANN401
    processes: Processes,
) -> bool:
    """One no-grad pass of ``loss`` on the global batch if ``module`` has an uninitialised ActNorm.

    :class:`~sandflow.bijectors.ActNorm` sets itself from the first batch it
    sees. Given ``batch``, this rank's share of the first batch, every rank
    gathers the whole global batch and runs the pass on it before DDP wraps
    the module: every rank initialises alike, exactly as one process would.
    The pass runs in float32 and leaves the random generators as it found them.

    Returns:
        Whether a pass ran.
    """
    if not any(isinstance(m, ActNorm) and not m.initialized for m in module.modules()):
        return False
    batch = all_gather_batch(batch, processes)
    devices = [batch.device] if isinstance(batch, Tensor) and batch.is_cuda else []
    with torch.no_grad(), torch.random.fork_rng(devices=devices):
        loss(module, batch)
    return True
