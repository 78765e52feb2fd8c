"""A Pyro model with a flow prior: learn the prior from samples, then infer through it.

1. Fit a neural spline flow to samples of the two-moons density by maximum
   likelihood, written as a Pyro model (``pyro.module`` and
   ``pyro.sample(..., obs=x)``, an empty guide, ``SVI``).
2. Use the trained flow as the prior of a latent point ``z`` in a second
   model, observed through Gaussian noise: ``y ~ N(z, 0.3^2 I)``. A flow guide
   (IAF, fitted by ``SVI``) approximates the posterior ``p(z | y)``; its mean
   and the ELBO are checked against self-normalised importance sampling with
   the prior as the proposal.

Run ``python examples/flow_prior.py`` (about a minute on 2 cores), or with
``--quick`` (or ``SANDFLOW_QUICK=1``) for a few seconds of smoke test.
"""

from __future__ import annotations

import argparse
import math
import os

import pyro
import pyro.distributions as dist
import torch
from pyro.infer import SVI, Trace_ELBO

from sandflow import data, flows

NOISE = 0.3


def fit_prior(steps):
    """Maximum likelihood of an NSF on two-moons samples, as a Pyro model fitted by SVI."""
    moons = data.toy("moons")
    prior = flows.nsf(2, layers=4, hidden=(64, 64))

    def density_model(x):
        pyro.module("prior", prior)
        with pyro.plate("data", len(x)):
            pyro.sample("x", prior(), obs=x)

    svi = SVI(density_model, lambda x: None, pyro.optim.Adam({"lr": 2e-3}), Trace_ELBO())
    for _ in range(steps):
        svi.step(moons.sample((256,)))
    with torch.no_grad():
        test = moons.sample((20_000,))
        kl = -prior().log_prob(test).mean().item() - moons.entropy().item()
    return prior, kl


def denoise(prior, y, steps):
    """Posterior of ``z`` given ``y = z + noise`` under the flow prior, by SVI with a flow guide."""
    prior.requires_grad_(False)  # the prior is fixed now

    def model(y):
        z = pyro.sample("z", prior())
        pyro.sample("y", dist.Normal(z, NOISE).to_event(1), obs=y)

    posterior = flows.maf(2, layers=3, hidden=(32, 32), iaf=True)

    def guide(y):
        pyro.module("posterior", posterior)
        pyro.sample("z", posterior())

    elbo = Trace_ELBO(num_particles=16, vectorize_particles=True, max_plate_nesting=0)
    optimizer = pyro.optim.ClippedAdam({"lr": 5e-3, "lrd": 0.1 ** (1 / steps)})
    svi = SVI(model, guide, optimizer, elbo)
    for _ in range(steps):
        svi.step(y)
    with torch.no_grad():
        z, log_q = posterior().rsample_and_log_prob((20_000,))
        log_p = prior().log_prob(z) + dist.Normal(z, NOISE).to_event(1).log_prob(y)
        return z.mean(0), (log_p - log_q).mean().item()


@torch.no_grad()
def importance_sampling(prior, y, n=200_000):
    """Posterior mean and ``log p(y)`` with prior samples as proposals."""
    z = prior().sample((n,))
    log_w = dist.Normal(z, NOISE).to_event(1).log_prob(y)
    weights = torch.softmax(log_w, 0)
    return (weights[:, None] * z).sum(0), (torch.logsumexp(log_w, 0) - math.log(n)).item()


def _point(z):
    return "(" + ", ".join(f"{v:.3f}" for v in z.tolist()) + ")"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds of smoke test")
    quick = parser.parse_args(argv).quick or os.environ.get("SANDFLOW_QUICK") == "1"
    torch.set_num_threads(1)  # tiny networks: one thread is the fastest on a CPU
    pyro.set_rng_seed(0)
    pyro.clear_param_store()
    prior, kl = fit_prior(steps=20 if quick else 2000)
    print(f"flow prior on two moons: KL(p || q) = {kl:.3f} nats")
    y = torch.tensor([0.5, 0.25])  # between the moons: the posterior is pulled onto one
    mean, elbo = denoise(prior, y, steps=20 if quick else 1000)
    reference_mean, log_evidence = importance_sampling(prior, y, n=2000 if quick else 200_000)
    print(f"observation y = {_point(y)}, noise {NOISE}")
    print(f"posterior mean: flow guide {_point(mean)}, by importance {_point(reference_mean)}")
    print(f"log p(y): importance sampling {log_evidence:.3f}, ELBO {elbo:.3f}")
    print(f"ELBO gap (KL(q || posterior)): {log_evidence - elbo:.3f} nats")
    return {"kl_prior": kl, "elbo_gap": log_evidence - elbo}


if __name__ == "__main__":
    main()
