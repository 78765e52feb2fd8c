"""Base class of the toy densities: a fixed 2-D distribution with exact ``log_prob`` and entropy."""

from __future__ import annotations

import functools

import torch
from pyro.distributions import TorchDistribution
from torch import Tensor
from torch.distributions import constraints

__all__ = ["ToyDensity"]


class ToyDensity(TorchDistribution):
    """A fixed density on ``R^2`` with exact ``log_prob``, ``sample`` and the true ``entropy``.

    Toy densities have ``batch_shape == ()`` and ``event_shape == (2,)``;
    ``log_prob`` accepts any batch shape ``(..., 2)``. They subclass Pyro's
    ``TorchDistribution``, so they work as observed sites in Pyro models,
    inside ``pyro.plate`` (via ``expand``) and with ``to_event``.

    The entropy ``H(p) = -E_p[log p(x)]`` turns a fit's test NLL into its
    KL gap: ``NLL(q) - H(p) = KL(p || q) >= 0``. Subclasses with no closed
    form get it by the midpoint rule on the grid ``box`` with spacing
    ``step`` in float64, computed once per class and cached. The midpoint rule
    converges geometrically for these smooth, rapidly decaying integrands;
    each subclass states the accuracy of its value.

    Subclasses implement ``_log_prob(value)`` (in the dtype of ``value``) and
    ``_sample(n, dtype)`` (``n`` points of shape ``(n, 2)``).

    Args:
        dtype: floating dtype of samples, log-densities and the entropy.
        validate_args: check the shape and support of values given to
            ``log_prob`` (the torch default when ``None``).

    Example:
        >>> d = sandflow.data.toy("banana")
        >>> isinstance(d, sandflow.data.ToyDensity), d.event_shape
        (True, torch.Size([2]))
    """

    arg_constraints: dict[str, constraints.Constraint] = {}
    support = constraints.real_vector
    has_rsample = False
    box: tuple[float, float, float, float]
    step: float

    def __init__(
        self, dtype: torch.dtype = torch.float32, validate_args: bool | None = None
    ) -> None:
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
        self.dtype = dtype
        super().__init__(torch.Size(), torch.Size([2]), validate_args=validate_args)

    def log_prob(self, value: Tensor) -> Tensor:
        """Exact log-density ``log p(x)`` of points ``x`` of shape ``(..., 2)``.

        Args:
            value: points of shape ``(..., 2)``.

        Returns:
            Log-densities of shape ``(...)`` in the distribution's dtype.

        Example:
            >>> sandflow.data.toy("checkerboard").log_prob(torch.zeros(3, 2)).shape
            torch.Size([3])
        """
        if not isinstance(value, Tensor) or value.dim() == 0 or value.shape[-1] != 2:
            shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise ValueError(
                f"{type(self).__name__}.log_prob expects points of shape (..., 2), got {shape}"
            )
        if self._validate_args and value.numel():
            self._validate_sample(value)
        return self._log_prob(value.to(self.dtype))

    def sample(self, sample_shape: torch.Size | tuple[int, ...] = ()) -> Tensor:
        """Independent draws of shape ``sample_shape + (2,)``, from torch's global generator.

        Args:
            sample_shape: leading shape of the draws.

        Returns:
            Samples in the distribution's dtype.

        Example:
            >>> sandflow.data.toy("moons").sample((4, 3)).shape
            torch.Size([4, 3, 2])
        """
        shape = torch.Size(sample_shape)
        with torch.no_grad():
            return self._sample(shape.numel(), self.dtype).reshape(shape + self.event_shape)

    def entropy(self) -> Tensor:
        """True differential entropy ``H(p) = -E_p[log p(x)]`` in nats (a 0-d tensor).

        Returns:
            The entropy in the distribution's dtype.

        Example:
            >>> float(sandflow.data.toy("checkerboard").entropy())  # log 8
            2.079441...
        """
        return torch.tensor(self._entropy(), dtype=self.dtype)

    @classmethod
    @functools.cache
    def _entropy(cls) -> float:
        """``-int p log p`` by the midpoint rule over ``box`` with spacing ``step``, in float64."""
        x_lo, x_hi, y_lo, y_hi = cls.box
        xs = _midpoints(x_lo, x_hi, cls.step)
        ys = _midpoints(y_lo, y_hi, cls.step)
        grid = torch.cartesian_prod(xs, ys)
        log_p = cls()._log_prob(grid)
        terms = torch.where(log_p > -torch.inf, -log_p.exp() * log_p, 0.0)
        return float(terms.sum() * cls.step**2)

    def _log_prob(self, value: Tensor) -> Tensor:
        raise NotImplementedError

    def _sample(self, n: int, dtype: torch.dtype) -> Tensor:
        raise NotImplementedError


def _midpoints(lo: float, hi: float, step: float) -> Tensor:
    """Cell centres ``lo + (i + 1/2) step`` of ``[lo, hi]`` cut into cells of width ``step``."""
    n = round((hi - lo) / step)
    return lo + (torch.arange(n, dtype=torch.float64) + 0.5) * step
