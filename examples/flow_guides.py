"""SVI with flow guides on a Gaussian, a banana-shaped posterior and Neal's funnel.

sandflow's flows (RealNVP, NSF and IAF) go into Pyro's ``AutoNormalizingFlow``
through ``init_transform_fn``; Pyro's ``AutoNormal`` (mean field) and
``AutoIAFNormal`` are the references. Every guide is fitted by ``SVI`` with
``Trace_ELBO`` for the same number of steps, then its ELBO is estimated with
many particles; the table lists the gap to the true log evidence,
``log Z - ELBO = KL(q || posterior) >= 0``.

* gaussian: ``z ~ N(0, I_2)``, ``x_j ~ N(W z, 0.7^2 I)`` for five
  observations; the posterior is a correlated Gaussian and ``log Z`` is in
  closed form (every flow can be exact here; mean field cannot).
* banana: ``z ~ N(0, I_2)``, ``y_i ~ N(z_1 + z_2^2, 0.4^2)`` for four
  observations; the posterior is a curved ridge and ``log Z`` comes from 2-D
  quadrature.
* funnel (Neal, 2003): ``v ~ N(0, 3^2)``, ``x ~ N(0, e^v)``; normalised, so
  ``log Z = 0`` exactly and the gap is ``-ELBO``.

Run ``python examples/flow_guides.py`` (about three minutes on 2 cores), or with
``--quick`` (or ``SANDFLOW_QUICK=1``) for a few seconds of smoke test.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from collections.abc import Callable

import pyro
import pyro.distributions as dist
import torch
from pyro.infer import SVI, Trace_ELBO
from pyro.infer.autoguide import AutoIAFNormal, AutoNormal, AutoNormalizingFlow

from sandflow import flows

W = torch.tensor([[1.0, 0.8], [-0.4, 1.0]])
DATA = torch.tensor([[1.0, 0.3], [0.8, -0.2], [1.5, 0.1], [0.6, 0.4], [1.2, -0.5]])
OBSERVATIONS = torch.tensor([1.0, 1.3, 0.7, 1.1])
NOISE = 0.4


def gaussian_model(x=DATA):
    z = pyro.sample("z", dist.Normal(torch.zeros(2), 1.0).to_event(1))
    with pyro.plate("data", len(x)):
        pyro.sample("x", dist.Normal(z @ W.T, 0.7).to_event(1), obs=x)


def gaussian_log_z(x=DATA):
    """``log p(x) = log p(x | m) + log p(m) - log p(m | x)`` at the posterior mean ``m``."""
    covariance = torch.linalg.inv(torch.eye(2) + len(x) * W.T @ W / 0.7**2)
    mean = covariance @ W.T @ x.sum(0) / 0.7**2
    prior = dist.Normal(torch.zeros(2), 1.0).to_event(1).log_prob(mean)
    likelihood = dist.Normal(mean @ W.T, 0.7).log_prob(x).sum()
    return (prior + likelihood - dist.MultivariateNormal(mean, covariance).log_prob(mean)).item()


def banana_model(y=OBSERVATIONS):
    z = pyro.sample("z", dist.Normal(torch.zeros(2), 1.0).to_event(1))
    with pyro.plate("obs", len(y)):
        pyro.sample("y", dist.Normal(z[..., 0] + z[..., 1] ** 2, NOISE), obs=y)


def banana_log_z(step=0.02, limit=7.0):
    """``log p(y)`` by the midpoint rule on ``[-limit, limit]^2`` (float64)."""
    grid = torch.arange(-limit + step / 2, limit, step, dtype=torch.float64)
    z = torch.cartesian_prod(grid, grid)
    mean = (z[:, 0] + z[:, 1] ** 2)[:, None]
    log_joint = dist.Normal(0.0, 1.0).log_prob(z).sum(-1)
    log_joint = log_joint + dist.Normal(mean, NOISE).log_prob(OBSERVATIONS.double()).sum(-1)
    return (torch.logsumexp(log_joint, 0) + 2 * math.log(step)).item()


def funnel_model():
    v = pyro.sample("v", dist.Normal(0.0, 3.0))
    pyro.sample("x", dist.Normal(0.0, torch.exp(v / 2)))


PROBLEMS: dict[str, tuple[Callable, Callable[[], float]]] = {
    "gaussian": (gaussian_model, gaussian_log_z),
    "banana": (banana_model, banana_log_z),
    "funnel": (funnel_model, lambda: 0.0),
}


def sandflow_guide(builder, **kwargs):
    """A guide factory: Pyro's AutoNormalizingFlow around a sandflow chain."""

    def init_transform(dim):
        # one forward pass per sample: the cache hands log_prob the pair it just computed
        return builder(dim, **kwargs).bijector.with_cache()

    return lambda model: AutoNormalizingFlow(model, init_transform)


GUIDES = {
    "AutoNormal (Pyro)": AutoNormal,
    "AutoIAFNormal (Pyro)": lambda model: AutoIAFNormal(
        model, hidden_dim=[32, 32], num_transforms=4
    ),
    "sandflow realnvp": sandflow_guide(flows.realnvp, layers=6, hidden=(32, 32)),
    "sandflow nsf": sandflow_guide(flows.nsf, layers=4, hidden=(32, 32)),
    "sandflow maf (iaf=True)": sandflow_guide(flows.maf, layers=4, hidden=(32, 32), iaf=True),
}


def fit(model, guide, *, steps, particles=16, lr=5e-3):
    """Fit ``guide`` by SVI (Trace_ELBO, Adam decaying 10x); return the wall time in seconds."""
    pyro.clear_param_store()
    optimizer = pyro.optim.ClippedAdam({"lr": lr, "lrd": 0.1 ** (1 / steps)})
    elbo = Trace_ELBO(num_particles=particles, vectorize_particles=True, max_plate_nesting=1)
    svi = SVI(model, guide, optimizer, elbo)
    start = time.perf_counter()
    for _ in range(steps):
        svi.step()
    return time.perf_counter() - start


@torch.no_grad()
def elbo_gap(model, guide, log_z, particles=20_000):
    """``log Z - ELBO`` with the ELBO estimated from ``particles`` samples of the guide."""
    elbo = Trace_ELBO(num_particles=particles, vectorize_particles=True, max_plate_nesting=1)
    return log_z + elbo.loss(model, guide)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds of smoke test")
    quick = parser.parse_args(argv).quick or os.environ.get("SANDFLOW_QUICK") == "1"
    steps, particles = (30, 200) if quick else (1500, 20_000)
    torch.set_num_threads(1)  # tiny networks: one thread is the fastest on a CPU
    rows = []
    for problem, (model, log_z_fn) in PROBLEMS.items():
        log_z = log_z_fn()
        for name, make_guide in GUIDES.items():
            pyro.set_rng_seed(0)
            guide = make_guide(model)
            seconds = fit(model, guide, steps=steps)
            rows.append((problem, name, elbo_gap(model, guide, log_z, particles), seconds))
    print(f"ELBO gap log Z - ELBO in nats after {steps} SVI steps (16 particles)\n")
    print(f"| {'problem':8} | {'guide':24} | {'gap':>7} | {'fit (s)':>7} |")
    print(f"|{'-' * 10}|{'-' * 26}|{'-' * 8}:|{'-' * 8}:|")
    for problem, name, gap, seconds in rows:
        print(f"| {problem:8} | {name:24} | {gap:7.3f} | {seconds:7.1f} |")
    return rows


if __name__ == "__main__":
    main()
