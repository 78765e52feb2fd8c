r"""Gaussian diffusion: noise schedules, the forward and reverse Markov chains, ELBO and samplers.

Conventions, stated once for the whole package:

* **Time.** ``x_0`` is the data and ``t = 1..T`` are the noise levels; schedule
  tensors (and every coefficient of
  :class:`~sandflow.diffusion.coefficients.DiffusionCoefficients`) have
  length ``T + 1`` and are indexed by ``t`` itself: ``alpha_bars[0] == 1``,
  ``betas[0] == 0``. A network is called as ``model(xt, t)`` with a long
  tensor of timesteps in ``1..T``.
* **The reverse step at t = 1 is the decoder** :math:`p(x_0 \mid x_1)`. The
  posterior variance :math:`\tilde\beta_1` is zero (given ``x_0`` there is
  nothing left to sample), so the decoder's variance :math:`\sigma_1^2` is
  :math:`\tilde\beta_2` for ``reverse_variance="posterior"`` (Ho et al.'s
  clipping; :math:`\beta_1` when ``T = 1``) and :math:`\beta_1` for
  ``"beta"``; ``"learned"`` interpolates between the two in log space, as
  at every other step.
* **Bins.** With ``decoder="discretized"`` the data are ``grid_points`` evenly
  spaced values on ``[-1, 1]`` (``-1`` and ``1`` included); the decoder gives
  each the Gaussian mass of its bin of width ``2 / (grid_points - 1)``
  (``2/255`` for 8-bit images, ``2/16`` for the 17 grey levels of the
  digits), the two edge bins reaching to infinity, so
  :meth:`GaussianDiffusion.bits_per_dim` is a bound on the discrete data's
  code length. (:mod:`sandflow.data` counts ``levels`` on ``[0, 1)``
  instead: level ``k`` of ``K`` is the grid point ``2 k / (K - 1) - 1``
  here.) With ``decoder="gaussian"`` it is a density in continuous space.
* **Units.** ELBO terms and losses are in nats per example, summed over the
  event (every dim but the first); bits per dim divide by ``D log 2``.
"""

from sandflow.diffusion.coefficients import DiffusionCoefficients
from sandflow.diffusion.elbo import ELBO
from sandflow.diffusion.gaussian_diffusion import GaussianDiffusion
from sandflow.diffusion.schedule import NoiseSchedule

__all__ = ["ELBO", "DiffusionCoefficients", "GaussianDiffusion", "NoiseSchedule"]
