r"""Gaussian diffusion as a pair of Markov chains: :class:`GaussianDiffusion`.

The conventions (time indexing, the decoder at ``t = 1``, bins, units) are
stated once, in :mod:`sandflow.diffusion`.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyro.distributions as dist
import torch
from torch import Tensor
from torch.distributions import Distribution

from sandflow.bijectors.continuous import ContinuousFlow
from sandflow.diffusion import elbo as _elbo
from sandflow.diffusion import losses as _losses
from sandflow.diffusion import probability_flow as _probability_flow
from sandflow.diffusion import sampling as _sampling
from sandflow.diffusion.coefficients import DiffusionCoefficients, Model
from sandflow.distributions import TransformedDistribution
from sandflow.distributions.markov_chain import MarkovChain

__all__ = ["GaussianDiffusion"]


class GaussianDiffusion(DiffusionCoefficients):
    r"""q(x_t | x_{t-1}) = N(sqrt(alpha_t) x_{t-1}, beta_t I), p(x_{t-1} | x_t) = N(mu, sigma_t^2).

    The forward process :math:`q` adds Gaussian noise along a
    :class:`~sandflow.diffusion.NoiseSchedule`; the reverse process
    :math:`p_\theta` runs it backwards with a network ``model(xt, t)`` that
    predicts the noise ``eps``, the data ``x0`` or the velocity
    :math:`v = \sqrt{\bar\alpha_t}\,\epsilon - \sqrt{1 - \bar\alpha_t}\, x_0`:

    .. math::
        \mu_\theta(x_t, t) = \frac{\sqrt{\bar\alpha_{t-1}}\beta_t}{1 - \bar\alpha_t}\hat x_0
        + \frac{\sqrt{\alpha_t}(1 - \bar\alpha_{t-1})}{1 - \bar\alpha_t} x_t,
        \qquad \log p_\theta(x_0) \ge \mathrm{ELBO}.

    The schedule is held as float64 buffers (not saved in ``state_dict``: it
    is configuration, rebuilt by the constructor) and cast to the data's
    dtype on use. Data have shape ``(batch, *event)``; :mod:`sandflow.diffusion`
    states the conventions at ``t = 1`` and for the bins. The per-step
    algebra (``q_sample``, ``q_posterior_mean_variance``, ``p_mean_variance``,
    ``vb_term``, ``prior_kl``, ...) is the public API of
    :class:`~sandflow.diffusion.coefficients.DiffusionCoefficients`, which
    the ELBO, the losses and the samplers use, and so can a user's own.

    Args:
        schedule: the noise schedule.
        parameterization: what the network predicts: ``"eps"``, ``"x0"`` or ``"v"``.
        reverse_variance: :math:`\sigma_t^2`: ``"posterior"`` (:math:`\tilde\beta_t`),
            ``"beta"`` (:math:`\beta_t`) or ``"learned"`` (the network outputs
            twice the channels on dim 1, the prediction then ``v`` with
            :math:`\log\sigma_t^2 = \frac{v+1}{2}\log\beta_t + \frac{1-v}{2}\log\tilde\beta_t`).
        decoder: ``"gaussian"`` (continuous data) or ``"discretized"`` (data on
            ``grid_points`` values evenly spaced on ``[-1, 1]``).
        grid_points: number of data values for the discretised decoder
            (256 for 8-bit images, 17 for the digits).
        validate_args: refuse NaN/inf data and model outputs (``None``: follow
            ``pyro.enable_validation``, on by default); with ``False``, NaN in
            gives NaN out.

    References:
        Denoising Diffusion Probabilistic Models (Ho et al., 2020),
        https://arxiv.org/abs/2006.11239;
        Improved Denoising Diffusion Probabilistic Models (Nichol & Dhariwal, 2021),
        https://arxiv.org/abs/2102.09672;
        Progressive Distillation for Fast Sampling of Diffusion Models
        (Salimans & Ho, 2022), https://arxiv.org/abs/2202.00512 (``v``).

    Example:
        >>> diffusion = GaussianDiffusion(sandflow.diffusion.NoiseSchedule.linear(100))
        >>> model = lambda xt, t: torch.zeros_like(xt)
        >>> x0 = torch.randn(8, 2)
        >>> diffusion.loss(model, x0).shape
        torch.Size([])
        >>> diffusion.elbo(model, x0).denoising.shape
        torch.Size([8, 99])
        >>> diffusion.sample(model, (4, 2), steps=10).shape
        torch.Size([4, 2])
    """

    def extra_repr(self) -> str:  # noqa: D102
        return (
            f"{self.schedule}, parameterization={self.parameterization!r}, "
            f"reverse_variance={self.reverse_variance!r}, decoder={self.decoder!r}"
            + (f", grid_points={self.grid_points}" if self.decoder == "discretized" else "")
        )

    def respace(self, steps: int) -> GaussianDiffusion:
        """The same diffusion on ``steps`` of its T timesteps (see :meth:`NoiseSchedule.respace`).

        The network is still called with the original timesteps, so a model
        trained on this diffusion serves the short chain unchanged.
        """
        schedule, timesteps = self.schedule.respace(steps)
        short = GaussianDiffusion(
            schedule,
            self.parameterization,
            self.reverse_variance,
            self.decoder,
            self.grid_points,
            self._validate_args,
        ).to(self.betas.device)
        short.model_timesteps = self.model_timesteps[timesteps.to(self.betas.device)]
        return short

    # -- the forward process q --------------------------------------------
    def marginal(self, x0: Tensor, t: int | Tensor) -> dist.Normal:
        r"""q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I), elementwise."""
        self.check_input(x0)
        t = self.check_timesteps(t, x0)
        return dist.Normal(
            self.extract(self.sqrt_alpha_bars, t, x0) * x0,
            self.extract(self.sqrt_one_minus_alpha_bars, t, x0),
        )

    def posterior(self, x0: Tensor, xt: Tensor, t: int | Tensor) -> dist.Normal:
        r"""q(x_{t-1} | x_t, x_0) = N(mu_tilde, beta_tilde_t I): a noising step undone, elementwise.

        At ``t = 1`` it is the point mass at ``x_0`` (zero variance).
        """
        self.check_input(x0)
        self.check_input(xt, name="xt", data=False)
        t = self.check_timesteps(t, x0)
        mean, variance = self.q_posterior_mean_variance(x0, xt, t)
        return dist.Normal(mean, variance.sqrt().expand_as(mean), validate_args=False)

    def forward_process(self, x0: Tensor) -> MarkovChain:
        r"""q(x_{1:T} | x_0) = prod_t q(x_t | x_{t-1}) as a :class:`MarkovChain` started at ``x0``.

        Its trajectories hold ``x_0`` (a point mass at the data) at time index
        0, so index ``t`` is ``x_t``: shape ``(batch, T + 1, *event)``.
        """
        self.check_input(x0)
        events = x0.dim() - 1

        def step(t: Tensor, x_prev: Tensor) -> Distribution:
            loc = self.extract(self.sqrt_alphas, t, x_prev) * x_prev
            return dist.Normal(loc, self.extract(self.sqrt_betas, t, x_prev)).to_event(events)

        return MarkovChain(dist.Delta(x0, event_dim=events), step, self.num_steps)

    # -- the reverse process p ---------------------------------------------
    def reverse_step(self, model: Model, xt: Tensor, t: int | Tensor) -> Distribution:
        r"""p(x_{t-1} | x_t) = N(mu_theta(x_t, t), sigma_t^2), elementwise; at t = 1 the decoder."""
        self.check_input(xt, model, name="xt", data=False)
        t = self.check_timesteps(t, xt)
        return self.p_distribution(*self.p_mean_variance(model, xt, t), t)

    def reverse_process(self, model: Model, shape: Sequence[int]) -> MarkovChain:
        r"""p(x_{0:T}) = p(x_T) prod_t p(x_{t-1} | x_t): a :class:`MarkovChain` from noise to data.

        ``shape`` is the event shape of one example. The chain runs in
        sampling order: its time index ``k`` holds ``x_{T-k}`` (noise first,
        data last); flip that axis for the order of :meth:`forward_process`.
        """
        shape = torch.Size(shape)
        events, T = len(shape), self.num_steps
        noise = torch.zeros(shape, dtype=torch.get_default_dtype(), device=self.betas.device)
        x_T = noise.unsqueeze(0)
        self.check_input(x_T, model, name="x_T (drawn in the default dtype)", data=False)

        def step(k: Tensor, x_prev: Tensor) -> Distribution:
            t = T + 1 - k
            xt = x_prev.reshape(-1, *shape)
            mean, log_variance = self.p_mean_variance(model, xt, t.flatten())
            log_variance = log_variance.expand_as(mean).reshape(x_prev.shape)
            p = self.p_distribution(mean.view(x_prev.shape), log_variance, t)
            return p.to_event(events)

        return MarkovChain(dist.Normal(noise, 1.0).to_event(events), step, T)

    # -- objectives and sampling -----------------------------------------------
    def elbo(self, model: Model, x0: Tensor, steps_per_call: int | None = None) -> _elbo.ELBO:
        """The exact all-steps ELBO and its terms; see :func:`sandflow.diffusion.elbo.elbo`."""
        return _elbo.elbo(self, model, x0, steps_per_call)

    def bits_per_dim(self, model: Model, x0: Tensor, steps_per_call: int | None = None) -> Tensor:
        """``-ELBO / (D log 2)`` per example; see :func:`sandflow.diffusion.elbo.bits_per_dim`."""
        return _elbo.bits_per_dim(self, model, x0, steps_per_call)

    def probability_flow(
        self, model: Model, event_shape: Sequence[int], **options: object
    ) -> ContinuousFlow:
        """The ODE flow from ``N(0, I)`` to data with this model's marginals.

        See :func:`sandflow.diffusion.probability_flow.probability_flow`.
        """
        return _probability_flow.probability_flow(self, model, event_shape, **options)

    def distribution(
        self, model: Model, event_shape: Sequence[int], **options: object
    ) -> TransformedDistribution:
        """The model's exact likelihood through its probability-flow ODE, as a distribution.

        See :func:`sandflow.diffusion.probability_flow.distribution`.
        """
        return _probability_flow.distribution(self, model, event_shape, **options)

    def loss(
        self, model: Model, x0: Tensor, weighting: str = "simple", vlb_weight: float = 1e-3
    ) -> Tensor:
        """A training loss at random timesteps; see :func:`sandflow.diffusion.losses.loss`."""
        return _losses.loss(self, model, x0, weighting, vlb_weight)

    def sample(
        self,
        model: Model,
        shape: Sequence[int],
        method: str = "ancestral",
        steps: int | None = None,
        eta: float = 0.0,
        trajectory: bool = False,
    ) -> Tensor:
        """Draw samples from noise; see :func:`sandflow.diffusion.sampling.sample`.

        ``steps`` runs the chain respaced to that many timesteps
        (:meth:`respace`; ``None``: all ``T``).
        """
        chain = self if steps is None else self.respace(steps)
        return _sampling.sample(chain, model, shape, method, eta, trajectory)
