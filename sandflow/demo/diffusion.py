"""Diffusion demo: DDPM on a toy density (ELBO vs true entropy) and on 8x8 digits (bits/dim)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from sandflow import train as training
from sandflow.data import Digits, digits, toy
from sandflow.diffusion import ELBO, GaussianDiffusion, NoiseSchedule
from sandflow.nn.denoisers import MLPDenoiser, UNet

__all__ = ["run"]


@dataclass
class _Fit:
    """What a trained model leaves for the table and the figures."""

    name: str
    elbo: ELBO
    unit: float  # divides nats per example into the unit of the plots
    unit_name: str
    trajectory: Tensor


def _toy(quick: bool) -> tuple[list[dict], _Fit]:
    """DDPM on eight Gaussians: continuous data, so reverse variance ``beta``."""
    data = toy("eight_gaussians")
    T = 20 if quick else 200
    diffusion = GaussianDiffusion(NoiseSchedule.cosine(T), "v", "beta")
    net = MLPDenoiser(2, hidden=(32, 32) if quick else (256, 256, 256))
    steps = 30 if quick else 4000
    training.fit(
        net,
        diffusion.loss,
        lambda step: data.sample((512,)),
        steps=steps,
        lr=2e-3,
        seed=None,
        progress="DDPM toy",
    )
    n = 256 if quick else 4000
    with torch.no_grad():
        elbo = diffusion.elbo(net, data.sample((n,)))
        traj = diffusion.sample(net, (n, 2), trajectory=True)
    entropy = data.entropy().item()
    nll = -elbo.total.mean().item()
    cross = -data.log_prob(traj[:, -1]).mean().item()
    model = f"ddpm (mlp, T={T})"
    rows = [
        _row(model, "eight_gaussians", "test NLL bound (nats; reference: entropy)", nll, entropy),
        _row(model, "eight_gaussians", "KL gap bound (nats)", nll - entropy, 0.0),
        _row(
            model,
            "eight_gaussians",
            "samples' cross-entropy under the true density (nats; reference: entropy)",
            cross,
            entropy,
        ),
    ]
    return rows, _Fit("eight_gaussians", elbo, 1.0, "nats", traj)


def digits_ddpm(quick: bool, seed: int | None) -> tuple[Digits, Tensor, GaussianDiffusion, UNet]:
    """DDPM on 17-level digits in [-1, 1], trained: discretised decoder, learned reverse variance.

    The first noise level, sqrt(beta_1) = 0.06, is half a bin (bins are 2/16
    wide): below it the decoder does the rounding, and no step is spent on
    denoising finer than the data's resolution. ``v`` prediction, T = 100
    (10 and a smaller UNet with ``quick``); ``seed`` is :func:`~sandflow.train.fit`'s.

    Returns:
        The digits, their test images in [-1, 1], the diffusion and its network.
    """
    data = digits()
    levels = data.levels
    train = data.train.float() * (2 / (levels - 1)) - 1
    test = data.test.float() * (2 / (levels - 1)) - 1
    T = 10 if quick else 100
    schedule = NoiseSchedule.linear(T, 3.6e-3, 0.2)
    diffusion = GaussianDiffusion(
        schedule, "v", "learned", decoder="discretized", grid_points=levels
    )
    net = UNet(1, base=8 if quick else 16, out_channels=2)
    steps = 10 if quick else 1500

    def batch(step: int) -> Tensor:
        return train[torch.randint(len(train), (128,))]

    training.fit(
        net, diffusion.loss, batch, steps=steps, lr=2e-3, seed=seed, progress="DDPM digits"
    )
    return data, test, diffusion, net


def _digits(quick: bool) -> tuple[list[dict], _Fit]:
    """The digits DDPM (:func:`digits_ddpm`): ELBO bits/dim against a per-pixel histogram."""
    data, test, diffusion, net = digits_ddpm(quick, seed=None)
    levels, T = data.levels, diffusion.schedule.num_steps
    if quick:
        test = test[:32]
    with torch.no_grad():
        elbo = diffusion.elbo(net, test)
        traj = diffusion.sample(net, (8, *data.shape), trajectory=True).clamp(-1, 1)
    dims = math.prod(data.shape)
    bpd = (-elbo.total / (dims * math.log(2))).mean().item()
    counts = torch.stack([torch.bincount(col, minlength=levels) for col in data.train.flatten(1).T])
    probs = (counts + 0.5) / (counts + 0.5).sum(1, keepdim=True)  # per-pixel histogram
    baseline = -probs.log2().gather(1, data.test.flatten(1).T).mean().item()
    metric = "test bits/dim, ELBO bound (reference: per-pixel histogram)"
    rows = [_row(f"ddpm (unet, T={T})", "digits", metric, bpd, baseline)]
    return rows, _Fit("digits", elbo, dims * math.log(2), "bits/dim", traj)


def _row(model: str, data: str, metric: str, value: float, reference: float) -> dict:
    return {"model": model, "data": data, "metric": metric, "value": value, "reference": reference}


def _plot_terms(fits: list[_Fit], path: Path) -> None:
    """Bars of the three parts of -ELBO, and the denoising term at every t."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 3.4 * len(fits)), layout="constrained")
    axes = fig.subplots(len(fits), 2, squeeze=False, width_ratios=(1, 2.4))
    for (left, right), fit in zip(axes, fits, strict=True):
        terms = {
            "reconstruction\n-E log p(x0|x1)": -fit.elbo.reconstruction.mean().item(),
            "prior matching\nKL(q(xT|x0)||p(xT))": fit.elbo.prior_matching.mean().item(),
            "denoising\nsum over t = 2..T": fit.elbo.denoising.sum(-1).mean().item(),
        }
        values = [v / fit.unit for v in terms.values()]
        left.bar(range(3), values, color=["tab:blue", "tab:orange", "tab:green"])
        left.set_xticks(range(3), list(terms), fontsize=7)
        left.set_ylabel(f"{fit.unit_name} (parts of -ELBO)")
        left.set_title(f"{fit.name}: -ELBO = {sum(values):.3f} {fit.unit_name}", fontsize=9)
        per_t = fit.elbo.denoising.mean(0) / fit.unit
        steps = range(2, len(per_t) + 2)
        right.bar(steps, per_t.clamp(min=1e-6).tolist(), width=1.0, color="tab:green")
        right.set_yscale("log")
        right.set_xlabel("t")
        right.set_ylabel(fit.unit_name)
        right.set_title(
            f"{fit.name}: denoising term E KL(q(x_t-1|x_t,x0) || p(x_t-1|x_t)) per t", fontsize=9
        )
    fig.savefig(path, dpi=110)


def _plot_chain(toy_fit: _Fit, digit_fit: _Fit, path: Path, columns: int = 7) -> None:
    """The reverse chain from noise (left) to data (right): toy points above, digits below."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2.0 * columns, 4.4), layout="constrained")
    axes = fig.subplots(2, columns)
    for fit, row in ((toy_fit, axes[0]), (digit_fit, axes[1])):
        steps = fit.trajectory.shape[1] - 1
        shown = torch.linspace(0, steps, columns).round().long().tolist()
        for ax, k in zip(row, shown, strict=True):
            x = fit.trajectory[:, k].numpy()
            if fit.name == "digits":  # eight images as a 2 x 4 mosaic
                mosaic = x[:, 0].reshape(2, 4, 8, 8).transpose(0, 2, 1, 3).reshape(16, 32)
                ax.imshow(mosaic, cmap="gray_r", vmin=-1, vmax=1)
            else:
                ax.scatter(x[:, 0], x[:, 1], s=1, alpha=0.4)
                ax.set_xlim(-3.5, 3.5)
                ax.set_ylim(-3.5, 3.5)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"x_{steps - k}", fontsize=9)
    fig.suptitle("reverse chain: noise x_T (left) to data x_0 (right)")
    fig.savefig(path, dpi=110)


def run(out: Path, quick: bool = False) -> list[dict]:
    """Train DDPM on eight Gaussians and on 8x8 digits; write two figures; return the table rows.

    The toy model reports its exact all-steps ELBO on fresh samples as a
    bound on the test NLL next to the true entropy (their difference bounds
    KL(p || q)); the digits model reports test bits/dim with the discretised
    decoder. Figures written to ``out``: ``diffusion_elbo_terms.png`` (the
    ELBO split into its terms, and the denoising term per t) and
    ``diffusion_reverse_chain.png`` (samples along the reverse chain). Seeds
    torch's global generator. About 2-3 minutes on two CPU cores;
    ``quick=True`` takes seconds (tiny models, a smoke test).

    Args:
        out: folder for the figures (created if missing).
        quick: run a few training steps only.

    Returns:
        Table rows ``{"model", "data", "metric", "value", "reference"}``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    toy_rows, toy_fit = _toy(quick)
    digit_rows, digit_fit = _digits(quick)
    _plot_terms([toy_fit, digit_fit], out / "diffusion_elbo_terms.png")
    _plot_chain(toy_fit, digit_fit, out / "diffusion_reverse_chain.png")
    return toy_rows + digit_rows
