"""Flow speed: sandflow against Pyro, zuko, nflows, normflows and a plain-torch reference.

One process, every library built with the same architecture and hidden sizes,
runs interleaved round-robin (the library order rotates every round) after a
warm-up, the median over rounds reported. ``python -m benchmarks.flows``
writes ``benchmarks/results_flows.md``; ``python -m benchmarks.run`` includes
it in ``benchmarks/results.md``.

Environment knobs: ``SANDFLOW_BENCH_ROUNDS`` (default 10) and
``SANDFLOW_BENCH_BLOCK`` (seconds per timed block, default 0.12).
"""

from __future__ import annotations

import gc
import math
import os
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from benchmarks import plain

THREADS = 1
ROUNDS = int(os.environ.get("SANDFLOW_BENCH_ROUNDS", "10"))
BLOCK_SECONDS = float(os.environ.get("SANDFLOW_BENCH_BLOCK", "0.12"))
LEARNING_RATE = 1e-4
LIBRARIES = ("sandflow", "plain torch", "pyro", "zuko", "nflows", "normflows")
RESULTS = Path(__file__).with_name("results_flows.md")


@dataclass
class Model:
    """One library's flow, behind the three calls the benchmark times."""

    module: nn.Module
    log_prob: Callable[[Tensor], Tensor]
    sample: Callable[[int], Tensor]


@dataclass
class Case:
    """One architecture: a builder per library (missing: n/a) and the data."""

    title: str
    batch: int
    data: Callable[[int], Tensor]
    builders: dict[str, Callable[[], Model]]
    latency: bool = True
    timings: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    wall: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    params: dict[str, int] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)


def _zero_last(linear: nn.Module) -> None:
    nn.init.zeros_(linear.weight)
    nn.init.zeros_(linear.bias)


# -- RealNVP, one builder per library ---------------------------------------------------


def realnvp_sandflow(features: int, hidden: tuple[int, ...], layers: int) -> Model:
    import sandflow.flows

    flow = sandflow.flows.realnvp(features, layers=layers, hidden=hidden)
    return Model(flow, lambda x: flow().log_prob(x), lambda n: flow().sample((n,)))


def realnvp_plain(features: int, hidden: tuple[int, ...], layers: int) -> Model:
    flow = plain.RealNVP(features, layers, hidden)
    return Model(flow, flow.log_prob, flow.sample)


def realnvp_pyro(features: int, hidden: tuple[int, ...], layers: int) -> Model:
    import pyro.distributions as dist
    import pyro.distributions.transforms as T
    from pyro.nn import DenseNN

    half = features // 2
    swap = torch.roll(torch.arange(features), features - half)
    parts: list[T.TransformModule] = []
    for i in range(layers):
        if i:
            parts.append(T.Permute(swap))
        net = DenseNN(half, list(hidden), param_dims=[features - half, features - half])
        _zero_last(net.layers[-1])
        parts.append(T.AffineCoupling(half, net))
    base = dist.Normal(torch.zeros(features), torch.ones(features)).to_event(1)
    flow = dist.TransformedDistribution(base, parts)
    modules = nn.ModuleList(p for p in parts if isinstance(p, nn.Module))
    return Model(modules, flow.log_prob, lambda n: flow.sample((n,)))


def realnvp_zuko(features: int, hidden: tuple[int, ...], layers: int) -> Model:
    from zuko.distributions import DiagNormal
    from zuko.flows.coupling import GeneralCouplingTransform
    from zuko.lazy import Flow, UnconditionalDistribution

    first = torch.arange(features) < features // 2
    transforms = []
    for i in range(layers):
        mask = first if i % 2 == 0 else ~first
        transform = GeneralCouplingTransform(features, mask=mask, hidden_features=hidden)
        _zero_last(transform.hyper[-1])
        transforms.append(transform)
    zeros, ones = torch.zeros(features), torch.ones(features)
    flow = Flow(transforms, UnconditionalDistribution(DiagNormal, zeros, ones, buffer=True))
    return Model(flow, lambda x: flow().log_prob(x), lambda n: flow().sample((n,)))


class _NflowsNet(nn.Sequential):
    """An nn.Sequential accepting the ``context`` argument nflows passes to its nets."""

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        return super().forward(x)


def _nflows_mlp(hidden: tuple[int, ...]) -> Callable[[int, int], nn.Module]:
    def create(n_in: int, n_out: int) -> nn.Module:
        return _NflowsNet(*plain.mlp(n_in, n_out, hidden))

    return create


def _nflows_convnet(hidden: int) -> Callable[[int, int], nn.Module]:
    def create(n_in: int, n_out: int) -> nn.Module:
        return _NflowsNet(*plain.convnet(n_in, n_out, hidden))

    return create


def realnvp_nflows(features: int, hidden: tuple[int, ...], layers: int) -> Model:
    from nflows.distributions import StandardNormal
    from nflows.flows import Flow
    from nflows.transforms import AffineCouplingTransform, CompositeTransform

    second = (torch.arange(features) >= features // 2).int()
    transforms = [
        AffineCouplingTransform(second if i % 2 == 0 else 1 - second, _nflows_mlp(hidden))
        for i in range(layers)
    ]
    flow = Flow(CompositeTransform(transforms), StandardNormal([features]))
    return Model(flow, flow.log_prob, flow.sample)


def realnvp_normflows(features: int, hidden: tuple[int, ...], layers: int) -> Model:
    import normflows as nf

    half = features // 2
    flows = [
        nf.flows.AffineCouplingBlock(
            nf.nets.MLP([half, *hidden, 2 * (features - half)], init_zeros=True),
            scale=True,
            scale_map="exp",
            split_mode="channel" if i % 2 == 0 else "channel_inv",
        )
        for i in range(layers)
    ]
    flow = nf.NormalizingFlow(nf.distributions.DiagGaussian(features, trainable=False), flows)
    return Model(flow, flow.log_prob, lambda n: flow.sample(n)[0])


# -- Glow -------------------------------------------------------------------------------


def glow_sandflow(shape: tuple[int, int, int], levels: int, steps: int, hidden: int) -> Model:
    import sandflow.flows

    flow = sandflow.flows.glow(shape, levels=levels, steps=steps, hidden=hidden)
    return Model(flow, lambda x: flow().log_prob(x), lambda n: flow().sample((n,)))


def glow_plain(shape: tuple[int, int, int], levels: int, steps: int, hidden: int) -> Model:
    flow = plain.Glow(shape, levels, steps, hidden)
    return Model(flow, flow.log_prob, flow.sample)


def glow_normflows(shape: tuple[int, int, int], levels: int, steps: int, hidden: int) -> Model:
    import normflows as nf

    c, h, w = shape
    q0, flows, merges = [], [], []
    for i in range(levels):
        blocks = [
            nf.flows.GlowBlock(c * 2 ** (levels + 1 - i), hidden, split_mode="channel")
            for _ in range(steps)
        ]
        flows.append([*blocks, nf.flows.Squeeze()])
        if i > 0:
            merges.append(nf.flows.Merge())
            scale = 2 ** (levels - i)
            latent = (c * scale, h // scale, w // scale)
        else:
            latent = (c * 2 ** (levels + 1), h // 2**levels, w // 2**levels)
        q0.append(nf.distributions.GlowBase(latent))
    flow = nf.MultiscaleFlow(q0, flows, merges, class_cond=False)
    return Model(flow, lambda x: flow.log_prob(x, None), lambda n: flow.sample(n)[0])


def glow_nflows(shape: tuple[int, int, int], levels: int, steps: int, hidden: int) -> Model:
    from nflows.distributions import StandardNormal
    from nflows.flows import Flow
    from nflows.transforms import (
        ActNorm,
        AffineCouplingTransform,
        CompositeTransform,
        MultiscaleCompositeTransform,
        OneByOneConvolution,
        SqueezeTransform,
    )

    multiscale = MultiscaleCompositeTransform(levels)
    c, h, w = shape
    for _ in range(levels):
        c, h, w = 4 * c, h // 2, w // 2
        mask = (torch.arange(c) >= c // 2).int()
        parts: list[nn.Module] = [SqueezeTransform()]
        for _ in range(steps):
            coupling = AffineCouplingTransform(mask, _nflows_convnet(hidden))
            parts += [ActNorm(c), OneByOneConvolution(c), coupling]
        kept = multiscale.add_transform(CompositeTransform(parts), (c, h, w))
        if kept is not None:
            c, h, w = kept
    flow = Flow(multiscale, StandardNormal([math.prod(shape)]))
    return Model(flow, flow.log_prob, flow.sample)


# -- cases ------------------------------------------------------------------------------


def _vector_data(features: int) -> Callable[[int], Tensor]:
    mixing = torch.randn(features, features, generator=torch.Generator().manual_seed(1))
    mixing /= math.sqrt(features)

    def data(n: int) -> Tensor:
        return torch.randn(n, features, generator=torch.Generator().manual_seed(2)) @ mixing

    return data


def _image_data(shape: tuple[int, int, int]) -> Callable[[int], Tensor]:
    def data(n: int) -> Tensor:
        x = torch.rand(n, *shape, generator=torch.Generator().manual_seed(3))
        return x - 0.5

    return data


def _realnvp_case(features: int, hidden: tuple[int, ...], batch: int) -> Case:
    builders = {
        "sandflow": realnvp_sandflow,
        "plain torch": realnvp_plain,
        "pyro": realnvp_pyro,
        "zuko": realnvp_zuko,
        "nflows": realnvp_nflows,
        "normflows": realnvp_normflows,
    }
    width = "x".join(str(h) for h in hidden)
    return Case(
        title=f"RealNVP D={features} (8 affine couplings, MLP {width}), batch {batch}",
        batch=batch,
        data=_vector_data(features),
        builders={name: (lambda b=b: b(features, hidden, 8)) for name, b in builders.items()},
    )


def _glow_case(shape: tuple[int, int, int], hidden: int, batch: int) -> Case:
    builders = {
        "sandflow": glow_sandflow,
        "plain torch": glow_plain,
        "nflows": glow_nflows,
        "normflows": glow_normflows,
    }
    c, h, w = shape
    return Case(
        title=f"Glow {c}x{h}x{w} (2 levels x 4 steps, hidden {hidden}), batch {batch}",
        batch=batch,
        data=_image_data(shape),
        builders={name: (lambda b=b: b(shape, 2, 4, hidden)) for name, b in builders.items()},
        latency=False,
    )


def cases() -> list[Case]:
    """The three architectures of the benchmark."""
    return [
        _realnvp_case(64, (256, 256), 256),
        _realnvp_case(2, (64, 64), 4096),
        _glow_case((1, 8, 8), 256, 64),
    ]


# -- timing -----------------------------------------------------------------------------

OPS = ("train", "log_prob", "sample", "latency")
OP_LABELS = {
    "train": "training step (samples/s)",
    "log_prob": "log_prob, no grad (samples/s)",
    "sample": "sampling (samples/s)",
    "latency": "log_prob latency, batch 1 (µs)",
}


def _operations(model: Model, x: Tensor) -> dict[str, Callable[[], object]]:
    # Every call gets a fresh tensor, as with a new batch: Pyro's transforms cache the
    # last (x, y) pair by identity and would otherwise return the previous result.
    optimizer = torch.optim.Adam(model.module.parameters(), lr=LEARNING_RATE)
    n, one = x.shape[0], x[:1].clone()

    def train() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = -model.log_prob(x.clone()).mean()
        loss.backward()
        optimizer.step()

    def log_prob() -> Tensor:
        with torch.no_grad():
            return model.log_prob(x.clone())

    def sample() -> Tensor:
        with torch.no_grad():
            return model.sample(n)

    def latency() -> Tensor:
        with torch.no_grad():
            return model.log_prob(one.clone())

    return {"train": train, "log_prob": log_prob, "sample": sample, "latency": latency}


def _block(fn: Callable[[], object], iters: int) -> tuple[float, float]:
    """CPU and wall seconds per call over ``iters`` calls, garbage collector paused.

    The CPU time of the process is the measure: with one torch thread it is the
    work done, unaffected by other processes sharing the cores; the wall time is
    kept to report how loaded the machine was.
    """
    gc.disable()
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(iters):
            fn()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        return cpu / iters, wall / iters
    finally:
        gc.enable()


def _calibrate(fn: Callable[[], object]) -> int:
    """Warm ``fn`` up, then return the iteration count filling one block."""
    calls, start = 0, time.process_time()
    while calls < 3 or time.process_time() - start < 0.05:
        fn()
        calls += 1
    per_call = (time.process_time() - start) / calls
    return max(1, round(BLOCK_SECONDS / per_call))


def _finite(model: Model, x: Tensor) -> bool:
    with torch.no_grad():
        return bool(torch.isfinite(model.log_prob(x)).all())


def run_case(case: Case, rounds: int = ROUNDS) -> None:
    """Build every library's flow, warm up, then time the operations round-robin."""
    x = case.data(case.batch)
    ops = [op for op in OPS if op != "latency" or case.latency]
    work: dict[str, dict[str, tuple[Callable[[], object], int]]] = {}
    models: dict[str, Model] = {}
    for name in LIBRARIES:
        if name not in case.builders:
            case.notes[name] = "n/a"
            continue
        torch.manual_seed(0)
        try:
            model = case.builders[name]()
        except ImportError as error:
            case.notes[name] = f"not installed ({error.name})"
            continue
        models[name] = model
        case.params[name] = sum(p.numel() for p in model.module.parameters())
        calls = _operations(model, x)
        calls["train"]()  # the first density pass initialises ActNorm from data
        work[name] = {op: (calls[op], _calibrate(calls[op])) for op in ops}
    names = list(work)
    gc.collect()
    gc.freeze()  # the models stay alive: later collections need not walk them
    try:
        for r in range(rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            for op in ops:
                for name in order:
                    fn, iters = work[name][op]
                    cpu, wall = _block(fn, iters)
                    case.timings.setdefault((name, op), []).append(cpu)
                    case.wall.setdefault((name, op), []).append(wall)
    finally:
        gc.unfreeze()
    for name, model in models.items():
        if not _finite(model, x):
            case.notes[name] = "non-finite log_prob after training"


# -- report -----------------------------------------------------------------------------


def _value(case: Case, name: str, op: str) -> float | None:
    times = case.timings.get((name, op))
    if not times:
        return None
    median = statistics.median(times)
    return median * 1e6 if op == "latency" else case.batch / median


def _round_ratios(case: Case, name: str, op: str) -> list[float]:
    """Per-round speed of ``name`` relative to plain torch, both timed in the same round."""
    times, reference = case.timings.get((name, op)), case.timings.get(("plain torch", op))
    if not times or not reference:
        return []
    return [r / t for r, t in zip(reference, times, strict=True)]


def _speed_ratio(case: Case, name: str, op: str) -> float | None:
    """Median over rounds of the speed relative to plain torch (> 1: faster).

    For throughput rows that is the throughput ratio, for the latency row plain
    torch's latency over the library's: in both cases plain's time over the library's.
    """
    ratios = _round_ratios(case, name, op)
    return statistics.median(ratios) if ratios else None


def _cell(case: Case, name: str, op: str) -> str:
    value = _value(case, name, op)
    if value is None:
        return case.notes.get(name, "n/a")
    ratio = _speed_ratio(case, name, op)
    number = f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"
    return number if name == "plain torch" else f"{number} ({ratio:.2f}x)"


def _spread(case: Case, name: str) -> float:
    """Largest interquartile range, over the rows, of ``name``'s per-round ratio to plain."""
    worst = 0.0
    for op in OPS:
        ratios = _round_ratios(case, name, op)
        if len(ratios) >= 4:
            q1, _, q3 = statistics.quantiles(ratios, n=4)
            worst = max(worst, q3 - q1)
    return worst


def _load(case: Case) -> float:
    """Median ratio of wall-clock to CPU time per block: how much the cores were shared."""
    ratios = [
        w / c
        for key, walls in case.wall.items()
        for w, c in zip(walls, case.timings[key], strict=True)
        if c > 0
    ]
    return statistics.median(ratios) if ratios else float("nan")


def table(case: Case) -> str:
    """A markdown table for one case: one row per operation, one column per library."""
    names = [n for n in LIBRARIES if (n, "train") in case.timings or n in case.notes]
    lines = [
        f"### {case.title}",
        "",
        "| | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
        "| parameters | "
        + " | ".join(f"{case.params[n]:,}" if n in case.params else "" for n in names)
        + " |",
    ]
    for op in OPS:
        if op == "latency" and not case.latency:
            continue
        lines.append(f"| {OP_LABELS[op]} | " + " | ".join(_cell(case, n, op) for n in names) + " |")
    lines += [
        "",
        f"Interquartile range over rounds of sandflow's ratio to plain torch: at most "
        f"{_spread(case, 'sandflow'):.2f} on any row. Wall time / CPU time over all blocks: "
        f"{_load(case):.2f} (1.00 on an idle machine).",
    ]
    notes = {n: v for n, v in case.notes.items() if (n, "train") in case.timings}
    for name, note in notes.items():
        lines.append(f"{name}: {note}.")
    return "\n".join(lines)


def verdict(done: list[Case]) -> str:
    """The target: sandflow at or above plain torch on every row (latency: at or below)."""
    misses = []
    for case in done:
        for op in OPS:
            ratio = _speed_ratio(case, "sandflow", op)
            if ratio is not None and ratio < 1.0:
                misses.append(f"{case.title.split(' (')[0]}: {OP_LABELS[op]} at {ratio:.2f}x")
    if not misses:
        return "**Target met**: sandflow is at or above plain torch on every row."
    return "**Target missed** on: " + "; ".join(misses) + "."


CONVENTIONS = """\
### Setup and conventions

* One process; every library's flow is built from seed 0, warmed up (one
  training step, which also runs the data-dependent ActNorm initialisation,
  then at least 3 calls and 50 ms per operation), then timed in blocks of about
  {block} s, round-robin over the libraries with the order rotated each round,
  {rounds} rounds. The table gives the median over rounds of the time per
  call, and in brackets the median over rounds of the ratio to plain torch
  timed in the same round. `torch.set_num_threads({threads})`; the garbage
  collector is paused inside a block. Each call gets a fresh copy of the same
  batch (Pyro's transforms cache the last pair by tensor identity).
* Time is the process's CPU time per call: with one torch thread that is the
  work done, and it stays meaningful when other jobs share the cores (the
  wall/CPU ratio under each table says how loaded the machine was; on an idle
  machine the two agree).
* Throughput is samples per (CPU) second; the ratio in brackets is the speed relative
  to plain torch, so **above 1.00x is faster** (for the latency row: plain
  torch's latency divided by the library's).
* Training step: `zero_grad`, `-log_prob(x).mean()`, `backward`, Adam step
  (lr {lr}). log_prob and sampling run under `torch.no_grad()`.
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
"""


def report(done: list[Case]) -> str:
    """The markdown section for these results."""
    parts = ["## Normalizing flows", "", verdict(done), ""]
    for case in done:
        parts += [table(case), ""]
    parts.append(
        CONVENTIONS.format(block=BLOCK_SECONDS, rounds=ROUNDS, threads=THREADS, lr=LEARNING_RATE)
    )
    return "\n".join(parts)


def main() -> str:
    """Run the flow benchmark, write ``results_flows.md`` and return its section."""
    from benchmarks.run import environment  # imported here: run.py imports this module

    header = environment()
    torch.set_num_threads(THREADS)
    done = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for case in cases():
            start = time.perf_counter()
            run_case(case)
            print(f"{case.title}: {time.perf_counter() - start:.0f} s", flush=True)
            done.append(case)
    section = report(done)
    RESULTS.write_text(f"# sandflow flow benchmark\n\n{header}\n\n{section}")
    print(section)
    return section


if __name__ == "__main__":
    main()
