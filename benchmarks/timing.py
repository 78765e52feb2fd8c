"""Shared timing for the benchmarks: interleaved round-robin blocks, medians, per-round ratios.

Every candidate is warmed up (a few untimed calls, which also compile a
``torch.compile`` function), calibrated to fill a block of about
``block_seconds``, and then timed in blocks, round-robin over the candidates
with the order rotated every round, so that a slow phase of the machine falls
on every candidate alike. Ratios between two candidates are taken per round
(both timed within the same round) and their median reported.

On the CPU the measure is the process's CPU time: with one torch thread it is
the work done, and it stays meaningful when other jobs share the cores; the
wall time is kept to say how loaded the machine was. On a GPU the measure is
the wall time between two ``torch.cuda.synchronize`` calls.

Inside the timed rounds ``torch._dynamo`` raises on any recompilation, so a
compiled candidate is timed on the graphs compiled during its warm-up.
"""

from __future__ import annotations

import gc
import os
import statistics
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field

import torch

__all__ = ["Timings", "calibrate", "interleaved", "load_average"]

ROUNDS = int(os.environ.get("SANDFLOW_BENCH_ROUNDS", "20"))  # 10 left medians noisy here
BLOCK_SECONDS = float(os.environ.get("SANDFLOW_BENCH_BLOCK", "0.12"))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _clock(device: torch.device) -> Callable[[], float]:
    return time.perf_counter if device.type == "cuda" else time.process_time


def _block(fn: Callable[[], object], iters: int, device: torch.device) -> tuple[float, float]:
    """Measured and wall seconds per call over ``iters`` calls, garbage collector paused."""
    clock = _clock(device)
    gc.disable()
    try:
        _sync(device)
        wall, measured = time.perf_counter(), clock()
        for _ in range(iters):
            fn()
        _sync(device)
        measured, wall = clock() - measured, time.perf_counter() - wall
        return measured / iters, wall / iters
    finally:
        gc.enable()


def calibrate(
    fn: Callable[[], object],
    block_seconds: float = BLOCK_SECONDS,
    device: torch.device | str = "cpu",
    *,
    warmup: int = 3,
    min_calls: int = 3,
    min_seconds: float = 0.05,
) -> int:
    """Call ``fn`` ``warmup`` times untimed, then return the call count that fills one block.

    The warm-up covers compiling, a flow's eager first pass and CUDA-graph
    recording. The estimate comes from at least ``min_calls`` calls and
    ``min_seconds``; the count is at least 1.
    """
    device = torch.device(device)
    clock = _clock(device)
    for _ in range(warmup):
        fn()
    _sync(device)
    calls, start = 0, clock()
    while calls < min_calls or clock() - start < min_seconds:
        fn()
        _sync(device)
        calls += 1
    per_call = (clock() - start) / calls
    return max(1, round(block_seconds / per_call))


@dataclass
class Timings:
    """Seconds per call of every ``(candidate, operation)``, one entry per round."""

    measured: dict[tuple[str, Hashable], list[float]] = field(default_factory=dict)
    wall: dict[tuple[str, Hashable], list[float]] = field(default_factory=dict)

    def median(self, name: str, op: Hashable) -> float | None:
        """Median over rounds of the seconds per call (None if never timed)."""
        times = self.measured.get((name, op))
        return statistics.median(times) if times else None

    def ratios(self, name: str, reference: str, op: Hashable) -> list[float]:
        """Per-round speed of ``name`` relative to ``reference``: reference time / name time."""
        times, base = self.measured.get((name, op)), self.measured.get((reference, op))
        if not times or not base:
            return []
        return [b / t for b, t in zip(base, times, strict=True)]

    def ratio(self, name: str, reference: str, op: Hashable) -> float | None:
        """Median over rounds of :meth:`ratios` (> 1: ``name`` is faster)."""
        ratios = self.ratios(name, reference, op)
        return statistics.median(ratios) if ratios else None

    def spread(self, name: str, reference: str, ops: list[Hashable]) -> float:
        """Largest interquartile range over ``ops`` of the per-round ratio."""
        worst = 0.0
        for op in ops:
            ratios = self.ratios(name, reference, op)
            if len(ratios) >= 4:
                q1, _, q3 = statistics.quantiles(ratios, n=4)
                worst = max(worst, q3 - q1)
        return worst

    def load(self) -> float:
        """Median wall time / measured time over all blocks (1.00 on an idle CPU)."""
        ratios = [
            w / m
            for key, walls in self.wall.items()
            for w, m in zip(walls, self.measured[key], strict=True)
            if m > 0
        ]
        return statistics.median(ratios) if ratios else float("nan")


def interleaved(
    work: Mapping[Hashable, Mapping[str, Callable[[], object]]],
    rounds: int = ROUNDS,
    block_seconds: float = BLOCK_SECONDS,
    device: torch.device | str = "cpu",
    *,
    warmup: int = 3,
    min_calls: int = 3,
) -> Timings:
    """Time ``work[op][name]`` for every operation and candidate, interleaved.

    Each callable is warmed up and calibrated (:func:`calibrate`), then every
    round times one block per operation and candidate, candidates in an
    order rotated by one each round. Recompiling inside the timed rounds is an
    error (``torch._dynamo.config.error_on_recompile``).

    Example:
        >>> work = {"add": {"a": lambda: 1 + 1, "b": lambda: 2 + 2}}
        >>> t = interleaved(work, rounds=2, block_seconds=0.001, warmup=1, min_calls=1)
        >>> len(t.measured["a", "add"]), t.ratio("a", "b", "add") > 0
        (2, True)
    """
    device = torch.device(device)
    timings = Timings()
    iters = {
        (name, op): calibrate(fn, block_seconds, device, warmup=warmup, min_calls=min_calls)
        for op, candidates in work.items()
        for name, fn in candidates.items()
    }
    gc.collect()
    gc.freeze()  # the models stay alive: later collections need not walk them
    try:
        with torch._dynamo.config.patch(error_on_recompile=True):
            for r in range(rounds):
                for op, candidates in work.items():
                    names = list(candidates)
                    shift = r % len(names)
                    for name in names[shift:] + names[:shift]:
                        measured, wall = _block(candidates[name], iters[name, op], device)
                        timings.measured.setdefault((name, op), []).append(measured)
                        timings.wall.setdefault((name, op), []).append(wall)
    finally:
        gc.unfreeze()
    return timings


def load_average() -> str:
    """The 1, 5 and 15 minute load averages of the machine, as ``uptime`` prints them."""
    try:
        return ", ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "unknown"
