r"""Demo: KL(p || q) covers the modes, KL(q || p) seeks one; a Gaussian and a flow, both ways.

The target ``p`` is the mixture of two well-separated 2-D Gaussians
(:func:`sandflow.data.toy` ``"two_gaussians"``: modes at ``(+-2, 0)``, std 0.5).

* Forward KL, :math:`\min_q KL(p \| q)`: maximum likelihood on samples of p.
  A Gaussian q moment-matches, sitting between the modes with a wide x-axis.
* Reverse KL, :math:`\min_q KL(q \| p) = E_q[\log q - \log p]`: variational
  inference with reparameterised samples of q (``rsample_and_log_prob``).
  A Gaussian q started small (scale 0.1, as Pyro's ``AutoNormal``) at a
  random point locks onto one mode; its KL is then about :math:`\log 2`.
  (Started as N(0, I), over both modes, it stalls instead in a second local
  minimum, a wide Gaussian bridging them with KL 1.86.) A flow started as
  N(0, I) is flexible enough to keep both modes; reverse KL would charge it
  little for weighting them unequally, so the mass on each is worth checking.

Each fit reports both divergences (Monte Carlo with exact log-densities) and
the mass q puts on the right-hand mode, against the closed-form optimum of
the Gaussian fits.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from sandflow import data, flows, plot
from sandflow.bijectors import Affine
from sandflow.flows import Flow
from sandflow.train import fit, nll

__all__ = ["run"]

EXTENT = 4.0


def gaussian(loc: torch.Tensor | None = None, scale: float = 1.0) -> Flow:
    """A diagonal Gaussian as a one-layer flow: a learnable elementwise affine map of N(0, I)."""
    loc = torch.zeros(2) if loc is None else loc
    return Flow(Affine(loc, torch.full((2,), scale), event_dim=1, learnable=True), (2,))


def reverse_kl(
    log_p: Callable[[torch.Tensor], torch.Tensor], samples: int = 256
) -> Callable[[nn.Module, None], torch.Tensor]:
    """The loss ``E_q[log q(z) - log p(z)]`` (reparameterised samples of q), without data."""

    def loss(flow: nn.Module, batch: None) -> torch.Tensor:
        z, log_q = flow().rsample_and_log_prob((samples,))
        return (log_q - log_p(z)).mean()

    return loss


@torch.no_grad()
def divergences(
    flow: Flow, target: torch.distributions.Distribution, samples: int
) -> dict[str, float]:
    """``KL(p || q)``, ``KL(q || p)`` and q's mass at ``x > 0``, by Monte Carlo."""
    x = target.sample((samples,))
    z, log_q = flow().sample_and_log_prob((samples,))
    return {
        "KL(p || q) (nats)": (target.log_prob(x) - flow().log_prob(x)).mean().item(),
        "KL(q || p) (nats)": (log_q - target.log_prob(z)).mean().item(),
        "q mass at x > 0": (z[:, 0] > 0).float().mean().item(),
    }


def _references(target: torch.distributions.Distribution) -> dict[str, dict[str, float]]:
    """Closed-form optima of the Gaussian fits (a flow's best is KL = 0 both ways)."""
    entropy = target.entropy().item()
    # moment matching: mean 0, variances 2^2 + 0.5^2 and 0.5^2
    forward = math.log(2 * math.pi * math.e) + 0.5 * math.log(4.25 * 0.25) - entropy
    return {
        "gaussian, forward KL": {"KL(p || q) (nats)": forward, "q mass at x > 0": 0.5},
        "gaussian, reverse KL": {"KL(q || p) (nats)": math.log(2)},
        "realnvp, forward KL": {"KL(p || q) (nats)": 0.0, "q mass at x > 0": 0.5},
        "realnvp, reverse KL": {"KL(q || p) (nats)": 0.0},
    }


def _fit(target: torch.distributions.Distribution, quick: bool) -> dict[str, Flow]:
    """The four fits: a Gaussian and a RealNVP, each by forward and by reverse KL."""
    gaussian_steps, flow_steps = (200, 40) if quick else (600, 1500)
    fits = {
        "gaussian, forward KL": gaussian(),
        "gaussian, reverse KL": gaussian(torch.randn(2), scale=0.1),
        "realnvp, forward KL": flows.realnvp(2, layers=6, hidden=(64, 64)),
        "realnvp, reverse KL": flows.realnvp(2, layers=6, hidden=(64, 64)),
    }
    for name, flow in fits.items():
        steps, lr = (gaussian_steps, 5e-2) if name.startswith("gaussian") else (flow_steps, 2e-3)
        if name.endswith("forward KL"):
            loss, batches = nll, lambda step: target.sample((256,))
        else:
            loss, batches = reverse_kl(target.log_prob), None
        fit(flow, loss, batches, steps=steps, lr=lr, clip=10.0, seed=None, progress=False)
    return fits


def _figure(target: torch.distributions.Distribution, panels: list, path: Path) -> None:
    """Each fit's density as a heatmap under the contours of p."""
    figure = plot.density_panels(panels, extent=EXTENT, title="q (colour) over p (contours)")
    from matplotlib import pyplot  # present: density_panels needs it

    grid = torch.linspace(-EXTENT, EXTENT, 200)
    xx, yy = torch.meshgrid(grid, grid, indexing="xy")
    density = target.log_prob(torch.stack([xx, yy], -1)).exp()
    for ax in figure.axes:
        ax.contour(xx, yy, density, levels=4, colors="white", linewidths=0.7)
    figure.savefig(path, dpi=120)
    pyplot.close(figure)


def run(out: Path, quick: bool = False) -> list[dict]:
    """Fit a Gaussian and a RealNVP to the two Gaussians by each KL; write ``kl_two_gaussians.png``.

    Args:
        out: folder for the figure.
        quick: a few seconds of training (the flows stay rough).

    Returns:
        Rows ``{"model", "data", "metric", "value", "reference"}``.
    """
    torch.manual_seed(0)
    target = data.toy("two_gaussians")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small networks: one thread is the fastest on a CPU
    try:
        fits = _fit(target, quick)
        references = _references(target)
        rows, panels = [], []
        for name, flow in fits.items():
            values = divergences(flow, target, samples=10_000 if quick else 100_000)
            kl_pq, kl_qp = values["KL(p || q) (nats)"], values["KL(q || p) (nats)"]
            panels.append((f"{name}\nKL(p||q) {kl_pq:.2f}, KL(q||p) {kl_qp:.2f}", flow().log_prob))
            for metric, value in values.items():
                reference = references[name].get(metric)
                rows.append(
                    {
                        "model": name,
                        "data": "two_gaussians",
                        "metric": metric,
                        "value": value,
                        "reference": None if reference is None else round(reference, 4),
                    }
                )
        _figure(target, panels, out / "kl_two_gaussians.png")
    finally:
        torch.set_num_threads(threads)
    return rows
