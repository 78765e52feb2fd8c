"""Gaussian toy densities: equal-weight isotropic mixtures and concentric rings."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from sandflow.data._base import ToyDensity

__all__ = ["EightGaussians", "Rings", "TwoGaussians"]


class _IsotropicMixture(ToyDensity):
    """``p(x) = (1/K) sum_k N(x; mu_k, s^2 I)``: equal-weight mixture of isotropic Gaussians."""

    means: tuple[tuple[float, float], ...]
    std: float

    def _log_prob(self, value: Tensor) -> Tensor:
        means = torch.tensor(self.means, dtype=value.dtype, device=value.device)
        sq_dist = (value.unsqueeze(-2) - means).square().sum(-1)
        norm = math.log(2 * math.pi * self.std**2) + math.log(len(self.means))
        return torch.logsumexp(-0.5 * sq_dist / self.std**2, dim=-1) - norm

    def _sample(self, n: int, dtype: torch.dtype) -> Tensor:
        means = torch.tensor(self.means, dtype=dtype)
        component = torch.randint(len(self.means), (n,))
        return means[component] + self.std * torch.randn(n, 2, dtype=dtype)


class TwoGaussians(_IsotropicMixture):
    """``p(x) = N(x; (-2, 0), 0.5^2 I) / 2 + N(x; (2, 0), 0.5^2 I) / 2``.

    Two well separated modes (8 standard deviations apart): a flow fitted by
    forward KL(p || q) (maximum likelihood) covers both, one fitted by reverse
    KL(q || p) tends to lock onto one of them.

    Entropy: ``log(2 pi e 0.5^2) + log 2 = log(pi e)`` less a mode-overlap term
    of ``9.4e-5``, by the midpoint rule on ``[-6, 6] x [-4, 4]`` with spacing
    0.05; absolute error below ``1e-12``.

    Example:
        >>> round(float(sandflow.data.toy("two_gaussians").entropy()), 4)
        2.1446
    """

    means = ((-2.0, 0.0), (2.0, 0.0))
    std = 0.5
    box = (-6.0, 6.0, -4.0, 4.0)
    step = 0.05


class EightGaussians(_IsotropicMixture):
    """``p(x) = (1/8) sum_k N(x; 2 (cos(k pi/4), sin(k pi/4)), 0.2^2 I)``, ``k = 0..7``.

    Eight equal modes on the circle of radius 2, standard deviation 0.2.

    Entropy: ``log(2 pi e 0.2^2) + log 8`` less a mode-overlap term of
    ``3.6e-4``, by the midpoint rule on ``[-3.6, 3.6]^2`` with spacing 0.025;
    absolute error below ``1e-12``.

    Example:
        >>> round(float(sandflow.data.toy("eight_gaussians").entropy()), 4)
        1.6981
    """

    means = tuple((2 * math.cos(k * math.pi / 4), 2 * math.sin(k * math.pi / 4)) for k in range(8))
    std = 0.2
    box = (-3.6, 3.6, -3.6, 3.6)
    step = 0.025


class Rings(ToyDensity):
    """``p(x) = sum_k w_k Rice(|x|; r_k, s) / (2 pi |x|)``: concentric noisy rings.

    Ring ``k`` is a point uniform on the circle of radius ``r_k`` plus
    ``N(0, s^2 I)`` noise; its radius then follows the Rice distribution, and
    dividing the polar density by ``2 pi |x|`` gives the exact, smooth density

        ``p_k(x) = exp(-(|x| - r_k)^2 / (2 s^2)) i0e(r_k |x| / s^2) / (2 pi s^2)``,

    with ``i0e`` the exponentially scaled Bessel function (stable for any
    ``|x|``). Radii ``0.5, 1, 1.5, 2``, weights proportional to the radius
    (each ring equally dense along its length), ``s = 0.1``.

    Entropy: by the midpoint rule on ``[-2.8, 2.8]^2`` with spacing 0.02;
    absolute error below ``1e-12``.

    Example:
        >>> round(float(sandflow.data.toy("rings").entropy()), 4)
        2.536
    """

    radii = (0.5, 1.0, 1.5, 2.0)
    std = 0.1
    box = (-2.8, 2.8, -2.8, 2.8)
    step = 0.02

    def _log_prob(self, value: Tensor) -> Tensor:
        radii = torch.tensor(self.radii, dtype=value.dtype, device=value.device)
        log_weights = radii.log() - math.log(sum(self.radii))
        r = value.square().sum(-1, keepdim=True).sqrt()
        log_rings = (
            -0.5 * (r - radii).square() / self.std**2
            + torch.special.i0e(r * radii / self.std**2).log()
            - math.log(2 * math.pi * self.std**2)
        )
        return torch.logsumexp(log_weights + log_rings, dim=-1)

    def _sample(self, n: int, dtype: torch.dtype) -> Tensor:
        radii = torch.tensor(self.radii, dtype=dtype)
        r = radii[torch.multinomial(radii.expand(n, -1), 1).squeeze(-1)]
        angle = 2 * math.pi * torch.rand(n, dtype=dtype)
        circle = torch.stack([r * angle.cos(), r * angle.sin()], dim=-1)
        return circle + self.std * torch.randn(n, 2, dtype=dtype)
