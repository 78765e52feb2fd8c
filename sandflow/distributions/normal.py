"""The base of a flow: :class:`DiagonalNormal`, a Gaussian over whole events in closed form."""

from __future__ import annotations

import math

import torch
from pyro.distributions import TorchDistribution
from torch import Tensor
from torch.distributions import constraints

from sandflow.bijectors.base import sum_rightmost, with_event_dim

__all__ = ["DiagonalNormal"]

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


class DiagonalNormal(TorchDistribution):
    r"""Independent Gaussians over events of ``event_dim`` dimensions, :math:`N(\mu, \sigma^2 I)`.

    .. math::
        \log p(z) = -\tfrac12 \sum_i \Big(\frac{z_i - \mu_i}{\sigma_i}\Big)^2
                    - \sum_i \log \sigma_i - \tfrac{n}{2} \log 2\pi.

    The same law as ``Normal(loc, scale).to_event(event_dim)``, computed in
    one closed form (a few kernels, no per-call validation of its own
    parameters): the base distribution of every :class:`~sandflow.flows.Flow`,
    whose ``loc`` and ``scale`` are buffers that are valid by construction.

    Args:
        loc: the mean :math:`\mu`; its rightmost ``event_dim`` dims are the event.
        scale: the standard deviation :math:`\sigma > 0`, shaped like ``loc``.
        event_dim: number of rightmost dimensions forming one event.
        validate_args: check ``log_prob``'s values against the support.

    Example:
        >>> d = DiagonalNormal(torch.zeros(3), torch.ones(3), event_dim=1)
        >>> d.log_prob(torch.zeros(3))
        tensor(-2.7568)
        >>> d.sample((2,)).shape
        torch.Size([2, 3])
    """

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    has_rsample = True

    def __init__(
        self, loc: Tensor, scale: Tensor, event_dim: int, validate_args: bool | None = None
    ) -> None:
        if loc.shape != scale.shape or loc.dim() < event_dim:
            raise ValueError(
                f"DiagonalNormal needs loc and scale of one shape with at least event_dim="
                f"{event_dim} dims, got {tuple(loc.shape)} and {tuple(scale.shape)}"
            )
        self.loc, self.scale, self._event_dim = loc, scale, event_dim
        cut = loc.dim() - event_dim
        super().__init__(loc.shape[:cut], loc.shape[cut:], validate_args=False)
        self._validate_args = bool(validate_args)

    @constraints.dependent_property(is_discrete=False)
    def support(self) -> constraints.Constraint:
        return with_event_dim(constraints.real, self._event_dim)

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def variance(self) -> Tensor:
        return self.scale.square()

    def rsample(self, sample_shape: torch.Size | tuple[int, ...] = ()) -> Tensor:
        shape = self._extended_shape(torch.Size(sample_shape))
        noise = torch.randn(shape, dtype=self.loc.dtype, device=self.loc.device)
        return self.loc + self.scale * noise

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        z = (value - self.loc) / self.scale
        normalizer = sum_rightmost(self.scale.log(), self._event_dim)
        normalizer = normalizer + HALF_LOG_2PI * self.event_shape.numel()
        return -0.5 * sum_rightmost(z * z, self._event_dim) - normalizer

    def entropy(self) -> Tensor:
        n = self.event_shape.numel()
        return sum_rightmost(self.scale.log(), self._event_dim) + n * (0.5 + HALF_LOG_2PI)

    def expand(
        self, batch_shape: torch.Size | tuple[int, ...], _instance: DiagonalNormal | None = None
    ) -> DiagonalNormal:
        shape = torch.Size(batch_shape) + self.event_shape
        return DiagonalNormal(
            self.loc.expand(shape), self.scale.expand(shape), self._event_dim, self._validate_args
        )
