"""The training loop, :func:`fit`, and its result, :class:`Run`."""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from sandflow.train import checkpoint
from sandflow.train import precision as amp
from sandflow.train.data import Data, batches
from sandflow.train.distributed import Processes, initialize_actnorm, setup

__all__ = ["Run", "fit", "nll"]

Loss = Callable[[nn.Module, Any], Tensor]


@dataclass
class Run:
    """What :func:`fit` returns.

    Attributes:
        module: the trained module (unwrapped from DDP).
        ema: its exponential moving average (torch's ``AveragedModel``), or ``None``.
        step: the number of steps done.
        history: the metrics rows, averaged over ranks, as written to ``metrics.jsonl``.
    """

    module: nn.Module
    ema: AveragedModel | None
    step: int
    history: list[dict[str, float]] = field(default_factory=list)

    @property
    def model(self) -> nn.Module:
        """The weights to evaluate and sample with: the EMA's if there is one."""
        return self.module if self.ema is None else self.ema.module


def nll(flow: nn.Module, x: Tensor) -> Tensor:
    r"""The maximum-likelihood loss of a flow, :math:`-\frac{1}{n}\sum_i \log q(x_i)`.

    Example:
        >>> flow = sandflow.flows.realnvp(2, layers=2, hidden=(8,))
        >>> nll(flow, torch.zeros(4, 2)).shape
        torch.Size([])
    """
    return -flow().log_prob(x).mean()


def _lr_factor(schedule: str, warmup: int, steps: int) -> Callable[[int], float]:
    if schedule not in ("cosine", "constant"):
        raise ValueError(f"schedule must be 'cosine' or 'constant', got {schedule!r}")

    def factor(step: int) -> float:
        ramp = min(1.0, (step + 1) / warmup) if warmup else 1.0
        if schedule == "constant":
            return ramp
        return ramp * 0.5 * (1 + math.cos(math.pi * min(step, steps) / steps))

    return factor


def _seed(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


class _Metrics:
    """Per-step losses, averaged over ``log_every`` steps and over ranks; JSON lines on rank 0."""

    def __init__(self, path: Path | None, start: int, processes: Processes) -> None:
        self.path, self.processes, self.history = path, processes, []
        self.losses: list[float] = []
        self.samples = 0
        self.begin = self.last = time.perf_counter()
        if path is not None and processes.main and path.exists():  # drop rows after a resume point
            rows = [line for line in path.read_text().splitlines() if line.strip()]
            kept = [line for line in rows if json.loads(line)["step"] <= start]
            path.write_text("".join(line + "\n" for line in kept))

    def log(self, step: int, lr: float, grad_norm: float | None) -> dict[str, float]:
        total, count, samples = self.processes.sum(
            [sum(self.losses), len(self.losses), self.samples]
        )
        now = time.perf_counter()
        row = {"step": step, "loss": total / count, "lr": lr}
        if grad_norm is not None:
            row["grad_norm"] = grad_norm
        row["samples_per_s"] = samples / (now - self.last)
        row["seconds"] = now - self.begin
        self.losses, self.samples, self.last = [], 0, now
        self.history.append(row)
        if self.path is not None and self.processes.main:
            with open(self.path, "a") as file:
                file.write(json.dumps(row) + "\n")
        return row


def _batch_size(batch: Any) -> int:  # noqa: ANN401
    while isinstance(batch, tuple | list) and batch:
        batch = batch[0]
    return len(batch) if isinstance(batch, Tensor) and batch.dim() else 0


def fit(
    module: nn.Module,
    loss: Loss,
    data: Data,
    *,
    steps: int,
    batch_size: int | None = None,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    schedule: str = "cosine",
    warmup: int = 0,
    clip: float | None = None,
    ema: float | None = None,
    precision: str = "float32",
    device: str | torch.device | None = None,
    out: str | Path | None = None,
    checkpoint_every: int = 1000,
    log_every: int = 100,
    resume: bool = False,
    seed: int | None = 0,
    config: Mapping[str, Any] | None = None,
    progress: bool | str = True,
) -> Run:
    r"""Minimise ``loss(module, batch)`` with AdamW; on every process that torchrun started.

    Each step draws this rank's share of the global batch, evaluates the loss
    (under ``torch.autocast`` for ``bf16``/``fp16``), backpropagates (DDP
    averages the gradients over ranks), clips the gradient norm, steps AdamW
    and the learning-rate schedule, and updates the EMA. The learning rate at
    step :math:`s` of :math:`S` is
    :math:`\text{lr}\cdot\min(1, \frac{s+1}{\text{warmup}})\cdot\frac{1+\cos(\pi s/S)}{2}`
    (``schedule="cosine"``) or without the cosine (``"constant"``).

    The loss receives the module to call, ``module`` itself or, under
    torchrun, its ``DistributedDataParallel`` wrapper: call that one (a
    closure over the bare module would bypass the gradient averaging, and
    is refused): ``lambda flow, x: -flow().log_prob(x).mean()``,
    ``lambda net, x: diffusion.loss(net, x)``.

    Under torchrun (``WORLD_SIZE > 1``) the process group is joined (gloo on
    CPU, NCCL on CUDA), each rank trains on rows ``rank::world`` of every
    global batch of ``batch_size``, and a module with an uninitialised
    :class:`~sandflow.bijectors.ActNorm` first sees the whole first global
    batch (gathered from the ranks) in one no-grad pass, so that every rank
    initialises it alike, as one process would. Metrics are averaged over
    ranks; rank 0 alone prints, logs and writes checkpoints.

    With ``out``, ``out/metrics.jsonl`` gets a JSON line every ``log_every``
    steps (mean loss since the last line, learning rate, gradient norm when
    clipping, samples per second) and ``out/checkpoint.pt`` is rewritten
    atomically every ``checkpoint_every`` steps and at the end (see
    :mod:`sandflow.train.checkpoint`). ``resume=True`` continues from it, on
    CPU bit for bit as if never stopped (same number of processes); a
    checkpoint of a different model or config is refused, naming the
    difference.

    Args:
        module: the model to train, in float32.
        loss: ``loss(model, batch) -> scalar tensor``.
        data: a tensor (rows are examples), a ``Dataset``, a ``DataLoader``
            (its dataset, ``collate_fn``, workers and ``pin_memory`` are used;
            the loop orders the examples), a ``step -> global batch``
            callable, or ``None`` for a loss without data (``batch`` is ``None``).
        steps: number of optimizer steps.
        batch_size: the global batch, split equally between the ranks
            (a tensor or dataset needs it; a DataLoader defaults to its own).
        lr: peak learning rate.
        weight_decay: AdamW's decoupled weight decay.
        schedule: ``"cosine"`` (decay to 0 at ``steps``) or ``"constant"``.
        warmup: steps of linear warm-up.
        clip: maximum gradient norm, or ``None`` for no clipping.
        ema: EMA decay (such as 0.999), or ``None`` for no EMA.
        precision: ``"float32"``, ``"bf16"`` or ``"fp16"`` (CUDA only; with a
            gradient scaler).
        device: where to train; by default ``cuda:LOCAL_RANK`` under
            torchrun with CUDA, else where ``module`` is.
        out: folder for ``checkpoint.pt`` and ``metrics.jsonl``.
        checkpoint_every: steps between checkpoints.
        log_every: steps between metrics rows.
        resume: continue from ``out/checkpoint.pt`` if it exists (without it,
            an existing checkpoint is an error rather than overwritten).
        seed: seeds torch, numpy and ``random`` with ``seed + rank`` at the
            start (``None``: leave them as they are) and the data order.
        config: further settings to record and check on resume (model
            name and sizes, data).
        progress: show a tqdm bar (a string is its description).

    Returns:
        The :class:`Run`.

    Raises:
        FloatingPointError: if the loss is not finite, naming the step (under
            torchrun on the rank that saw it; torchrun then stops the others).
        ValueError: for bad settings, or a checkpoint of another run.
        FileExistsError: if ``out`` holds a checkpoint and ``resume`` is false.

    Example:
        >>> flow = sandflow.flows.realnvp(2, layers=2, hidden=(16,))
        >>> data = sandflow.data.toy("moons").sample((512,))
        >>> run = fit(flow, nll, data,
        ...           steps=20, batch_size=64, ema=0.9, progress=False, log_every=10)
        >>> [row["step"] for row in run.history]
        [10, 20]
        >>> run.model().log_prob(data).shape
        torch.Size([512])
    """
    if steps < 1 or checkpoint_every < 1 or log_every < 1:
        raise ValueError(
            f"steps, checkpoint_every and log_every must be >= 1, got {steps}, "
            f"{checkpoint_every}, {log_every}"
        )
    if ema is not None and not 0 <= ema < 1:
        raise ValueError(f"ema is a decay in [0, 1), got {ema}")
    if resume and out is None:
        raise ValueError("resume=True needs out, the folder of the checkpoint")
    processes = setup(module, device)
    device = processes.device
    amp.check(precision, device)
    module.to(device)
    settings = {
        "module": type(module).__name__,
        "steps": steps,
        "batch_size": batch_size,
        "lr": lr,
        "weight_decay": weight_decay,
        "schedule": schedule,
        "warmup": warmup,
        "clip": clip,
        "ema": ema,
        "precision": precision,
        "seed": seed,
        "world_size": processes.world,
        **(config or {}),
    }
    optimizer = torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_factor(schedule, warmup, steps))
    scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None
    out = Path(out) if out is not None else None
    path = out / "checkpoint.pt" if out is not None else None
    state = None
    parts = {"model": module, "optimizer": optimizer, "scheduler": scheduler, "scaler": scaler}
    if path is not None and path.exists():
        if not resume:
            raise FileExistsError(
                f"{path} exists: resume=True continues that run, or choose another out"
            )
        state = checkpoint.load(path)
        checkpoint.check_resumable(state, settings, module, path)
        for name, part in parts.items():
            if part is not None:
                part.load_state_dict(state[name])
        checkpoint.restore_rng(state["rng"][processes.rank])
    elif seed is not None:
        _seed(seed + processes.rank)
    if out is not None and processes.main:
        out.mkdir(parents=True, exist_ok=True)
    start = state["step"] if state is not None else 0
    stream = batches(
        data,
        batch_size=batch_size,
        seed=seed or 0,
        rank=processes.rank,
        world=processes.world,
        start=start,
        stop=steps,
        device=device,
    )
    if start < steps:
        first = next(stream)
        initialize_actnorm(module, loss, first, processes)
        stream = _chain(first, stream)
    averaged = None
    if ema is not None:
        averaged = AveragedModel(module, multi_avg_fn=get_ema_multi_avg_fn(ema))
        if state is not None:
            averaged.load_state_dict(state["ema"])
    model: nn.Module = module
    calls = [0]
    if processes.world > 1:
        ids = [device.index] if device.type == "cuda" else None
        model = DistributedDataParallel(module, device_ids=ids)
        model.register_forward_pre_hook(lambda m, a: calls.__setitem__(0, calls[0] + 1))
    metrics = _Metrics(out / "metrics.jsonl" if out is not None else None, start, processes)
    description = progress if isinstance(progress, str) else None
    bar = tqdm(
        total=steps,
        initial=start,
        desc=description,
        leave=False,
        disable=not progress or not processes.main,
    )
    parameters = [p for p in module.parameters() if p.requires_grad]
    grad_norm = None
    with bar, amp.float32_outputs(module, precision):
        for step in range(start, steps):
            batch = next(stream)
            try:
                with amp.autocast(precision, device):
                    value = loss(model, batch).float()
            except ValueError as error:  # a validating log_prob refusing a diverged model
                if all(torch.isfinite(p).all() for p in parameters):
                    raise
                raise FloatingPointError(
                    f"the parameters are NaN or infinite at step {step}: lower the learning "
                    f"rate (lr={lr}) or clip the gradients (clip={clip}, try clip=1.0)"
                ) from error
            current = value.item()
            if not math.isfinite(current):
                raise FloatingPointError(
                    f"the loss is {current} at step {step}: lower the learning rate (lr={lr}) "
                    f"or clip the gradients (clip={clip}, try clip=1.0)"
                )
            if processes.world > 1 and calls[0] == 0:
                raise TypeError(
                    "the loss never called the module it was given: under torchrun it must "
                    "call that module (DDP's wrapper), not a closure over the bare module"
                )
            optimizer.zero_grad(set_to_none=True)
            (value if scaler is None else scaler.scale(value)).backward()
            if clip is not None:
                if scaler is not None:
                    scaler.unscale_(optimizer)
                grad_norm = nn.utils.clip_grad_norm_(parameters, clip).item()
            if scaler is None:
                optimizer.step()
            else:
                scaler.step(optimizer)
                scaler.update()
            scheduler.step()
            if averaged is not None:
                averaged.update_parameters(module)
            metrics.losses.append(current)
            metrics.samples += _batch_size(batch)
            done = step + 1
            bar.update()
            if done % log_every == 0 or done == steps:
                row = metrics.log(done, optimizer.param_groups[0]["lr"], grad_norm)
                bar.set_postfix(loss=f"{row['loss']:.4g}", refresh=False)
            if path is not None and (done % checkpoint_every == 0 or done == steps):
                rng = processes.gather(checkpoint.rng_state())
                if processes.main:
                    saved = {
                        name: None if part is None else part.state_dict()
                        for name, part in {**parts, "ema": averaged}.items()
                    }
                    position = {"step": done}
                    if epoch_size := _epoch_size(data, batch_size):
                        position.update(
                            zip(("epoch", "batch"), divmod(done, epoch_size), strict=True)
                        )
                    meta = {"step": done, "settings": settings, "rng": rng, "data": position}
                    checkpoint.save({**saved, **meta}, path)
    return Run(module, averaged, max(start, steps), metrics.history)


def _epoch_size(data: Data, batch_size: int | None) -> int:
    """Batches per epoch for data read in epochs, else 0."""
    dataset = getattr(data, "dataset", data)
    if isinstance(dataset, Tensor | torch.utils.data.Dataset) and hasattr(dataset, "__len__"):
        return len(dataset) // (batch_size or data.batch_size)
    return 0


def _chain(first: Any, rest: Any) -> Any:  # noqa: ANN401
    yield first
    yield from rest
