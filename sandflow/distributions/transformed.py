"""Change of variables with sandflow bijectors: :class:`TransformedDistribution`."""

from __future__ import annotations

from collections.abc import Sequence

import pyro.distributions as dist
import torch
from torch import Tensor
from torch.distributions import Distribution

from sandflow.bijectors.base import Bijector, sum_rightmost
from sandflow.bijectors.compose import Chain

__all__ = ["TransformedDistribution"]


class TransformedDistribution(dist.TransformedDistribution):
    r"""The law of :math:`x = f(z)`, :math:`z \sim p_z`, with an exact density.

    .. math::
        \log p(x) = \log p_z(f^{-1}(x)) + \log|\det J_{f^{-1}}(x)|.

    A subclass of Pyro's ``TransformedDistribution``, so it works in
    ``pyro.sample`` (``obs=`` included), guides and ``poutine.trace``. The
    bijectors are composed into one :class:`~sandflow.bijectors.Chain`;
    :meth:`log_prob` runs one inverse pass and :meth:`rsample_and_log_prob`
    one forward pass, each computing the sample and its log-det together.
    The event shape follows the bijectors' ``forward_shape``.

    Args:
        base: the base distribution :math:`p_z` (noise).
        bijectors: a bijector or a list, applied in order from noise to data.
        validate_args: check values (shape, finiteness, support) in
            :meth:`log_prob`.

    Example:
        >>> from sandflow.bijectors import Affine
        >>> base = pyro.distributions.Normal(torch.zeros(2), 1.0).to_event(1)
        >>> d = TransformedDistribution(base, Affine(1.0, 2.0))
        >>> d.log_prob(torch.ones(2))
        tensor(-3.2242)
    """

    def __init__(
        self,
        base: Distribution,
        bijectors: Bijector | Sequence[Bijector],
        validate_args: bool | None = None,
    ) -> None:
        # One bijector whose event rank never changes: the shapes follow directly, without
        # torch's generic (and per-call costly) composition of transforms.
        bijector = bijectors if isinstance(bijectors, Bijector) else Chain(bijectors)
        missing = bijector.event_dim - len(base.event_shape)
        if missing > 0:
            if len(base.batch_shape) < missing:
                raise ValueError(
                    f"the bijector has event_dim={bijector.event_dim} but the base distribution "
                    f"has shape {tuple(base.batch_shape + base.event_shape)}"
                )
            base = dist.Independent(base, missing)
        shape = torch.Size(bijector.forward_shape(base.batch_shape + base.event_shape))
        cut = len(shape) - len(base.event_shape)
        self.base_dist = base
        self.transforms = [bijector]
        self.bijector = bijector
        Distribution.__init__(self, shape[:cut], shape[cut:], validate_args=validate_args)

    def expand(
        self, batch_shape: torch.Size, _instance: TransformedDistribution | None = None
    ) -> TransformedDistribution:
        """The distribution with ``batch_shape`` (the base is expanded, the bijector shared)."""
        new = self._get_checked_instance(TransformedDistribution, _instance)
        new = super().expand(batch_shape, _instance=new)
        new.bijector = self.bijector
        return new

    def _extra_event_dims(self) -> int:
        return len(self.base_dist.event_shape) - self.bijector.event_dim

    def log_prob(self, value: Tensor) -> Tensor:
        """``log p(x)`` by one inverse pass of the bijector."""
        if self._validate_args:
            self._validate_sample(value)
        z, log_det = self.bijector.inverse_and_log_det_cached(value)
        return self.base_dist.log_prob(z) + sum_rightmost(log_det, self._extra_event_dims())

    def rsample_and_log_prob(
        self, sample_shape: torch.Size | tuple[int, ...] = ()
    ) -> tuple[Tensor, Tensor]:
        """A reparameterised sample and its ``log_prob``, from one forward pass.

        The reverse-KL objective of variational inference needs both; this
        avoids the inverse pass that ``log_prob(rsample())`` would run.
        """
        z = self.base_dist.rsample(sample_shape)
        x, log_det = self.bijector.forward_and_log_det(z)
        return x, self.base_dist.log_prob(z) - sum_rightmost(log_det, self._extra_event_dims())

    def sample_and_log_prob(
        self, sample_shape: torch.Size | tuple[int, ...] = ()
    ) -> tuple[Tensor, Tensor]:
        """As :meth:`rsample_and_log_prob`, without gradients."""
        with torch.no_grad():
            return self.rsample_and_log_prob(sample_shape)
