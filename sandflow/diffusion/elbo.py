r"""The exact all-steps evidence lower bound of a diffusion model, term by term."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from sandflow.diffusion.coefficients import DiffusionCoefficients, Model

__all__ = ["ELBO", "bits_per_dim", "elbo"]

_ROWS_PER_CALL = 4096


class ELBO(NamedTuple):
    r"""ELBO = reconstruction - prior_matching - sum_t denoising[t], in nats per example.

    .. math::
        \log p_\theta(x_0) \ge
        \underbrace{\mathbb E_q \log p_\theta(x_0 \mid x_1)}_{\text{reconstruction}}
        - \underbrace{\mathrm{KL}(q(x_T \mid x_0) \,\|\, p(x_T))}_{\text{prior matching}}
        - \sum_{t=2}^{T} \underbrace{\mathbb E_q \mathrm{KL}(q(x_{t-1} \mid x_t, x_0)
          \,\|\, p_\theta(x_{t-1} \mid x_t))}_{\text{denoising}}

    References:
        Denoising Diffusion Probabilistic Models (Ho et al., 2020),
        https://arxiv.org/abs/2006.11239, equation 5.
    """

    #: ``E_q log p(x_0 | x_1)``, shape ``(batch,)``.
    reconstruction: Tensor
    #: ``KL(q(x_T | x_0) || N(0, I))``, shape ``(batch,)``.
    prior_matching: Tensor
    #: ``E_q KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t))``, shape ``(batch, T - 1)``,
    #: column ``j`` for ``t = j + 2``.
    denoising: Tensor
    #: ``reconstruction - prior_matching - denoising.sum(-1)``, shape ``(batch,)``.
    total: Tensor


def elbo(
    diffusion: DiffusionCoefficients, model: Model, x0: Tensor, steps_per_call: int | None = None
) -> ELBO:
    r"""ELBO(x_0) = E log p(x_0|x_1) - KL(q(x_T|x_0) || N(0, I)) - sum_{t=2}^T E KL(q || p_theta).

    Every one of the ``T`` terms is computed (no sampling of ``t``); each
    expectation over :math:`x_t \sim q(x_t \mid x_0)` uses one draw, the KLs
    between Gaussians are exact. The network runs once per ``t`` on the
    whole batch, several timesteps stacked into one call (``steps_per_call``,
    by default enough for about 4,096 rows). Gradients flow; wrap in
    ``torch.no_grad()`` to evaluate. Written with the public ``q_``/``p_`` API of
    :class:`~sandflow.diffusion.coefficients.DiffusionCoefficients` only. An
    empty batch gives empty terms (without calling the network).

    Args:
        diffusion: the diffusion (a ``GaussianDiffusion``).
        model: the network ``model(xt, t)``.
        x0: data of shape ``(batch, *event)``.
        steps_per_call: timesteps stacked in one network call.

    Returns:
        The :class:`ELBO` terms, in nats per example.

    References:
        Improved Denoising Diffusion Probabilistic Models (Nichol & Dhariwal, 2021),
        https://arxiv.org/abs/2102.09672, section 3.

    Example:
        >>> from sandflow.diffusion import GaussianDiffusion, NoiseSchedule
        >>> d = GaussianDiffusion(NoiseSchedule.linear(50))
        >>> out = d.elbo(lambda xt, t: torch.zeros_like(xt), torch.zeros(3, 2))
        >>> torch.allclose(
        ...     out.total, out.reconstruction - out.prior_matching - out.denoising.sum(-1)
        ... )
        True
    """
    diffusion.check_input(x0, model)
    n, T = x0.shape[0], diffusion.num_steps
    if steps_per_call is None:
        steps_per_call = max(1, _ROWS_PER_CALL // max(n, 1))
    if isinstance(steps_per_call, bool) or not isinstance(steps_per_call, int):
        raise TypeError(f"steps_per_call must be an int, got {steps_per_call!r}")
    if steps_per_call < 1:
        raise ValueError(f"steps_per_call must be >= 1, got {steps_per_call}")
    if n == 0:
        empty = x0.new_zeros(0)
        return ELBO(empty, empty, x0.new_zeros(0, T - 1), empty)
    repeat = (1,) * (x0.dim() - 1)
    columns = []
    for start in range(1, T + 1, steps_per_call):
        steps = torch.arange(start, min(start + steps_per_call, T + 1), device=x0.device)
        t = steps.repeat_interleave(n)
        x = x0.repeat(len(steps), *repeat)
        xt = diffusion.q_sample(x, t, torch.randn_like(x))
        mean, log_variance = diffusion.p_mean_variance(model, xt, t)
        columns.append(diffusion.vb_term(x, xt, t, mean, log_variance).view(len(steps), n).T)
    terms = torch.cat(columns, dim=1)
    reconstruction, denoising = -terms[:, 0], terms[:, 1:]
    prior = diffusion.prior_kl(x0)
    total = reconstruction - prior - denoising.sum(-1)
    return ELBO(reconstruction, prior, denoising, total)


def bits_per_dim(
    diffusion: DiffusionCoefficients, model: Model, x0: Tensor, steps_per_call: int | None = None
) -> Tensor:
    r"""bpd(x_0) = -ELBO(x_0) / (D log 2): the exact all-steps bound in bits per dimension.

    ``D`` is the number of values in one example. With the discretised
    decoder it bounds the code length of the quantised data; with the
    Gaussian decoder it is a continuous density (and may be negative).

    Returns:
        Shape ``(batch,)``; take the mean for a data set's bits per dim.
    """
    total = elbo(diffusion, model, x0, steps_per_call).total
    return -total / (x0.shape[1:].numel() * math.log(2.0))
