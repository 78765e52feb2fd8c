"""Demo: RealNVP on toy densities (KL gap) and Glow on the 8x8 digits (bits per dim)."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch.distributions import Distribution

from sandflow import data, flows, plot
from sandflow import train as training
from sandflow.flows import Flow

__all__ = ["run", "run_digits", "run_toy"]

#: Training budget per toy density: eight Gaussians needs a wider network and longer.
TOYS = {
    "eight_gaussians": {"steps": 8000, "hidden": 128, "batch": 1024, "lr": 1e-3},
    "moons": {"steps": 3000, "hidden": 64, "batch": 512, "lr": 2e-3},
}


def toy_nll_and_entropy(
    flow: Flow,
    target: Distribution,
    name: str,
    model: str,
    path: Path,
    *,
    test_size: int,
    resolution: int = 200,
) -> tuple[float, float]:
    """Test NLL of ``flow`` on ``test_size`` draws of ``target``, and ``target``'s entropy (nats).

    Their difference is the KL gap ``KL(target || flow)``. Writes to ``path`` the
    flow's density (titled ``model``) beside the true density ``name``.
    """
    with torch.no_grad():
        nll = -flow().log_prob(target.sample((test_size,))).mean().item()
    entropy = target.entropy().item()
    figure = plot.density_panels(
        [(f"true {name}", target.log_prob), (model, flow().log_prob)],
        resolution=resolution,
        title=f"{name}: KL gap {nll - entropy:.3f} nats",
    )
    figure.savefig(path, dpi=120)
    return nll, entropy


def run_toy(
    name: str,
    out: Path,
    *,
    steps: int,
    hidden: int = 64,
    batch: int = 512,
    lr: float = 2e-3,
    seed: int = 0,
    test_size: int = 50_000,
) -> list[dict]:
    """Fit RealNVP to the toy density ``name``; write its heatmap beside the true density."""
    torch.manual_seed(seed)
    target = data.toy(name)
    flow = flows.realnvp(2, layers=8, hidden=(hidden, hidden))
    training.fit(
        flow,
        training.nll,
        lambda step: target.sample((batch,)),
        steps=steps,
        lr=lr,
        clip=10.0,
        seed=None,
        progress=name,
    )
    path = out / f"flow_{name}.png"
    nll, entropy = toy_nll_and_entropy(flow, target, name, "realnvp", path, test_size=test_size)
    return [
        {"model": "realnvp", "data": name, "metric": "test NLL (nats)", "value": nll},
        {"model": "true density", "data": name, "metric": "entropy (nats)", "value": entropy},
        {"model": "realnvp", "data": name, "metric": "KL gap (nats)", "value": nll - entropy},
    ]


def digits_bits_per_dim(log_prob: torch.Tensor) -> float:
    """Mean bits per dim of dequantised digits from continuous log-densities on ``[0, 1)``."""
    return data.dequantized_bits_per_dim(log_prob, num_dims=64, levels=17).mean().item()


def run_digits(out: Path, *, steps: int = 1500, seed: int = 0) -> list[dict]:
    """Fit Glow to the dequantised 8x8 digits; report test bits/dim and sample a grid at T=0.7."""
    torch.manual_seed(seed)
    digits = data.digits()
    train = digits.train.float()
    flow = flows.glow((1, 8, 8), levels=2, steps=4, hidden=64)

    def batch(step: int) -> torch.Tensor:
        index = torch.randint(len(train), (128,))
        return data.dequantize(digits.train[index]) - 0.5

    training.fit(
        flow, training.nll, batch, steps=steps, lr=1e-3, clip=10.0, seed=None, progress="glow"
    )
    flow.eval()
    with torch.no_grad():
        test = data.dequantize(digits.test) - 0.5
        glow_bpd = digits_bits_per_dim(flow().log_prob(test))
        unit = data.dequantize(digits.train)
        mean, std = unit.mean(0), unit.std(0)
        gaussian = torch.distributions.Normal(mean, std).log_prob(test + 0.5).sum((-3, -2, -1))
        gaussian_bpd = digits_bits_per_dim(gaussian)
        samples = flow(temperature=0.7).sample((64,)) + 0.5
    figure = plot.image_grid(samples, ncol=8, title="glow samples, temperature 0.7")
    figure.savefig(out / "glow_digits_samples.png", dpi=120)
    return [
        {"model": "glow", "data": "digits", "metric": "test bits/dim", "value": glow_bpd},
        {
            "model": "diagonal Gaussian",
            "data": "digits",
            "metric": "test bits/dim",
            "value": gaussian_bpd,
        },
        {
            "model": "uniform",
            "data": "digits",
            "metric": "test bits/dim",
            "value": math.log2(17),
        },
    ]


def run(out: Path, quick: bool = False) -> list[dict]:
    """The flow half of ``sandflow demo``; ``quick`` trains for a few steps only."""
    rows = []
    for name, budget in TOYS.items():
        if quick:
            budget = {**budget, "steps": 20, "test_size": 2000}
        rows += run_toy(name, out, **budget)
    rows += run_digits(out, steps=10) if quick else run_digits(out)
    return rows
