r"""The probability-flow ODE of a diffusion model: an exact ``log_prob`` instead of a bound.

The discrete schedule :math:`\bar\alpha_0 = 1 > \bar\alpha_1 > \dots > \bar\alpha_T`
is read as samples of a continuous variance-preserving process
:math:`x_t = \sqrt{\bar\alpha(t)}\, x_0 + \sqrt{1 - \bar\alpha(t)}\, \epsilon`,
:math:`t \in [0, T]` in the same step units, with :math:`\log\bar\alpha(t)`
piecewise linear between the integers: it **equals** ``alpha_bars[t]`` at
every integer ``t``, and its rate :math:`\beta(t) = -\frac{d}{dt}\log\bar\alpha(t)
= -\log\alpha_{\lceil t \rceil}` is constant on each step (the SDE
:math:`dx = -\frac12\beta(t)x\,dt + \sqrt{\beta(t)}\,dW` whose Euler steps
are the discrete chain). Its probability-flow ODE (Song et al., 2021) moves
each :math:`x_T \sim N(0, I)` deterministically to data, through the same
marginals as the noising process, with the network's noise prediction
:math:`\hat\epsilon(x, t)` in place of the scaled score
:math:`-\sqrt{1 - \bar\alpha(t)}\,\nabla\log p_t(x)`.

The ODE is integrated in the noise-to-signal ratio
:math:`\sigma = \sqrt{1/\bar\alpha(t) - 1}` instead of :math:`t` (Song,
Meng & Ermon's DDIM ODE, Karras et al.'s :math:`\sigma` time):

.. math::
    \frac{dx}{d\sigma} = -\sigma\bar\alpha\, x + \sqrt{\bar\alpha}\;\hat\epsilon(x, t(\sigma)),
    \qquad \bar\alpha = \frac{1}{1 + \sigma^2},

which is smooth down to the data at :math:`\sigma = 0`, where the form in
:math:`t` has a :math:`1/\sqrt{t}` singularity. The network is queried at
the real-valued :math:`t(\sigma) \in [0, T]` (a float tensor of shape
``(batch,)``), clamped to that range whatever times the adaptive solver
probes; between the data and the first noise level (:math:`0 < t < 1`) it is
asked for noise levels it never saw in training, which the smooth sinusoidal
timestep embeddings of :mod:`sandflow.nn` interpolate. A model that accepts
only integer timesteps can be wrapped as ``lambda x, t: model(x,
t.round().long())``: the field is then piecewise constant in time, which
an adaptive solver handles with smaller steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import pyro.distributions as dist
import torch
from torch import Tensor, nn

from sandflow.bijectors.continuous import ContinuousFlow
from sandflow.diffusion.schedule import NoiseSchedule
from sandflow.distributions import TransformedDistribution

if TYPE_CHECKING:
    from sandflow.diffusion.gaussian_diffusion import GaussianDiffusion

__all__ = ["ProbabilityFlowField", "alpha_bar", "bits_per_dim", "distribution", "probability_flow"]

Model = Callable[[Tensor, Tensor], Tensor]


def alpha_bar(schedule: NoiseSchedule, t: Tensor | float) -> Tensor:
    r"""Continuous alpha-bar, log-linear between the integers: ``alpha_bars[t]`` at integer t.

    Args:
        schedule: the discrete schedule.
        t: real times in ``[0, T]`` (clamped to it), any shape.

    Returns:
        :math:`\bar\alpha(t)` in float64, the shape of ``t``.

    Example:
        >>> s = NoiseSchedule.linear(10)
        >>> bool(alpha_bar(s, 3.0) == s.alpha_bars[3])
        True
        >>> round(float(alpha_bar(s, 2.5) ** 2 / (s.alpha_bars[2] * s.alpha_bars[3])), 12)
        1.0
    """
    abar = schedule.alpha_bars
    t = torch.as_tensor(t, dtype=torch.float64).clamp(0, schedule.num_steps)
    k = t.floor().long()
    after = (k + 1).clamp(max=schedule.num_steps)
    return abar[k] * (abar[after] / abar[k]) ** (t - k)  # exactly alpha_bars[k] at t = k


def _interpolate(table: Tensor, t: Tensor) -> Tensor:
    """``table[t]`` at real ``t`` in ``[0, len(table) - 1]``, linear between the integers."""
    k = t.floor().long().clamp(0, len(table) - 2)
    return torch.lerp(table[k], table[k + 1], t - k)


class ProbabilityFlowField(nn.Module):
    r"""dx/dsigma = -sigma alpha_bar x + sqrt(alpha_bar) eps_hat(x, t(sigma)): the PF-ODE field.

    The vector field of :func:`probability_flow` in the noise-to-signal time
    :math:`\sigma` (see the module docstring), with the network's output
    turned into :math:`\hat\epsilon` at the continuous :math:`\bar\alpha(t)`:
    :math:`\hat\epsilon = \text{out}` for ``parameterization="eps"``,
    :math:`\hat\epsilon = \sqrt{1 - \bar\alpha}\, x + \sqrt{\bar\alpha}\, \text{out}` for
    ``"v"``. With a learned variance the first half of the channels is the
    prediction.

    Args:
        diffusion: the diffusion whose schedule and parameterization apply.
        model: the network ``model(x, t)``.
    """

    def __init__(self, diffusion: GaussianDiffusion, model: Model) -> None:
        super().__init__()
        if diffusion.parameterization not in ("eps", "v"):
            raise ValueError(
                "the probability flow needs a noise prediction that stays finite at t = 0: "
                f"parameterization 'eps' or 'v', got {diffusion.parameterization!r}"
            )
        self.model = model
        self.parameterization = diffusion.parameterization
        self.learned_variance = diffusion.reverse_variance == "learned"
        schedule = diffusion.schedule
        self.num_steps = schedule.num_steps
        device = next(diffusion.buffers()).device
        # -log alpha_bar at the integers (increasing), and the network's timestep at each
        self.register_buffer("neg_log_alpha_bars", -schedule.alpha_bars.log().to(device), False)
        steps = diffusion.model_timesteps.to(device, torch.float64)  # respaced: the original t
        self.register_buffer("model_timesteps", steps, False)

    def timestep(self, sigma: Tensor) -> Tensor:
        """The real step time ``t in [0, T]`` whose ``alpha_bar(t) = 1 / (1 + sigma^2)``."""
        level = torch.log1p(sigma.double().clamp(min=0) ** 2)
        table = self.neg_log_alpha_bars
        k = (torch.searchsorted(table, level, right=True) - 1).clamp(0, self.num_steps - 1)
        frac = (level - table[k]) / (table[k + 1] - table[k])
        return (k + frac).clamp(0, self.num_steps)

    def forward(self, x: Tensor, sigma: Tensor) -> Tensor:  # noqa: D102
        t = self.timestep(sigma)
        model_t = _interpolate(self.model_timesteps, t)
        # alpha_bar and sigma at the clamped time, so that probes outside the range agree
        abar = torch.exp(-_interpolate(self.neg_log_alpha_bars, t))
        sigma = (1 / abar - 1).sqrt().to(x.dtype)
        abar = abar.to(x.dtype)
        out = self.model(x, model_t.to(x.dtype).expand(x.shape[0]))
        if self.learned_variance:
            out = out.chunk(2, dim=1)[0]
        eps = out if self.parameterization == "eps" else (1 - abar).sqrt() * x + abar.sqrt() * out
        return abar.sqrt() * eps - sigma * abar * x


def probability_flow(
    diffusion: GaussianDiffusion,
    model: Model,
    event_shape: Sequence[int],
    *,
    trace: str = "exact",
    solver: str = "dopri5",
    atol: float = 1e-5,
    rtol: float = 1e-5,
    adjoint: bool = False,
) -> ContinuousFlow:
    r"""The :class:`~sandflow.bijectors.ContinuousFlow` of the diffusion's probability-flow ODE.

    Forward maps :math:`x_T \sim N(0, I)` at :math:`\sigma_T = \sqrt{1/\bar\alpha_T - 1}`
    to data at :math:`\sigma = 0`, with :class:`ProbabilityFlowField` as its
    field; its ``t_span`` is ``(sigma_T, 0)``. See the module docstring for
    the continuous process and how the network is queried.

    Args:
        diffusion: the diffusion the model was trained with.
        model: the network ``model(x, t)``, called with float timesteps.
        event_shape: shape of one example.
        trace: ``"exact"`` or ``"hutchinson"`` divergence.
        solver: torchdiffeq method.
        atol: absolute tolerance.
        rtol: relative tolerance.
        adjoint: gradients by the adjoint method.

    References:
        Score-Based Generative Modeling through Stochastic Differential
        Equations (Song et al., 2021), https://arxiv.org/abs/2011.13456;
        Denoising Diffusion Implicit Models (Song, Meng & Ermon, 2021),
        https://arxiv.org/abs/2010.02502;
        Elucidating the Design Space of Diffusion-Based Generative Models
        (Karras et al., 2022), https://arxiv.org/abs/2206.00364.
    """
    field = ProbabilityFlowField(diffusion, model)
    sigma_T = math.sqrt(1 / float(diffusion.schedule.alpha_bars[-1]) - 1)
    return ContinuousFlow(
        field,
        event_shape=event_shape,
        t_span=(sigma_T, 0.0),
        trace=trace,
        solver=solver,
        atol=atol,
        rtol=rtol,
        adjoint=adjoint,
    )


def distribution(
    diffusion: GaussianDiffusion, model: Model, event_shape: Sequence[int], **options: object
) -> TransformedDistribution:
    r"""Log q(x_0) = log N(x_T; 0, I) + log|det dx_T/dx_0|: the model's exact likelihood.

    The :class:`~sandflow.distributions.TransformedDistribution` of a
    standard-normal base through :func:`probability_flow` (``options`` go
    to it): ``log_prob(x0)`` is one ODE solve from the data to noise,
    ``sample`` one solve from noise to data.
    """
    flow = probability_flow(diffusion, model, event_shape, **options)
    device = next(diffusion.buffers()).device
    shape = torch.Size(event_shape)
    base = dist.Normal(torch.zeros(shape, device=device), torch.ones(shape, device=device))
    return TransformedDistribution(base.to_event(len(shape)), flow)


def bits_per_dim(
    diffusion: GaussianDiffusion,
    model: Model,
    x0: Tensor,
    *,
    grid_points: int | None = None,
    **options: object,
) -> Tensor:
    r"""Bits/dim -(log q(x_0 + u) + D log h) / (D log 2), u ~ U(-h/2, h/2)^D, by the ODE.

    For discrete data (``grid_points`` evenly spaced values on ``[-1, 1]``, by
    default the diffusion's own when its decoder is ``"discretized"``) each
    example is dequantised uniformly within its bin of width
    :math:`h = 2 / (\text{grid\_points} - 1)`, and by Jensen's inequality the result
    bounds the discrete code length from above, like the ELBO's bits/dim with
    the discretised decoder (:meth:`GaussianDiffusion.bits_per_dim`), next to
    which it is reported. With ``grid_points=None`` and a Gaussian decoder it is
    :math:`-\log q(x_0) / (D \log 2)` of continuous data.

    Args:
        diffusion: the diffusion.
        model: the network.
        x0: data of shape ``(batch, *event)``.
        grid_points: number of data values, or ``None``.
        options: passed to :func:`probability_flow`.

    Returns:
        Bits per dimension of each example, shape ``(batch,)``.

    References:
        Score-Based Generative Modeling through Stochastic Differential
        Equations (Song et al., 2021), https://arxiv.org/abs/2011.13456, section 4.3.
    """
    if grid_points is None and diffusion.decoder == "discretized":
        grid_points = diffusion.grid_points
    dims = x0[0].numel()
    log_width = 0.0
    if grid_points is not None:
        width = 2.0 / (grid_points - 1)
        x0 = x0 + width * (torch.rand_like(x0) - 0.5)
        log_width = dims * math.log(width)
    log_q = distribution(diffusion, model, x0.shape[1:], **options).log_prob(x0)
    return -(log_q + log_width) / (dims * math.log(2.0))
