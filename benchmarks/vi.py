"""Variational inference at a fixed budget: ELBO gap to the true log Z, and wall time.

The problems and the fitting loop are those of ``examples/flow_guides.py``: a
conjugate Gaussian (log Z in closed form), a banana-shaped posterior (log Z by
2-D quadrature) and Neal's funnel (log Z = 0). Every guide gets the same
budget: SVI with ``Trace_ELBO`` (16 vectorised particles), ClippedAdam at
5e-3 decaying 10x, 1500 steps, one torch thread; then its ELBO is estimated
with 20,000 particles. Flows have MLP conditioners of 32x32 and 4 to 6 layers.

Guides: sandflow's realnvp, nsf and maf (``iaf=True``) passed to Pyro's
``AutoNormalizingFlow``; Pyro's ``AutoNormal`` (mean field, the floor),
``AutoIAFNormal`` and its spline-coupling flow
(``pyro.distributions.transforms.spline_coupling``, with reversals between
couplings) in ``AutoNormalizingFlow``; zuko's ``NSF`` (a masked autoregressive
spline flow), wrapped as a Pyro transform module.

``python -m benchmarks.vi`` writes ``benchmarks/results_vi.md``;
``SANDFLOW_BENCH_VI_STEPS`` changes the budget, ``SANDFLOW_BENCH_VI_SEEDS``
(default 2) the number of seeds averaged.
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path

import pyro
import pyro.distributions.transforms as T
import torch
from pyro.distributions.torch_transform import ComposeTransformModule, TransformModule
from pyro.infer.autoguide import AutoNormalizingFlow
from torch.distributions import constraints

from benchmarks.run import environment
from examples.flow_guides import GUIDES, PROBLEMS, elbo_gap, fit

STEPS = int(os.environ.get("SANDFLOW_BENCH_VI_STEPS", "1500"))
SEEDS = int(os.environ.get("SANDFLOW_BENCH_VI_SEEDS", "2"))
PARTICLES = 20_000
RESULTS = Path(__file__).with_name("results_vi.md")


def pyro_spline_coupling(model, layers=4):
    def init_transform(dim):
        parts = []
        for i in range(layers):
            if i:
                parts.append(T.Permute(torch.arange(dim - 1, -1, -1)))
            parts.append(T.spline_coupling(dim, hidden_dims=[32, 32], count_bins=8, bound=5.0))
        return ComposeTransformModule(parts)

    return AutoNormalizingFlow(model, init_transform)


class ZukoTransform(TransformModule):
    """A zuko flow (data to noise) as a Pyro transform module from noise to data."""

    domain = constraints.real_vector
    codomain = constraints.real_vector
    bijective = True

    def __init__(self, flow):
        super().__init__(cache_size=1)
        self.flow = flow

    def _call(self, z):
        return self.flow.transform().inv(z)

    def _inverse(self, x):
        return self.flow.transform()(x)

    def log_abs_det_jacobian(self, z, x):
        return -self.flow.transform().log_abs_det_jacobian(x, z)


def zuko_nsf(model):
    import zuko

    def init_transform(dim):
        return ZukoTransform(zuko.flows.NSF(dim, transforms=4, hidden_features=(32, 32), bins=8))

    return AutoNormalizingFlow(model, init_transform)


def candidates():
    guides = dict(GUIDES)
    guides["spline coupling (Pyro)"] = pyro_spline_coupling
    try:
        import zuko  # noqa: F401
    except ImportError:
        print("zuko is not installed: its NSF is skipped (pip install zuko)")
    else:
        guides["NSF (zuko)"] = zuko_nsf
    return guides


def run_one(problem, name, make_guide, seed):
    model, log_z_fn = PROBLEMS[problem]
    pyro.set_rng_seed(seed)
    guide = make_guide(model)
    seconds = fit(model, guide, steps=STEPS)
    parameters = sum(p.numel() for p in guide.parameters())
    return elbo_gap(model, guide, log_z_fn(), PARTICLES), seconds, parameters


def table(results, guides):
    problems = list(PROBLEMS)
    header = "| guide | parameters | " + " | ".join(
        f"{p}: gap (nats) | {p}: fit (s)" for p in problems
    )
    lines = [header + " |", "|---|---:|" + "---:|---:|" * len(problems)]
    for name in guides:
        cells = [f"{results[problems[0], name]['parameters']:,}"]
        for problem in problems:
            entry = results[problem, name]
            gaps = " / ".join(f"{g:.3f}" for g in entry["gaps"])
            cells += [f"{statistics.mean(entry['gaps']):.3f} ({gaps})", f"{entry['seconds']:.1f}"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        guides = candidates()
        results = {}
        for problem in PROBLEMS:
            for name, make_guide in guides.items():
                runs = [run_one(problem, name, make_guide, seed) for seed in range(SEEDS)]
                results[problem, name] = {
                    "gaps": [gap for gap, _, _ in runs],
                    "seconds": statistics.median(seconds for _, seconds, _ in runs),
                    "parameters": runs[0][2],
                }
                print(f"{problem:8} {name:24} gaps {results[problem, name]['gaps']}", flush=True)
    finally:
        torch.set_num_threads(threads)
    text = "\n".join(
        [
            "# sandflow variational-inference benchmark",
            "",
            environment(),
            f"* This benchmark: 1 torch thread, {STEPS} SVI steps per fit, 16 particles, "
            f"{SEEDS} seeds",
            "",
            "## ELBO gap to the true log Z at a fixed budget",
            "",
            "Gap = log Z - ELBO = KL(q || posterior) in nats (lower is better; the",
            f"ELBO from {PARTICLES:,} particles, standard error at most about 0.01). Mean over",
            "seeds, each seed in brackets; fit time is the median wall time of the",
            f"{STEPS} SVI steps. Log Z: gaussian in closed form, banana by 2-D",
            "quadrature, funnel exactly 0.",
            "",
            table(results, guides),
            "",
        ]
    )
    RESULTS.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
