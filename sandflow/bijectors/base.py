"""The :class:`Bijector` base class: two single-pass primitives, everything else derived."""

from __future__ import annotations

import functools

import torch
from pyro.distributions.conditional import ConditionalTransform
from pyro.distributions.torch_transform import TransformModule
from torch import Tensor
from torch.distributions import Transform, constraints

from sandflow.bijectors.checks import ShapeError

__all__ = [
    "Bijector",
    "CheckedSettings",
    "Conditioned",
    "sum_rightmost",
    "with_event_dim",
]


def with_event_dim(constraint: constraints.Constraint, event_dim: int) -> constraints.Constraint:
    """``constraint`` reinterpreted over ``event_dim`` rightmost dimensions (never fewer).

    Cached in eager mode: distributions read the constraints of a bijector many
    times. Under ``torch.compile`` the constraint is built afresh (at trace time).
    """
    extra = event_dim - constraint.event_dim
    if extra <= 0:
        return constraint
    if torch.compiler.is_compiling():
        return constraints.independent(constraint, extra)
    return _independent(constraint, extra)


@functools.cache
def _independent(constraint: constraints.Constraint, extra: int) -> constraints.Constraint:
    return constraints.independent(constraint, extra)


def sum_rightmost(x: Tensor, n: int) -> Tensor:
    """Sum the ``n`` rightmost dimensions of ``x`` (``n = 0`` returns ``x``)."""
    return x.sum(tuple(range(-n, 0))) if n > 0 else x


class CheckedSettings:
    """Mixin for modules whose constructor settings define the map: saved and checked on load.

    A subclass implements :meth:`settings`, a dict of numbers (bools, ints,
    floats) such as a direction flag, a bound or a number of bins. They travel
    in ``state_dict()`` as the module's extra state, a float64 tensor (so the
    state dict holds tensors only and loads with ``torch.load(weights_only=True)``),
    and loading a checkpoint saved with other settings raises a ``ValueError``
    naming each one, instead of silently running another map with the same
    weights.
    """

    def settings(self) -> dict[str, bool | int | float]:
        """What defines the map beyond its parameters and buffers."""
        raise NotImplementedError

    def get_extra_state(self) -> Tensor:
        return torch.tensor([float(v) for v in self.settings().values()], dtype=torch.float64)

    def set_extra_state(self, state: Tensor) -> None:
        mine = self.settings()
        saved = state.tolist() if isinstance(state, Tensor) else []
        if len(saved) != len(mine):
            raise ValueError(
                f"cannot load this checkpoint into {type(self).__name__}: it holds "
                f"{len(saved)} settings, {type(self).__name__} has {len(mine)} ({sorted(mine)})."
            )
        differ = [
            f"{key}={type(value)(old)!r} in the checkpoint but {value!r} here"
            for (key, value), old in zip(mine.items(), saved, strict=True)
            if float(value) != old
        ]
        if differ:
            raise ValueError(
                f"cannot load this checkpoint into {type(self).__name__}: {'; '.join(differ)}. "
                "Rebuild the model with the checkpoint's settings."
            )


class Bijector(TransformModule, ConditionalTransform):
    r"""A differentiable bijection :math:`y = f(x; c)` with a tractable log-Jacobian determinant.

    A subclass implements two single-pass primitives, each with an optional
    context :math:`c`::

        forward_and_log_det(x, context=None) -> (y, log|det J_f(x)|)
        inverse_and_log_det(y, context=None) -> (x, log|det J_{f^{-1}}(y)|)

    That is the one way to write a bijector. Everything else is derived from
    them: ``bij(x)`` (forward), ``bij.inv(y)``, ``bij.log_abs_det_jacobian(x,
    y)``, so a bijector works wherever a :class:`torch.distributions.Transform`
    does (Pyro's and torch's ``TransformedDistribution``, ``pyro.module``,
    autoguides).

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
    * **Context.** ``context_features`` is the size of the last dimension of
      the context (0, the default, for an unconditional bijector, which
      ignores ``context``). A conditional bijector is a Pyro
      ``ConditionalTransform``: :meth:`condition` binds a context and returns a
      bijector of ``x`` alone, so Pyro's ``ConditionalTransformedDistribution``
      and ``bij.inv.condition(c)`` work unchanged. The context's batch shape
      broadcasts to the input's.
    * **Caching.** With ``cache_size=1`` (torch's own mechanism) a forward or
      inverse call stores ``(x, y, log_det)`` so that a following
      ``log_abs_det_jacobian(x, y)`` on the same tensors is free. The default,
      ``cache_size=0``, stores nothing: parameters may change between calls.

    Args:
        event_dim: number of rightmost dimensions forming one event.
        cache_size: 0 (no cache) or 1 (remember the last pair), as in torch.
        context_features: size of the context's last dimension (0: none).
    """

    bijective = True
    event_dim: int = 0

    def __init__(self, event_dim: int = 0, cache_size: int = 0, context_features: int = 0) -> None:
        if not isinstance(context_features, int) or context_features < 0:
            raise ValueError(f"context must be a non-negative int, got {context_features!r}")
        if not isinstance(event_dim, int) or isinstance(event_dim, bool) or event_dim < 0:
            raise ValueError(f"event_dim must be an int >= 0, got {event_dim!r}")
        super().__init__(cache_size=cache_size)
        self.event_dim = event_dim
        self.context_features = context_features
        self._cached_log_det: Tensor | None = None

    # -- the two primitives -------------------------------------------------
    def forward_and_log_det(
        self, x: Tensor, context: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Map noise to data: return ``y = f(x; c)`` and ``log|det J_f(x)|``."""
        raise NotImplementedError

    def inverse_and_log_det(
        self, y: Tensor, context: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Map data to noise: return ``x = f^{-1}(y; c)`` and ``log|det J_{f^{-1}}(y)|``."""
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

    @property
    def inv(self) -> Transform:
        """The inverse map: torch's inverse transform, or :class:`Invert` for a conditional one.

        ``bij.inv.condition(c)`` is the inverse of ``bij.condition(c)``.
        """
        if self.context_features:
            from sandflow.bijectors.compose import Invert

            return Invert(self)
        return super().inv

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

    # -- context --------------------------------------------------------------
    def condition(self, context: Tensor) -> Bijector:
        """Bind ``context`` (shape ``(..., context_features)``): a bijector of ``x`` alone.

        An unconditional bijector ignores the context and returns itself.
        """
        if self.context_features == 0:
            return self
        self._check_context(context)
        return Conditioned(self, context)

    def _check_context(self, context: object) -> None:
        if not isinstance(context, Tensor) or context.dim() == 0:
            raise ShapeError(
                f"{type(self).__name__} needs a context tensor of shape (..., "
                f"{self.context_features}), got {type(context).__name__}"
                + (f" of shape {tuple(context.shape)}" if isinstance(context, Tensor) else "")
            )
        if context.shape[-1] != self.context_features:
            raise ShapeError(
                f"{type(self).__name__} expects a context with {self.context_features} "
                f"features in its last dimension, got shape {tuple(context.shape)}."
            )

    def _context_for(self, x: Tensor, context: Tensor | None) -> Tensor | None:
        """Check ``context`` against the bijector and broadcast it to the batch shape of ``x``.

        ``None`` for an unconditional bijector, whatever it was given.
        """
        if self.context_features == 0:
            return None
        if context is None:
            raise ValueError(
                f"{type(self).__name__} is conditional (context={self.context_features}); "
                "pass context= or call .condition(context) first (flow(context) for a Flow)."
            )
        self._check_context(context)
        batch = x.shape[: x.dim() - self.event_dim]
        if context.shape[:-1] == batch:
            return context
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
        if self.context_features:
            return f"event_dim={self.event_dim}, context={self.context_features}"
        return f"event_dim={self.event_dim}"


class Conditioned(Bijector):
    """A conditional bijector with its context bound: ``f(x; c)`` as a function of ``x``.

    The context is a (non-persistent) buffer, so ``.to(device)`` moves it
    with the bijector's parameters.

    Args:
        bijector: the conditional bijector.
        context: the context tensor, broadcast against the batch of each input.
    """

    def __init__(self, bijector: Bijector, context: Tensor) -> None:
        super().__init__(event_dim=bijector.event_dim)
        self.bijector = bijector
        self.register_buffer("context", context, persistent=False)

    @constraints.dependent_property(is_discrete=False)
    def domain(self) -> constraints.Constraint:
        return self.bijector.domain

    @constraints.dependent_property(is_discrete=False)
    def codomain(self) -> constraints.Constraint:
        return self.bijector.codomain

    def forward_and_log_det(
        self, x: Tensor, context: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        return self.bijector.forward_and_log_det(x, self.context)

    def inverse_and_log_det(
        self, y: Tensor, context: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        return self.bijector.inverse_and_log_det(y, self.context)

    def forward_shape(self, shape: torch.Size) -> torch.Size:
        return self.bijector.forward_shape(shape)

    def inverse_shape(self, shape: torch.Size) -> torch.Size:
        return self.bijector.inverse_shape(shape)
