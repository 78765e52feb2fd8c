"""Flow speed: sandflow, eager and compiled, against plain torch, Pyro, zuko, nflows and normflows.

Every library builds the same architecture with the same hidden sizes
(:mod:`benchmarks.libraries`); the operations are timed interleaved in one
process (:mod:`benchmarks.timing`) and every speed is reported as a ratio to
plain torch, eager (:mod:`benchmarks.plain`). ``python -m benchmarks.flows``
writes ``benchmarks/results_flows.md``; ``python -m benchmarks.run`` includes
it in ``benchmarks/results.md``.

Options: ``--device cpu cuda`` (default: both; CUDA is skipped, and said so,
where ``torch.cuda.is_available()`` is false), ``--only TEXT`` (the cases
whose title contains TEXT; the results file is then left alone). Environment:
``SANDFLOW_BENCH_ROUNDS`` (default 20), ``SANDFLOW_BENCH_BLOCK`` (seconds
per timed block, default 0.12), ``SANDFLOW_BENCH_DEVICES`` (as ``--device``).
"""

from __future__ import annotations

import argparse
import math
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import torch
from torch import Tensor

from benchmarks import libraries as lib
from benchmarks.report import cell, table, verdict
from benchmarks.timing import BLOCK_SECONDS, ROUNDS, Timings, interleaved, load_average

THREADS = 1
LEARNING_RATE = 1e-4
REFERENCE = "plain torch"
LIBRARIES = (
    "sandflow",
    "sandflow compiled",
    "plain torch",
    "plain torch compiled",
    "pyro",
    "zuko",
    "nflows",
    "normflows",
)
OPS = ("train", "log_prob", "sample", "latency")
LABELS = {
    "train": "training step (samples/s)",
    "log_prob": "log_prob, no grad (samples/s)",
    "sample": "sampling (samples/s)",
    "latency": "log_prob latency, batch 1 (µs)",
}
RESULTS = Path(__file__).with_name("results_flows.md")


@dataclass
class Case:
    """One architecture: a builder per library (called with ``device=``) and the data."""

    title: str
    batch: int
    data: Callable[[int], Tensor]
    builders: dict[str, Callable[..., lib.Model]]
    ops: tuple[str, ...] = OPS
    columns: tuple[str, ...] = LIBRARIES
    reference: str = REFERENCE
    timings: Timings = field(default_factory=Timings)
    params: dict[str, int] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)


def _vector_data(features: int) -> Callable[[int], Tensor]:
    mixing = torch.randn(features, features, generator=torch.Generator().manual_seed(1))
    mixing /= math.sqrt(features)

    def data(n: int) -> Tensor:
        return torch.randn(n, features, generator=torch.Generator().manual_seed(2)) @ mixing

    return data


def _image_data(shape: tuple[int, int, int]) -> Callable[[int], Tensor]:
    def data(n: int) -> Tensor:
        return torch.rand(n, *shape, generator=torch.Generator().manual_seed(3)) - 0.5

    return data


def _with_compiled(builders: dict[str, Callable[..., lib.Model]]) -> dict:
    return {
        "sandflow": builders["sandflow"],
        "sandflow compiled": lib.compiled(builders["sandflow"], lib.compiled_sandflow),
        **builders,
        "plain torch compiled": lib.compiled(builders["plain torch"], lib.compiled_plain),
    }


def _realnvp_case(features: int, hidden: tuple[int, ...], batch: int) -> Case:
    builders = _with_compiled(
        {
            "sandflow": lib.realnvp_sandflow,
            "plain torch": lib.realnvp_plain,
            "pyro": lib.realnvp_pyro,
            "zuko": lib.realnvp_zuko,
            "nflows": lib.realnvp_nflows,
            "normflows": lib.realnvp_normflows,
        }
    )
    width = "x".join(str(h) for h in hidden)
    return Case(
        title=f"RealNVP D={features} (8 affine couplings, MLP {width}), batch {batch}",
        batch=batch,
        data=_vector_data(features),
        builders={name: partial(b, features, hidden, 8) for name, b in builders.items()},
    )


def _glow_case(shape: tuple[int, int, int], hidden: int, batch: int) -> Case:
    builders = _with_compiled(
        {
            "sandflow": lib.glow_sandflow,
            "plain torch": lib.glow_plain,
            "nflows": lib.glow_nflows,
            "normflows": lib.glow_normflows,
        }
    )
    c, h, w = shape
    return Case(
        title=f"Glow {c}x{h}x{w} (2 levels x 4 steps, hidden {hidden}), batch {batch}",
        batch=batch,
        data=_image_data(shape),
        builders={name: partial(b, shape, 2, 4, hidden) for name, b in builders.items()},
        ops=OPS[:3],
    )


def _compiled_case(title: str, name: str, features: int, batch: int, **sizes: object) -> Case:
    """sandflow's ``name`` flow, eager against compiled (no plain-torch twin)."""
    eager = partial(lib.sandflow_model, name, features, **sizes)
    return Case(
        title=f"{title} D={features}, batch {batch}: sandflow compiled against eager",
        batch=batch,
        data=_vector_data(features),
        builders={
            "sandflow": eager,
            "sandflow compiled": lib.compiled(eager, lib.compiled_sandflow),
        },
        ops=OPS[:2],
        columns=("sandflow", "sandflow compiled"),
        reference="sandflow",
    )


def cases() -> list[Case]:
    """The architectures of the benchmark: three against every library, three compiled-only."""
    sizes = {"hidden": (256, 256), "layers": 8}
    return [
        _realnvp_case(64, (256, 256), 256),
        _realnvp_case(2, (64, 64), 4096),
        _glow_case((1, 8, 8), 256, 64),
        _compiled_case("NICE (8 additive couplings, MLP 256x256)", "nice", 64, 256, **sizes),
        _compiled_case("NSF (8 spline couplings, 8 bins, MLP 256x256)", "nsf", 64, 256, **sizes),
        _compiled_case("MAF (5 MADE layers 256x256)", "maf", 64, 256, **{**sizes, "layers": 5}),
    ]


def _operations(model: lib.Model, x: Tensor) -> dict[str, Callable[[], object]]:
    # Every call gets a fresh tensor, as with a new batch: Pyro's transforms cache the
    # last (x, y) pair by identity and would otherwise return the previous result.
    optimizer = torch.optim.Adam(model.module.parameters(), lr=LEARNING_RATE)
    n, one = x.shape[0], x[:1].clone()

    def train() -> None:
        optimizer.zero_grad(set_to_none=True)
        model.loss(x.clone()).backward()
        optimizer.step()

    @torch.no_grad()
    def log_prob() -> Tensor:
        return model.log_prob(x.clone())

    @torch.no_grad()
    def sample() -> Tensor:
        return model.sample(n)

    @torch.no_grad()
    def latency() -> Tensor:
        return model.latency(one.clone())

    return {"train": train, "log_prob": log_prob, "sample": sample, "latency": latency}


def run_case(case: Case, device: torch.device, rounds: int = ROUNDS) -> None:
    """Build every library's flow, initialise it on the data, then time the operations."""
    torch._dynamo.reset()  # every case compiles afresh, within the recompile limit
    x = case.data(case.batch).to(device)
    work: dict[str, dict[str, Callable[[], object]]] = {op: {} for op in case.ops}
    models = {}
    for name, build in case.builders.items():
        torch.manual_seed(0)
        try:
            model = build(device=device)
        except ImportError as error:
            case.notes[name] = f"not installed ({error.name})"
            continue
        models[name] = model
        case.params[name] = sum(p.numel() for p in model.module.parameters())
        with torch.no_grad():
            model.eager_log_prob(x)  # the first density pass initialises ActNorm layers
        calls = _operations(model, x)
        for op in case.ops:
            work[op][name] = calls[op]
    case.timings = interleaved(work, rounds, BLOCK_SECONDS, device)
    for name, model in models.items():
        with torch.no_grad():
            if not torch.isfinite(model.log_prob(x)).all():
                case.notes[name] = "non-finite log_prob after training"


# -- report -----------------------------------------------------------------------------


def _value(case: Case, name: str, op: str) -> float | None:
    median = case.timings.median(name, op)
    if median is None:
        return None
    return median * 1e6 if op == "latency" else case.batch / median


def _cell(case: Case, name: str, op: str) -> str:
    ratio = None if name == case.reference else case.timings.ratio(name, case.reference, op)
    return cell(_value(case, name, op), ratio, case.notes.get(name, "n/a"))


def _ratios(case: Case, name: str, reference: str) -> str:
    ratios = {op: case.timings.ratio(name, reference, op) for op in case.ops}
    parts = (f"{op} {ratio:.2f}x" for op, ratio in ratios.items() if ratio is not None)
    return f"Speed of {name} relative to {reference}: " + ", ".join(parts)


def case_table(case: Case) -> str:
    """One case: a row per operation, a column per library, speeds as ratios to the reference."""
    names = list(case.columns)
    params = [f"{case.params[n]:,}" if n in case.params else "" for n in names]
    rows = [["parameters", *params]]
    rows += [[LABELS[op], *(_cell(case, n, op) for n in names)] for op in case.ops]
    timed = [n for n in names if n != case.reference and (n, case.ops[0]) in case.timings.measured]
    spread = max((case.timings.spread(n, case.reference, list(case.ops)) for n in timed), default=0)
    lines = [f"### {case.title}", "", table(["", *names], rows), ""]
    if "plain torch compiled" in case.params and "sandflow compiled" in case.params:
        lines.append(_ratios(case, "sandflow compiled", "plain torch compiled") + ".")
    lines.append(
        f"Largest interquartile range over rounds of a ratio to {case.reference}: {spread:.2f}. "
        f"Wall time / measured time over all blocks: {case.timings.load():.2f} "
        "(1.00 on an idle CPU)."
    )
    lines += [f"{name}: {note}." for name, note in case.notes.items() if name in case.params]
    return "\n".join(lines)


def _short(case: Case) -> str:
    return case.title.split(" (")[0]


def _misses(
    done: list[Case], name: str, reference: str, floor: float, ops: tuple[str, ...] = OPS
) -> tuple[list[str], int]:
    misses, checked = [], 0
    for case in done:
        for op in ops:
            ratio = case.timings.ratio(name, reference, op)
            if ratio is not None:
                checked += 1
                if ratio < floor:
                    misses.append(f"{_short(case)} {LABELS[op].split(' (')[0]} at {ratio:.2f}x")
    return misses, checked


def verdicts(done: list[Case]) -> str:
    """The targets of the compiled and eager paths, met or missed with the measured gap."""
    against_plain = [case for case in done if case.reference == REFERENCE]
    targets = [
        (
            "sandflow eager at or above 1.00x plain torch on every row (batch-1 latency at "
            "or below plain's)",
            _misses(against_plain, "sandflow", REFERENCE, 1.0),
        ),
        (
            "sandflow compiled at or above 1.2x plain torch eager on the training step",
            _misses(against_plain, "sandflow compiled", REFERENCE, 1.2, ("train",)),
        ),
        (
            "sandflow compiled at or above 0.98x plain torch compiled on every row",
            _misses(against_plain, "sandflow compiled", "plain torch compiled", 0.98),
        ),
    ]
    return "\n".join(verdict(target, *result) for target, result in targets)


CONVENTIONS = """\
### Setup and conventions

* One process; every library's flow is built from seed 0 and its first
  density pass run on the batch (ActNorm's data-dependent initialisation),
  then every operation is warmed up (3 calls: compiling happens here) and
  timed in blocks of about {block} s, round-robin over the libraries with the
  order rotated each round, {rounds} rounds. The table gives the median over
  rounds of the time per call, and in brackets the median over rounds of the
  speed relative to plain torch eager timed in the same round: **above 1.00x
  is faster** (for the latency row: plain torch's latency divided by the
  library's). `torch.set_num_threads({threads})`; the garbage collector is
  paused inside a block. Each call gets a fresh copy of the same batch
  (Pyro's transforms cache the last pair by tensor identity).
* Time is the process's CPU time per call on the CPU (with one torch thread
  that is the work done, and it stays meaningful when other jobs share the
  cores: the wall/CPU ratio under each table says how loaded the machine was)
  and wall time between `torch.cuda.synchronize()` calls on a GPU.
* Training step: `zero_grad`, `-log_prob(x).mean()`, `backward`, Adam step
  (lr {lr}). log_prob and sampling run under `torch.no_grad()`.
* Compiled: `sandflow compiled` is `fast = sandflow.compile(flow)`, timed as
  `fast.log_prob(x)` (training: backward through it), `fast.sample((n,))`;
  `plain torch compiled` is `torch.compile(..., fullgraph=True)` of plain
  torch's `log_prob`, `sample` and training loss `-log_prob(x).mean()`. On
  CUDA the batch-1 latency row uses `mode="reduce-overhead"` (CUDA graphs)
  for both. Every graph is compiled in the warm-up; the timed rounds run with
  `torch._dynamo.config.error_on_recompile`, so a recompilation would stop the
  benchmark. The optimiser step is eager everywhere. plain torch compiled
  draws its sampling noise inside the graph (Inductor's generator);
  sandflow compiled draws it eagerly, so that a seeded sample equals the
  eager flow's.
* Each library is called the way its documentation does it: sandflow
  `flow().log_prob(x)` / `flow().sample((n,))` (a distribution built per call),
  zuko `flow().log_prob(x)` (likewise), Pyro a `TransformedDistribution` built
  once, nflows `flow.log_prob(x)` / `flow.sample(n)`, normflows
  `model.log_prob(x)` / `model.sample(n)` (which also returns log q).
* Plain torch (`benchmarks/plain.py`) is the same flow as sandflow written
  directly with `nn.Module`s; it matches sandflow's `log_prob` to float
  precision given the same weights.

Architecture differences that remain (hidden sizes and conditioner layers are
the same everywhere; the last conditioner layer starts at zero everywhere):

* RealNVP: sandflow and plain torch split the features into halves and
  alternate which half conditions; Pyro conditions on the first half and swaps
  the halves with a `Permute` between couplings (7 extra permutations);
  nflows and zuko use complementary half masks (index gathers and scatters
  instead of slices); normflows alternates `channel` / `channel_inv` splits.
* Log-scale bounds: sandflow and plain `3 tanh(s / 3)`; Pyro a hard clamp to
  [-5, 3]; zuko the soft clip `s / (1 + |s| / 6.9)`; nflows
  `log(sigmoid(s + 2) + 1e-3)`; normflows an unbounded `exp(s)` (RealNVP) and
  `sigmoid(s + 2)` (Glow).
* Direction: zuko and nflows map data to noise, so their `log_prob` runs their
  forward pass and sampling their inverse; the others sample forward.
* Glow: normflows' `MultiscaleFlow` has the same levels, squeezes, steps
  (coupling with a 3x3-1x1-3x3 ConvNet, LU 1x1 convolution, ActNorm) and split
  shapes, but its factored-out half gets an unconditional learned Gaussian
  (`GlowBase`) instead of sandflow's prior network conditioned on the kept
  half, hence fewer parameters; nflows (`MultiscaleCompositeTransform` of
  squeeze, ActNorm, `OneByOneConvolution`, affine coupling, conditioner
  written here) factors out to a fixed standard normal and has no prior
  network at all. Pyro has an LU 1x1 convolution
  (`GeneralizedChannelPermute`) but no ActNorm, squeeze or multiscale split,
  and zuko has no image transforms: both n/a.
* NICE, NSF and MAF have no plain-torch twin here: their tables give the
  compiled path's speed relative to the same flow run eagerly.
"""


def device_section(device: torch.device, done: list[Case], loads: list[str]) -> str:
    """The verdicts and tables of one device; ``loads``: at the start and after each case."""
    parts = [
        f"### Targets ({device.type})",
        "",
        verdicts(done),
        "",
        f"Run ending {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Load average of the "
        f"machine (1, 5, 15 min; `os.getloadavg`) at the start: {loads[0]}; after each case: "
        + "; ".join(loads[1:])
        + ".",
        "",
    ]
    for case in done:
        parts += [case_table(case), ""]
    return "\n".join(parts)


def run(devices: list[str], only: str | None = None) -> str:
    """Run the cases on every device available; return the markdown section."""
    torch.set_num_threads(THREADS)
    parts = ["## Normalizing flows", ""]
    for name in devices:
        device = torch.device(name)
        if device.type == "cuda" and not torch.cuda.is_available():
            parts += [
                "### CUDA",
                "",
                "Not run: no GPU on this machine (`torch.cuda.is_available()` is False). "
                "Where one is, these tables follow the CPU's (`python -m benchmarks.flows "
                "--device cuda` alone writes `results_flows_cuda.md`), the batch-1 latency "
                'rows compiled with `mode="reduce-overhead"`.',
                "",
            ]
            continue
        loads, done = [load_average()], []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for case in cases():
                if only is not None and only not in case.title:
                    continue
                start = time.perf_counter()
                run_case(case, device)
                print(f"{case.title} ({name}): {time.perf_counter() - start:.0f} s", flush=True)
                done.append(case)
                loads.append(load_average())
        parts.append(device_section(device, done, loads))
    parts.append(
        CONVENTIONS.format(block=BLOCK_SECONDS, rounds=ROUNDS, threads=THREADS, lr=LEARNING_RATE)
    )
    return "\n".join(parts)


def main(devices: list[str] | None = None, only: str | None = None) -> str:
    """Run the flow benchmark, write ``results_flows.md`` (all cases) and return its section.

    A run on CUDA alone writes ``results_flows_cuda.md`` instead.
    """
    from benchmarks.run import environment  # imported here: run.py imports this module

    devices = devices or os.environ.get("SANDFLOW_BENCH_DEVICES", "cpu cuda").split()
    section = run(devices, only)
    results = RESULTS if "cpu" in devices else RESULTS.with_name("results_flows_cuda.md")
    if only is None:
        results.write_text(f"# sandflow flow benchmark\n\n{environment()}\n\n{section}")
    print(section)
    return section


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", nargs="+", help="cpu and/or cuda (default: both)")
    parser.add_argument("--only", help="run only the cases whose title contains this text")
    args = parser.parse_args()
    main(args.device, args.only)
