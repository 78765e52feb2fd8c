r"""Training losses of a diffusion model at random timesteps: noise prediction and the ELBO."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from sandflow.diffusion.coefficients import DiffusionCoefficients, Model

__all__ = ["loss"]


def loss(
    diffusion: DiffusionCoefficients,
    model: Model,
    x0: Tensor,
    weighting: str = "simple",
    vlb_weight: float = 1e-3,
) -> Tensor:
    r"""L_simple = E_{t, eps} ||target - model(x_t, t)||^2 / D, t ~ U{1..T}: the DDPM training loss.

    One timestep :math:`t \sim U\{1, \dots, T\}` and one noise draw per
    example, :math:`x_t = \sqrt{\bar\alpha_t} x_0 + \sqrt{1 - \bar\alpha_t}\epsilon`.

    * ``weighting="simple"``: the mean squared error of the prediction
      against its target (:math:`\epsilon`, :math:`x_0` or
      :math:`v = \sqrt{\bar\alpha_t}\epsilon - \sqrt{1 - \bar\alpha_t} x_0`),
      averaged over the event (Ho et al., 2020). With a learned variance it is
      the hybrid :math:`L_\text{simple} + \lambda L_\text{vlb}`, where
      :math:`L_\text{vlb} = T L_{t-1} / D` is computed with the predicted mean
      detached, so it trains only the variance (Nichol & Dhariwal, 2021;
      :math:`\lambda` = ``vlb_weight``, in nats per dimension).
    * ``weighting="elbo"``: :math:`(T L_{t-1} + L_T) / D`, an unbiased
      estimate of the negative ELBO in nats per dimension (its mean over
      :math:`t` is ``-diffusion.elbo(model, x0).total / D``).

    Written with the public ``q_``/``p_`` API of
    :class:`~sandflow.diffusion.coefficients.DiffusionCoefficients` only.

    Args:
        diffusion: the diffusion (a ``GaussianDiffusion``).
        model: the network ``model(xt, t)``.
        x0: a batch of data, shape ``(batch, *event)``, at least one example.
        weighting: ``"simple"`` or ``"elbo"``.
        vlb_weight: :math:`\lambda` of the hybrid loss (learned variance only).

    Returns:
        The batch mean, a scalar.

    References:
        Denoising Diffusion Probabilistic Models (Ho et al., 2020),
        https://arxiv.org/abs/2006.11239, equation 14;
        Improved Denoising Diffusion Probabilistic Models (Nichol & Dhariwal, 2021),
        https://arxiv.org/abs/2102.09672, equation 16.
    """
    if weighting not in ("simple", "elbo"):
        raise ValueError(f"weighting must be 'simple' or 'elbo', got {weighting!r}")
    if isinstance(vlb_weight, bool) or not (
        isinstance(vlb_weight, int | float) and math.isfinite(vlb_weight) and vlb_weight >= 0
    ):
        raise ValueError(f"vlb_weight must be a finite float >= 0, got {vlb_weight!r}")
    diffusion.check_input(x0, model)
    if x0.shape[0] == 0:
        raise ValueError(
            f"loss needs at least one example: x0 has shape {tuple(x0.shape)}, and the mean "
            "over an empty batch is undefined"
        )
    T, dim = diffusion.num_steps, x0[0].numel()
    t = torch.randint(1, T + 1, (x0.shape[0],), device=x0.device)
    eps = torch.randn_like(x0)
    xt = diffusion.q_sample(x0, t, eps)
    out, v = diffusion.p_output(model, xt, t)
    if weighting == "elbo":
        mean, log_variance = diffusion.p_mean(xt, t, out), diffusion.p_log_variance(xt, t, v)
        term = diffusion.vb_term(x0, xt, t, mean, log_variance)
        return ((T * term + diffusion.prior_kl(x0)) / dim).mean()
    target = diffusion.prediction_target(x0, t, eps)
    per_example = (out - target).pow(2).reshape(len(x0), -1).mean(1)
    if v is not None:
        mean = diffusion.p_mean(xt, t, out.detach())
        term = diffusion.vb_term(x0, xt, t, mean, diffusion.p_log_variance(xt, t, v))
        per_example = per_example + vlb_weight * T * term / dim
    return per_example.mean()
