"""Change of variables with sandflow bijectors: :class:`TransformedDistribution`."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pyro.distributions as dist
import torch
from torch import Tensor
from torch.distributions import Distribution

from sandflow.bijectors.base import Bijector, sum_rightmost
from sandflow.bijectors.checks import check_finite, check_tensor, reference_tensor
from sandflow.bijectors.compose import Chain

__all__ = ["TransformedDistribution"]

_BASE_SAMPLE = "the base distribution's sample"


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
            :meth:`log_prob`, and refuse NaN or infinite results (log-densities
            and samples). Dtype and device are always checked, once per call.

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

    def _validate(self, name: str, given: Tensor, *results: tuple[str, Tensor]) -> None:
        """Under validation, refuse NaN or infinite results, naming a non-finite input first.

        One sync: the sum of the results is finite unless one of them is not (a
        sum that overflows is checked entry by entry). A NaN or infinite input
        always gives a non-finite result (a density of a non-finite point is
        not a number), so ``given`` is only looked at on that path. A
        non-finite result of finite input comes with its likely cause (NaN
        parameters, or an overflowing map).
        """
        if not self._validate_args or torch.compiler.is_compiling():
            return
        total = results[0][1].detach().sum()
        for _, result in results[1:]:
            total = total + result.detach().sum()
        if math.isfinite(total.item()):
            return
        check_finite(name, given)
        failing = [(n, r) for n, r in results if not bool(torch.isfinite(r).all())]
        if not failing:
            return
        name, result = failing[0]
        params = list(self.bijector.parameters())
        broken = sum(int((~torch.isfinite(p)).sum()) for p in params)
        cause = (
            f"{broken} of the bijector's {sum(p.numel() for p in params)} parameters are NaN "
            "or infinite (a diverged training step: lower the learning rate or clip the "
            "gradients)"
            if broken
            else "the parameters are finite, so the map overflowed (an input far outside the "
            "data, or weights grown by a diverging training run: lower the learning rate or "
            "clip the gradients)"
        )
        raise ValueError(
            f"{name} is NaN or infinite for {int((~torch.isfinite(result)).sum())} of "
            f"{result.numel()} entries from finite input: {cause}; validate_args=False lets "
            "non-finite results through"
        )

    def log_prob(self, value: Tensor) -> Tensor:
        """``log p(x)`` by one inverse pass of the bijector.

        Raises:
            TypeError: for a value in another dtype than the bijector's parameters.
            ValueError: for a value on another device and, under validation,
                for NaN or infinite values or a non-finite result.
        """
        check_tensor("value", value, reference_tensor(self.bijector))
        # torch's check cannot reshape an empty batch; a compiled graph cannot branch on data
        if self._validate_args and value.numel() and not torch.compiler.is_compiling():
            try:
                self._validate_sample(value)
            except ValueError:
                check_finite("value", value)  # NaN is named as such, not as out of support
                raise
        z, log_det = self.bijector.inverse_and_log_det_cached(value)
        result = self.base_dist.log_prob(z) + sum_rightmost(log_det, self._extra_event_dims())
        self._validate("value", value, ("log_prob", result))
        return result

    def rsample_and_log_prob(
        self, sample_shape: torch.Size | tuple[int, ...] = ()
    ) -> tuple[Tensor, Tensor]:
        """A reparameterised sample and its ``log_prob``, from one forward pass.

        The reverse-KL objective of variational inference needs both; this
        avoids the inverse pass that ``log_prob(rsample())`` would run.
        """
        z = self.base_dist.rsample(sample_shape)
        check_tensor(_BASE_SAMPLE, z, reference_tensor(self.bijector))
        x, log_det = self.bijector.forward_and_log_det(z)
        log_prob = self.base_dist.log_prob(z) - sum_rightmost(log_det, self._extra_event_dims())
        self._validate(_BASE_SAMPLE, z, ("the sample", x), ("its log_prob", log_prob))
        return x, log_prob

    def sample_and_log_prob(
        self, sample_shape: torch.Size | tuple[int, ...] = ()
    ) -> tuple[Tensor, Tensor]:
        """As :meth:`rsample_and_log_prob`, without gradients."""
        with torch.no_grad():
            return self.rsample_and_log_prob(sample_shape)

    def _push(self, z: Tensor) -> Tensor:
        check_tensor(_BASE_SAMPLE, z, reference_tensor(self.bijector))
        x = self.bijector(z)
        self._validate(_BASE_SAMPLE, z, ("the sample", x))
        return x

    def rsample(self, sample_shape: torch.Size | tuple[int, ...] = ()) -> Tensor:
        """A reparameterised sample: a base sample through one forward pass."""
        return self._push(self.base_dist.rsample(sample_shape))

    def sample(self, sample_shape: torch.Size | tuple[int, ...] = ()) -> Tensor:
        """A sample without gradients."""
        with torch.no_grad():
            return self._push(self.base_dist.sample(sample_shape))
