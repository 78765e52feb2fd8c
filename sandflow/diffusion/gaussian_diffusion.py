r"""Gaussian diffusion as a pair of Markov chains: :class:`GaussianDiffusion`.

Conventions, stated once for the whole package:

* **Time.** ``x_0`` is the data and ``t = 1..T`` are the noise levels; schedule
  tensors have length ``T + 1`` and are indexed by ``t`` itself. A network is
  called as ``model(xt, t)`` with a long tensor of timesteps in ``1..T``.
* **The reverse step at t = 1 is the decoder** :math:`p(x_0 \mid x_1)`. The
  posterior variance :math:`\tilde\beta_1` is zero (given ``x_0`` there is
  nothing left to sample), so the decoder's variance :math:`\sigma_1^2` is
  :math:`\tilde\beta_2` for ``reverse_variance="posterior"`` (Ho et al.'s
  clipping; :math:`\beta_1` when ``T = 1``) and :math:`\beta_1` for
  ``"beta"``; ``"learned"`` interpolates between the two in log space, as
  at every other step.
* **Bins.** With ``decoder="discretized"`` the data are ``levels`` evenly
  spaced values on ``[-1, 1]``; the decoder gives each the Gaussian mass of
  its bin of width ``2 / (levels - 1)`` (``2/255`` for 8-bit images, ``2/16``
  for 17 grey levels), the two edge bins reaching to infinity, so
  :meth:`GaussianDiffusion.bits_per_dim` is a bound on the discrete data's
  code length. With ``decoder="gaussian"`` it is a density in continuous space.
* **Units.** ELBO terms and losses are in nats per example, summed over the
  event (every dim but the first); bits per dim divide by ``D log 2``.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyro.distributions as dist
import torch
from torch import Tensor
from torch.distributions import Distribution

from sandflow.diffusion import elbo as _elbo
from sandflow.diffusion import losses as _losses
from sandflow.diffusion import sampling as _sampling
from sandflow.diffusion.steps import DiffusionSteps, Model
from sandflow.distributions.markov_chain import MarkovChain

__all__ = ["GaussianDiffusion"]


class GaussianDiffusion(DiffusionSteps):
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
    dtype on use. Data have shape ``(batch, *event)``. The module docstring
    states the conventions at ``t = 1`` and for the bins.

    Args:
        schedule: the noise schedule.
        parameterization: what the network predicts: ``"eps"``, ``"x0"`` or ``"v"``.
        reverse_variance: :math:`\sigma_t^2`: ``"posterior"`` (:math:`\tilde\beta_t`),
            ``"beta"`` (:math:`\beta_t`) or ``"learned"`` (the network outputs
            twice the channels on dim 1, the prediction then ``v`` with
            :math:`\log\sigma_t^2 = \frac{v+1}{2}\log\beta_t + \frac{1-v}{2}\log\tilde\beta_t`).
        decoder: ``"gaussian"`` (continuous data) or ``"discretized"`` (data on
            ``levels`` values in ``[-1, 1]``).
        levels: number of data values for the discretised decoder.

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
            + (f", levels={self.levels}" if self.decoder == "discretized" else "")
        )

    def respace(self, steps: int) -> GaussianDiffusion:
        """The same diffusion on ``steps`` of its T timesteps (see :meth:`NoiseSchedule.respace`).

        The network is still called with the original timesteps, so a model
        trained on this diffusion serves the short chain unchanged.
        """
        schedule, timesteps = self.schedule.respace(steps)
        short = GaussianDiffusion(
            schedule, self.parameterization, self.reverse_variance, self.decoder, self.levels
        ).to(self.betas.device)
        short.model_timesteps = self.model_timesteps[timesteps.to(self.betas.device)]
        return short

    # -- the forward process q --------------------------------------------
    def marginal(self, x0: Tensor, t: int | Tensor) -> dist.Normal:
        r"""q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I), elementwise."""
        t = self._timesteps(t, x0)
        return dist.Normal(
            self._coef("sqrt_alpha_bars", t, x0) * x0, self._coef("sqrt_one_minus", t, x0)
        )

    def posterior(self, x0: Tensor, xt: Tensor, t: int | Tensor) -> dist.Normal:
        r"""q(x_{t-1} | x_t, x_0) = N(mu_tilde, beta_tilde_t I): a noising step undone, elementwise.

        At ``t = 1`` it is the point mass at ``x_0`` (zero variance).
        """
        t = self._timesteps(t, x0)
        std = self._coef("posterior_variances", t, x0).sqrt().expand_as(x0)
        return dist.Normal(self._posterior_mean(x0, xt, t), std, validate_args=False)

    def forward_process(self, x0: Tensor) -> MarkovChain:
        r"""q(x_{1:T} | x_0) = prod_t q(x_t | x_{t-1}) as a :class:`MarkovChain` started at ``x0``.

        Its trajectories hold ``x_0`` (a point mass at the data) at time index
        0, so index ``t`` is ``x_t``: shape ``(batch, T + 1, *event)``.
        """
        events = x0.dim() - 1

        def step(t: Tensor, x_prev: Tensor) -> Distribution:
            loc = self._coef("sqrt_alphas", t, x_prev) * x_prev
            return dist.Normal(loc, self._coef("sqrt_betas", t, x_prev)).to_event(events)

        return MarkovChain(dist.Delta(x0, event_dim=events), step, self.num_steps)

    # -- the reverse process p ---------------------------------------------
    def reverse_step(self, model: Model, xt: Tensor, t: int | Tensor) -> Distribution:
        r"""p(x_{t-1} | x_t) = N(mu_theta(x_t, t), sigma_t^2), elementwise; at t = 1 the decoder."""
        t = self._timesteps(t, xt)
        mean, log_var = self._reverse_params(model, xt, t)
        return self._reverse_distribution(mean, log_var, t.view(-1, *(1,) * (xt.dim() - 1)))

    def reverse_process(self, model: Model, shape: Sequence[int]) -> MarkovChain:
        r"""p(x_{0:T}) = p(x_T) prod_t p(x_{t-1} | x_t): a :class:`MarkovChain` from noise to data.

        ``shape`` is the event shape of one example. The chain runs in
        sampling order: its time index ``k`` holds ``x_{T-k}`` (noise first,
        data last); flip that axis for the order of :meth:`forward_process`.
        """
        shape = torch.Size(shape)
        events, T = len(shape), self.num_steps
        noise = torch.zeros(shape, dtype=torch.get_default_dtype(), device=self.betas.device)

        def step(k: Tensor, x_prev: Tensor) -> Distribution:
            t = T + 1 - k
            mean, log_var = self._reverse_params(model, x_prev.reshape(-1, *shape), t.flatten())
            log_var = log_var.expand_as(mean).reshape(x_prev.shape)
            mask = t.view(*t.shape, *(1,) * events)
            return self._reverse_distribution(mean.view(x_prev.shape), log_var, mask).to_event(
                events
            )

        return MarkovChain(dist.Normal(noise, 1.0).to_event(events), step, T)

    # -- objectives and sampling -----------------------------------------------
    def elbo(self, model: Model, x0: Tensor, steps_per_call: int | None = None) -> _elbo.ELBO:
        """The exact all-steps ELBO and its terms; see :func:`sandflow.diffusion.elbo.elbo`."""
        return _elbo.elbo(self, model, x0, steps_per_call)

    def bits_per_dim(self, model: Model, x0: Tensor, steps_per_call: int | None = None) -> Tensor:
        """``-ELBO / (D log 2)`` per example; see :func:`sandflow.diffusion.elbo.bits_per_dim`."""
        return _elbo.bits_per_dim(self, model, x0, steps_per_call)

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
        """Draw samples from noise; see :func:`sandflow.diffusion.sampling.sample`."""
        return _sampling.sample(self, model, shape, method, steps, eta, trajectory)
