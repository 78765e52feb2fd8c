"""The :class:`Bijector` base class: two single-pass primitives, everything else derived."""

from __future__ import annotations

import functools

import torch
from pyro.distributions.torch_transform import TransformModule
from torch import Tensor
from torch.distributions import constraints

__all__ = [
    "Bijector",
    "ConditionalBijector",
    "Conditioned",
    "ShapeError",
    "batch_shape_of",
    "one_pass",
    "sum_rightmost",
    "with_event_dim",
]


class ShapeError(ValueError):
    """An input whose shape does not fit a bijector; the message says how to fix it."""


def batch_shape_of(x: Tensor, event_dim: int, name: str = "bijector") -> torch.Size:
    """The batch shape ``x.shape[:x.dim() - event_dim]``, after checking ``x`` has the event dims.

    Raises:
        ShapeError: if ``x`` has fewer than ``event_dim`` dimensions.
    """
    if x.dim() < event_dim:
        raise ShapeError(
            f"{name} has event_dim={event_dim} but got a tensor of shape {tuple(x.shape)} "
            f"with only {x.dim()} dimension(s); add the missing event dimensions."
        )
    return x.shape[: x.dim() - event_dim]


@functools.cache
def with_event_dim(constraint: constraints.Constraint, event_dim: int) -> constraints.Constraint:
    """``constraint`` reinterpreted over ``event_dim`` rightmost dimensions (never fewer).

    Cached: distributions read the constraints of a bijector many times.
    """
    extra = event_dim - constraint.event_dim
    return constraints.independent(constraint, extra) if extra > 0 else constraint


def sum_rightmost(x: Tensor, n: int) -> Tensor:
    """Sum the ``n`` rightmost dimensions of ``x`` (``n = 0`` returns ``x``)."""
    return x.sum(tuple(range(-n, 0))) if n > 0 else x


class Bijector(TransformModule):
    r"""A differentiable bijection :math:`y = f(x)` with a tractable log-Jacobian determinant.

    A subclass implements two single-pass primitives::

        forward_and_log_det(x) -> (y, log|det J_f(x)|)
        inverse_and_log_det(y) -> (x, log|det J_{f^{-1}}(y)|)

    Everything else is derived from them: ``bij(x)`` (forward), ``bij.inv(y)``,
    ``bij.log_abs_det_jacobian(x, y)``, so a bijector works wherever a
    :class:`torch.distributions.Transform` does (Pyro's and torch's
    ``TransformedDistribution``, ``pyro.module``, autoguides).

    Contract:

    * **Direction.** Forward is the sampling direction, noise to data, as in
      torch and Pyro. The density direction (``log_prob``) runs the inverse.
    * **Events.** ``event_dim`` is the number of rightmost dimensions that form
      one event; a bijector may mix values inside an event but never across it.
      Every dimension to the left is a batch dimension, broadcast freely.
    * **Log-det shape.** Both primitives return a log-det of shape
      ``x.shape[:x.dim() - event_dim]``: summed over the event dims, never over
      the batch.
    * **Shapes.** A bijector that reshapes its event overrides
      :meth:`forward_shape` and :meth:`inverse_shape`; the rank of the event
      never changes.
    * **Caching.** With ``cache_size=1`` (torch's own mechanism) a forward or
      inverse call stores ``(x, y, log_det)`` so that a following
      ``log_abs_det_jacobian(x, y)`` on the same tensors is free. The default,
      ``cache_size=0``, stores nothing: parameters may change between calls.

    Args:
        event_dim: number of rightmost dimensions forming one event.
        cache_size: 0 (no cache) or 1 (remember the last pair), as in torch.
    """

    bijective = True
    event_dim: int = 0

    def __init__(self, event_dim: int = 0, cache_size: int = 0) -> None:
        super().__init__(cache_size=cache_size)
        self.event_dim = event_dim
        self._cached_log_det: Tensor | None = None

    # -- the two primitives -------------------------------------------------
    def forward_and_log_det(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Map noise to data: return ``y = f(x)`` and ``log|det J_f(x)|``."""
        raise NotImplementedError

    def inverse_and_log_det(self, y: Tensor) -> tuple[Tensor, Tensor]:
        """Map data to noise: return ``x = f^{-1}(y)`` and ``log|det J_{f^{-1}}(y)|``."""
        raise NotImplementedError

    # -- derived torch.distributions.Transform interface -------------------------
    @constraints.dependent_property(is_discrete=False)
    def domain(self) -> constraints.Constraint:
        """Inputs of the forward map: real events of rank ``event_dim``."""
        return with_event_dim(constraints.real, self.event_dim)

    @constraints.dependent_property(is_discrete=False)
    def codomain(self) -> constraints.Constraint:
        """Outputs of the forward map: real events of rank ``event_dim``."""
        return with_event_dim(constraints.real, self.event_dim)

    def __call__(self, x: Tensor) -> Tensor:
        """Forward map ``y = f(x)``."""
        if self._cache_size == 0:
            return self.forward_and_log_det(x)[0]
        if x is self._cached_x_y[0]:
            return self._cached_x_y[1]
        y, log_det = self.forward_and_log_det(x)
        self._cached_x_y, self._cached_log_det = (x, y), log_det
        return y

    def _inv_call(self, y: Tensor) -> Tensor:
        if self._cache_size == 0:
            return self.inverse_and_log_det(y)[0]
        if y is self._cached_x_y[1]:
            return self._cached_x_y[0]
        x, log_det = self.inverse_and_log_det(y)
        self._cached_x_y, self._cached_log_det = (x, y), -log_det
        return x

    def inverse_and_log_det_cached(self, y: Tensor) -> tuple[Tensor, Tensor]:
        """:meth:`inverse_and_log_det`, free when ``y`` is the output of the last cached call.

        With ``cache_size=1``, scoring a sample just drawn by the forward map
        (a variational guide's ``log_prob(rsample())``) needs no inverse pass.
        """
        if self._cache_size == 1 and y is self._cached_x_y[1]:
            return self._cached_x_y[0], -self._cached_log_det
        return self.inverse_and_log_det(y)

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:
        """``log|det J_f(x)|``; free after a cached call on the same ``(x, y)``."""
        if self._cache_size == 1 and x is self._cached_x_y[0] and y is self._cached_x_y[1]:
            return self._cached_log_det
        return self.forward_and_log_det(x)[1]

    def with_cache(self, cache_size: int = 1) -> Bijector:
        """Set torch's cache size in place (a module keeps its parameters) and return self."""
        if cache_size not in (0, 1):
            raise ValueError(f"cache_size must be 0 or 1, got {cache_size}")
        self._cache_size = cache_size
        self._cached_x_y, self._cached_log_det = (None, None), None
        return self

    def condition(self, context: Tensor) -> Bijector:
        """The bijector given a context; unconditional bijectors ignore it and return self."""
        return self

    def extra_repr(self) -> str:
        return f"event_dim={self.event_dim}"


class ConditionalBijector(Bijector):
    """A bijector whose parameters depend on a context tensor of ``context`` features.

    Its primitives take ``(x, context=None)``. A subclass implements both
    directions in one method, ``_map(x, context, inverse)``, or overrides
    the two primitives; ``context`` is ``None`` for an unconditional instance
    (``context=0``) and otherwise broadcast to the batch shape of ``x`` (see
    ``_context_for``). :meth:`condition` returns a plain :class:`Bijector` with the
    context bound, as Pyro's ``ConditionalTransformModule`` does.

    Args:
        context: number of context features (0: unconditional).
        event_dim: number of rightmost dimensions forming one event.
    """

    def __init__(self, context: int = 0, event_dim: int = 0) -> None:
        super().__init__(event_dim=event_dim)
        self.context_features = int(context)

    def _map(self, x: Tensor, context: Tensor | None, inverse: bool) -> tuple[Tensor, Tensor]:
        """One pass in either direction: ``(f(x), log|det J_f(x)|)`` or the inverse's."""
        raise NotImplementedError

    def forward_and_log_det(
        self, x: Tensor, context: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        return self._map(x, context, inverse=False)

    def inverse_and_log_det(
        self, y: Tensor, context: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        return self._map(y, context, inverse=True)

    def condition(self, context: Tensor) -> Bijector:
        """Bind ``context`` (shape ``(..., context)``), returning an unconditional bijector.

        A bijector built with ``context=0`` ignores the context and returns itself.
        """
        if self.context_features == 0:
            return self
        if not isinstance(context, Tensor) or context.dim() == 0:
            raise ShapeError("context must be a tensor of shape (..., context_features)")
        if context.shape[-1] != self.context_features:
            raise ShapeError(
                f"{type(self).__name__} expects a context with {self.context_features} "
                f"features in its last dimension, got shape {tuple(context.shape)}."
            )
        return Conditioned(self, context)

    def _context_for(self, x: Tensor, context: Tensor | None) -> Tensor | None:
        """Check ``context`` against the bijector and broadcast it to the batch shape of ``x``."""
        if self.context_features == 0:
            return None
        if context is None:
            raise ValueError(
                f"{type(self).__name__} is conditional (context={self.context_features}); "
                "call .condition(context) first, or flow(context) for a Flow."
            )
        batch = batch_shape_of(x, self.event_dim, type(self).__name__)
        try:
            shape = torch.broadcast_shapes(batch, context.shape[:-1])
        except RuntimeError as error:
            raise ShapeError(
                f"context batch shape {tuple(context.shape[:-1])} does not broadcast with "
                f"the input batch shape {tuple(batch)}"
            ) from error
        if shape != batch:
            raise ShapeError(
                f"context batch shape {tuple(context.shape[:-1])} is larger than the input "
                f"batch shape {tuple(batch)}; sample with a matching batch instead."
            )
        return context.expand(*batch, self.context_features)

    def extra_repr(self) -> str:
        return f"event_dim={self.event_dim}, context={self.context_features}"


class Conditioned(Bijector):
    """A :class:`ConditionalBijector` with its context bound: ``f(x; c)`` as a function of ``x``.

    Args:
        bijector: the conditional bijector.
        context: the context tensor, broadcast against the batch of each input.
    """

    def __init__(self, bijector: ConditionalBijector, context: Tensor) -> None:
        super().__init__(event_dim=bijector.event_dim)
        self.bijector = bijector
        self.context = context

    def forward_and_log_det(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.bijector.forward_and_log_det(x, self.context)

    def inverse_and_log_det(self, y: Tensor) -> tuple[Tensor, Tensor]:
        return self.bijector.inverse_and_log_det(y, self.context)

    def forward_shape(self, shape: torch.Size) -> torch.Size:
        return self.bijector.forward_shape(shape)

    def inverse_shape(self, shape: torch.Size) -> torch.Size:
        return self.bijector.inverse_shape(shape)


def one_pass(
    bijector: Bijector, x: Tensor, context: Tensor | None = None, inverse: bool = False
) -> tuple[Tensor, Tensor]:
    """One forward (or inverse) pass of ``bijector``, handing ``context`` to conditional ones."""
    if isinstance(bijector, ConditionalBijector):
        if inverse:
            return bijector.inverse_and_log_det(x, context)
        return bijector.forward_and_log_det(x, context)
    return bijector.inverse_and_log_det(x) if inverse else bijector.forward_and_log_det(x)
