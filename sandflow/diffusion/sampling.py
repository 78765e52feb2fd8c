r"""Sampling a diffusion model from noise: ancestral (DDPM) and DDIM, with timestep respacing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:
    from sandflow.diffusion.gaussian_diffusion import GaussianDiffusion
    from sandflow.diffusion.steps import Model

__all__ = ["sample"]


def sample(
    diffusion: GaussianDiffusion,
    model: Model,
    shape: Sequence[int],
    method: str = "ancestral",
    steps: int | None = None,
    eta: float = 0.0,
    trajectory: bool = False,
) -> Tensor:
    r"""x_{t-1} = a_t x_t + b_t model(x_t, t) + sigma_t z from x_T ~ N(0, I): DDPM or DDIM sampling.

    Every update of either sampler is linear in :math:`x_t` and the network's
    prediction, with per-step coefficients built once in float64:

    * ``"ancestral"``: :math:`x_{t-1} \sim p_\theta(x_{t-1} \mid x_t) =
      N(\mu_\theta(x_t, t), \sigma_t^2 I)`; the last step returns the
      decoder's mean :math:`\mu_\theta(x_1, 1)` without noise (Ho et al.).
    * ``"ddim"``: :math:`x_{t-1} = \sqrt{\bar\alpha_{t-1}}\hat x_0 +
      \sqrt{1 - \bar\alpha_{t-1} - \sigma_t^2}\,\hat\epsilon + \sigma_t z` with
      :math:`\sigma_t = \eta \sqrt{\tilde\beta_t}` (Song et al.); ``eta = 0``
      is deterministic, ``eta = 1`` is ancestral sampling with
      :math:`\tilde\beta_t`.

    ``steps`` runs the chain respaced to that many timesteps
    (:meth:`GaussianDiffusion.respace`). Runs without gradients, on the
    device of the diffusion's buffers, in the default dtype.

    Args:
        diffusion: the diffusion.
        model: the network ``model(xt, t)``.
        shape: ``(n, *event)``, the shape of the batch of samples.
        method: ``"ancestral"`` or ``"ddim"``.
        steps: number of timesteps (``None``: all ``T``).
        eta: DDIM's noise scale in ``[0, 1]``.
        trajectory: return the whole chain, ``(n, S + 1, *event)`` from
            :math:`x_T` (index 0) to the sample (index ``S``), instead of the
            samples.

    References:
        Denoising Diffusion Probabilistic Models (Ho et al., 2020),
        https://arxiv.org/abs/2006.11239, algorithm 2;
        Denoising Diffusion Implicit Models (Song et al., 2021),
        https://arxiv.org/abs/2010.02502, equation 12.
    """
    if method not in ("ancestral", "ddim"):
        raise ValueError(f"method must be 'ancestral' or 'ddim', got {method!r}")
    if not 0.0 <= eta <= 1.0:
        raise ValueError(f"eta must lie in [0, 1], got {eta}")
    if method == "ancestral" and eta != 0.0:
        raise ValueError("eta is DDIM's noise scale; use method='ddim' with eta")
    d = diffusion if steps is None else diffusion.respace(steps)
    scale_x, scale_out, noise = _coefficients(d, method, eta)
    learned = method == "ancestral" and d.reverse_variance == "learned"
    device, model_times = d.betas.device, d.model_timesteps.tolist()
    x = torch.randn(tuple(shape), device=device)
    n, states = x.shape[0], [x]
    with torch.no_grad():
        for t in range(d.num_steps, 0, -1):
            tau = torch.full((n,), model_times[t], dtype=torch.long, device=device)
            out, v = d._split_output(model(x, tau), x)
            new = out.mul(scale_out[t]).add_(x, alpha=scale_x[t])
            if learned and t > 1:
                tt = torch.full((n,), t, dtype=torch.long, device=device)
                std = (0.5 * d._log_variance(tt, v, x)).exp()
                new.addcmul_(std, torch.randn_like(x))
            elif noise[t] > 0:
                new.add_(torch.randn_like(x), alpha=noise[t])
            x = new
            if trajectory:
                states.append(x)
    return torch.stack(states, dim=1) if trajectory else x


def _coefficients(
    d: GaussianDiffusion, method: str, eta: float
) -> tuple[list[float], list[float], list[float]]:
    """Per-step ``(a_t, b_t, sigma_t)`` of ``x_{t-1} = a_t x_t + b_t out + sigma_t z``, t = 0..T."""
    if method == "ancestral":
        log_var = d.log_var_small if d.reverse_variance == "posterior" else d.log_var_large
        noise = (0.5 * log_var).exp()
        noise[:2] = 0.0  # the decoder step returns its mean
        return d.mean_from_xt.tolist(), d.mean_from_out.tolist(), noise.tolist()
    abar = d.alpha_bars
    prev = torch.cat([abar.new_ones(1), abar[:-1]])
    ratio = ((1.0 - prev) / (1.0 - abar).clamp(min=1e-300)) * (1.0 - abar / prev)
    sigma = eta * ratio.clamp(min=0.0).sqrt()
    k = (1.0 - prev - sigma**2).clamp(min=0.0).sqrt()
    scale_x = prev.sqrt() * d.x0_from_xt + k * d.eps_from_xt
    scale_out = prev.sqrt() * d.x0_from_out + k * d.eps_from_out
    return scale_x.tolist(), scale_out.tolist(), sigma.tolist()
