r"""Sampling a diffusion model from noise: ancestral (DDPM) and DDIM."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from sandflow.diffusion.coefficients import DiffusionCoefficients, Model

__all__ = ["sample"]


def sample(
    diffusion: DiffusionCoefficients,
    model: Model,
    shape: Sequence[int],
    method: str = "ancestral",
    eta: float = 0.0,
    trajectory: bool = False,
) -> Tensor:
    r"""x_{t-1} = a_t x_t + b_t model(x_t, t) + sigma_t z from x_T ~ N(0, I): DDPM or DDIM sampling.

    Every update of either sampler is linear in :math:`x_t` and the network's
    prediction, with per-step coefficients built once in float64 from the
    public coefficients of
    :class:`~sandflow.diffusion.coefficients.DiffusionCoefficients`:

    * ``"ancestral"``: :math:`x_{t-1} \sim p_\theta(x_{t-1} \mid x_t) =
      N(\mu_\theta(x_t, t), \sigma_t^2 I)`; the last step returns the
      decoder's mean :math:`\mu_\theta(x_1, 1)` without noise (Ho et al.).
    * ``"ddim"``: :math:`x_{t-1} = \sqrt{\bar\alpha_{t-1}}\hat x_0 +
      \sqrt{1 - \bar\alpha_{t-1} - \sigma_t^2}\,\hat\epsilon + \sigma_t z` with
      :math:`\sigma_t = \eta \sqrt{\tilde\beta_t}` (Song et al.); ``eta = 0``
      is deterministic, ``eta = 1`` is ancestral sampling with
      :math:`\tilde\beta_t`.

    The chain is the one ``diffusion`` holds: to sample on fewer steps, pass
    a respaced diffusion (:meth:`GaussianDiffusion.respace`, as
    :meth:`GaussianDiffusion.sample` does for ``steps=``). Runs without
    gradients, on the device of the diffusion's buffers, in the default dtype.

    Args:
        diffusion: the diffusion (a ``GaussianDiffusion``).
        model: the network ``model(xt, t)``.
        shape: ``(n, *event)``, the shape of the batch of samples.
        method: ``"ancestral"`` or ``"ddim"``.
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
    shape = tuple(shape)
    if not shape or not all(
        isinstance(k, int) and not isinstance(k, bool) and k >= 0 for k in shape
    ):
        raise ValueError(f"shape must be (n, *event), non-negative ints, got {shape}")
    d = diffusion
    device = d.betas.device
    x = torch.randn(shape, device=device)
    d.check_input(x, model, name="x_T (drawn in the default dtype)", data=False)
    states = [x]
    if x.shape[0] == 0:  # nothing to sample: the network is not called
        return torch.stack(states * (d.num_steps + 1), dim=1) if trajectory else x
    scale_x, scale_out, noise = _coefficients(d, method, eta)
    learned = method == "ancestral" and d.reverse_variance == "learned"
    with torch.no_grad():
        for step in range(d.num_steps, 0, -1):
            t = torch.full((x.shape[0],), step, dtype=torch.long, device=device)
            out, v = d.p_output(model, x, t)
            new = out.mul(scale_out[step]).add_(x, alpha=scale_x[step])
            if learned and step > 1:
                std = (0.5 * d.p_log_variance(x, t, v)).exp()
                new.addcmul_(std, torch.randn_like(x))
            elif noise[step] > 0:
                new.add_(torch.randn_like(x), alpha=noise[step])
            x = new
            if trajectory:
                states.append(x)
    return torch.stack(states, dim=1) if trajectory else x


def _coefficients(
    d: DiffusionCoefficients, method: str, eta: float
) -> tuple[list[float], list[float], list[float]]:
    """Per-step ``(a_t, b_t, sigma_t)`` of ``x_{t-1} = a_t x_t + b_t out + sigma_t z``, t = 0..T."""
    if method == "ancestral":
        small = d.reverse_variance == "posterior"
        log_variance = d.posterior_log_variance_clipped if small else d.log_betas
        noise = (0.5 * log_variance).exp()
        noise[:2] = 0.0  # the decoder step returns its mean
        return d.mean_from_xt.tolist(), d.mean_from_output.tolist(), noise.tolist()
    abar, prev = d.alpha_bars, d.alpha_bars_prev
    ratio = ((1.0 - prev) / (1.0 - abar).clamp(min=1e-300)) * (1.0 - abar / prev)
    sigma = eta * ratio.clamp(min=0.0).sqrt()
    k = (1.0 - prev - sigma**2).clamp(min=0.0).sqrt()
    scale_x = prev.sqrt() * d.x0_from_xt + k * d.eps_from_xt
    scale_out = prev.sqrt() * d.x0_from_output + k * d.eps_from_output
    return scale_x.tolist(), scale_out.tolist(), sigma.tolist()
