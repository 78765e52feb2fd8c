"""Training loop benchmark: Glow on the digits with 1 and 2 processes, and the loop's overhead.

* Scaling: samples per second of Glow training steps (``sandflow.train.fit``)
  on the 8x8 digits, one process against two (DDP on gloo, one torch thread
  each, the same global batch), runs alternated and repeated.
* Overhead: ``fit`` against a bare hand-written loop (the same AdamW steps,
  schedule, batches and ``loss.item()``) in one process, in interleaved
  blocks; the ratio is bare time / fit time per block (1.00 = no overhead).

Usage: ``python -m benchmarks.train`` (also run by ``python -m benchmarks.run``).
"""

from __future__ import annotations

import math
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.distributed as dist

import sandflow
from sandflow.train import fit
from sandflow.train.distributed import spawn

HERE = Path(__file__).parent
BATCH, STEPS, WARMUP = 128, 30, 10  # global batch; timed steps after the warm-up steps
ROUNDS = 2


def glow() -> torch.nn.Module:
    torch.manual_seed(0)
    return sandflow.flows.glow((1, 8, 8), levels=2, steps=4, hidden=64)


Loss = Callable[[torch.nn.Module, torch.Tensor], torch.Tensor]


def square(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model(x).square().mean()


def loss(model: torch.nn.Module, levels: torch.Tensor) -> torch.Tensor:
    return -model().log_prob(sandflow.data.dequantize(levels) - 0.5).mean()


def _worker(rank: int, world: int, batch: int, out: str) -> None:
    train = sandflow.data.digits().train
    calls, cpu = [0], []

    def timed_loss(model: torch.nn.Module, levels: torch.Tensor) -> torch.Tensor:
        calls[0] += 1
        if calls[0] == WARMUP + 2:  # the ActNorm pass, then WARMUP steps
            cpu.append(time.process_time())
        return loss(model, levels)

    run = fit(
        glow(),
        timed_loss,
        train,
        steps=WARMUP + STEPS,
        batch_size=batch,
        log_every=WARMUP,
        progress=False,
    )
    cpu.append(time.process_time())
    # rows every WARMUP steps: the first covers the warm-up, the rest the timed steps
    wall = sum(WARMUP * batch / row["samples_per_s"] for row in run.history[1:])
    busiest = max(_gather(cpu[1] - cpu[0]))
    if rank == 0:
        Path(out).write_text(f"{STEPS * batch / wall} {STEPS * batch / busiest}")
    if dist.is_initialized():
        dist.destroy_process_group()


def _gather(value: float) -> list[float]:
    if not dist.is_initialized():
        return [value]
    values: list[float] = [0.0] * dist.get_world_size()
    dist.all_gather_object(values, value)
    return values


def throughput(world: int, batch: int) -> tuple[float, float]:
    """Samples per second of ``world`` processes after the warm-up: wall, and CPU-bound.

    The second divides by the CPU time of the busiest rank: the rate with a
    free core per process, which the wall clock of a shared machine hides.
    """
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "rate")
        spawn(_worker, world, batch, out)
        wall, cpu = map(float, Path(out).read_text().split())
        return wall, cpu


def bare_loop(model: torch.nn.Module, loss: Loss, data: torch.Tensor, steps: int) -> None:
    """The hand-written loop that ``fit`` replaces: AdamW, cosine schedule, epochs of batches."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps))
    )
    per_epoch = len(data) // BATCH
    for step in range(steps):
        epoch, k = divmod(step, per_epoch)
        order = torch.randperm(len(data), generator=torch.Generator().manual_seed(epoch))
        batch = data[order[k * BATCH : (k + 1) * BATCH]]
        value = loss(model, batch)
        value.item()
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        optimizer.step()
        schedule.step()


def overhead(
    model: torch.nn.Module, loss: Loss, data: torch.Tensor, blocks: int, steps: int
) -> tuple[list[float], list[float]]:
    """CPU seconds per step of the bare loop and of ``fit``, in alternated blocks."""
    torch.set_num_threads(1)
    fit(model, loss, data, steps=2, batch_size=BATCH)  # warm up both paths
    bare_loop(model, loss, data, 2)
    times: dict[str, list[float]] = {"bare": [], "fit": []}
    for block in range(blocks):
        for name in ("fit", "bare") if block % 2 else ("bare", "fit"):
            start = time.process_time()
            if name == "fit":
                fit(model, loss, data, steps=steps, batch_size=BATCH)
            else:
                bare_loop(model, loss, data, steps)
            times[name].append((time.process_time() - start) / steps)
    return times["bare"], times["fit"]


def main() -> str:
    """Run both measurements; return the markdown section."""
    # (processes, global batch): the 2-process run against 1 process with the same global
    # batch, and against 1 process with the per-rank batch (the work each rank does)
    runs = {(1, BATCH): [], (2, BATCH): [], (1, BATCH // 2): []}
    for _ in range(ROUNDS):
        for world, batch in runs:
            runs[world, batch].append(throughput(world, batch))
    blocks, steps = 8, 20
    bare, looped = overhead(glow(), loss, sandflow.data.digits().train, blocks, steps)
    ratios = [b / f for b, f in zip(bare, looped, strict=True)]
    torch.manual_seed(0)
    tiny = torch.nn.Linear(2, 1)  # a step of almost nothing: what remains is the loop
    tiny_bare, tiny_fit = overhead(tiny, square, torch.randn(4096, 2), 10, 500)
    # load only ever adds time: the fastest block of each is the least disturbed
    extra = min(tiny_fit) - min(tiny_bare)
    glow_step = min(bare)
    wall = {k: statistics.median(r[0] for r in rates) for k, rates in runs.items()}
    cpu = {k: statistics.median(r[1] for r in rates) for k, rates in runs.items()}
    one, two, half = (1, BATCH), (2, BATCH), (1, BATCH // 2)
    load = os.getloadavg()[0]
    size = sum(p.numel() for p in glow().parameters())

    def row(key: tuple[int, int], name: str) -> str:
        rounds = [", ".join(f"{r[kind]:,.0f}" for r in runs[key]) for kind in (0, 1)]
        return (
            f"| {name} | {key[1]} | {wall[key]:,.0f} ({rounds[0]}) | {wall[key] / wall[one]:.2f}x "
            f"| {cpu[key]:,.0f} ({rounds[1]}) | {cpu[key] / cpu[one]:.2f}x |"
        )

    lines = [
        "## Training loop (`sandflow.train`)",
        "",
        f"Glow on the 8x8 digits (2 levels x 4 steps, hidden 64, {size:,} parameters), "
        f"global batch {BATCH}, CPU, one torch thread per process. **The machine is shared** "
        f"(load average {load:.1f} on {os.cpu_count()} cores at the end): wall-clock rates "
        "are noisy and two processes rarely get two free cores; the CPU-bound rate divides "
        "by the CPU time of the busiest rank, the rate with a free core per process.",
        "",
        "| processes | global batch | samples/s, wall (rounds) | vs 1 process "
        "| samples/s, CPU-bound (rounds) | vs 1 process |",
        "|---|---:|---:|---:|---:|---:|",
        row(one, "1"),
        row(two, "2 (DDP, gloo)"),
        row(half, "1, per-rank batch"),
        "",
        f"Two processes on a global batch of {BATCH} each train on {BATCH // 2}: against "
        f"twice the one-process rate at {BATCH // 2} (perfect scaling of that work), DDP "
        f"reaches **{cpu[two] / (2 * cpu[half]):.0%}** (CPU-bound). The rest of the gap to 2x "
        f"is the batch: a Glow step on {BATCH // 2} examples costs more than half of one on "
        f"{BATCH} (per-operation costs that do not shrink with the batch).",
        "",
        "Loop overhead, `fit` (defaults: tqdm bar, metrics every 100 steps) against a bare "
        "hand-written loop (same AdamW steps, schedule, batches and `loss.item()`), one "
        f"process, CPU time, {blocks} interleaved blocks of {steps} steps: bare/fit time "
        f"ratio median {statistics.median(ratios):.3f} (blocks: "
        f"{', '.join(f'{r:.3f}' for r in ratios)}), fastest block against fastest block "
        f"**{min(bare) / min(looped):.3f}** (1.000 = no overhead, target >= 0.97). "
        "Under this load the blocks scatter by more than the overhead, so it is also "
        "measured where it shows, on a model of almost no work (`Linear(2, 1)`, batch "
        f"{BATCH}; {min(tiny_bare) * 1e6:,.0f} us per bare step): `fit` adds "
        f"**{extra * 1e6:,.0f} us per step** (fastest of 10 alternated blocks of 500 steps "
        "each), "
        f"**{extra / glow_step:.2%}** of a Glow step ({glow_step * 1e3:,.0f} ms).",
        "",
        f"Setup: {ROUNDS} rounds over the three runs (torch.multiprocessing, env:// "
        f"rendezvous on localhost); each run does {WARMUP} warm-up steps (ActNorm "
        f"initialisation included), then {STEPS} timed ones; wall rates from the loop's own "
        "metrics (rank 0). No GPU was lent for this run, so there is no CUDA/bf16 row.",
    ]
    section = "\n".join(lines) + "\n"
    (HERE / "results_train.md").write_text(section)
    return section


if __name__ == "__main__":
    print(main())
