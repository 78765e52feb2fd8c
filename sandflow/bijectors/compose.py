"""Composition of bijectors: :class:`Chain` (in list order) and :class:`Invert`."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn
from torch.distributions import constraints

from sandflow.bijectors.base import Bijector, sum_rightmost, with_event_dim
from sandflow.bijectors.checks import ShapeError, batch_shape_of, check_tensor, reference_tensor

__all__ = ["Chain", "Invert"]


def _describe(i: int, part: Bijector) -> str:
    return f"part {i} ({type(part).__name__}, event_dim={part.event_dim})"


class Chain(Bijector):
    r"""Composition :math:`f = f_n \circ \dots \circ f_1`: ``Chain([a, b, c])`` applies ``a`` first.

    .. math::
        \log|\det J_f(x)| = \sum_i \log|\det J_{f_i}(x_{i-1})|,
        \qquad x_0 = x,\; x_i = f_i(x_{i-1}).

    The chain's ``event_dim`` is the largest of its parts'; the log-det of a
    part with a smaller ``event_dim`` is summed over the extra dimensions.
    A context given to the chain reaches every conditional part. A part that
    rejects the shape it receives raises a :class:`ShapeError` that names the
    part, its neighbour and the shape that reached it.

    Args:
        parts: the bijectors, in the order they are applied going forward.

    Example:
        >>> from sandflow.bijectors import Affine, Sigmoid
        >>> chain = Chain([Affine(1.0, 2.0), Sigmoid()])
        >>> y, log_det = chain.forward_and_log_det(torch.zeros(3))
        >>> y
        tensor([0.7311, 0.7311, 0.7311])
    """

    def __init__(self, parts: Iterable[Bijector]) -> None:
        parts = list(parts)
        for i, part in enumerate(parts):
            if not isinstance(part, Bijector):
                raise TypeError(
                    f"Chain part {i} is a {type(part).__name__}, not a sandflow Bijector; "
                    "subclass Bijector (forward_and_log_det, inverse_and_log_det) to chain it."
                )
        contexts = {p.context_features for p in parts} - {0}
        if len(contexts) > 1:
            raise ValueError(f"Chain parts expect different context sizes {sorted(contexts)}")
        super().__init__(
            event_dim=max((p.event_dim for p in parts), default=0),
            context_features=contexts.pop() if contexts else 0,
        )
        self.parts = nn.ModuleList(parts)

    @constraints.dependent_property(is_discrete=False)
    def domain(self) -> constraints.Constraint:
        if not len(self.parts):
            return super().domain
        return with_event_dim(self.parts[0].domain, self.event_dim)

    @constraints.dependent_property(is_discrete=False)
    def codomain(self) -> constraints.Constraint:
        if not len(self.parts):
            return super().codomain
        return with_event_dim(self.parts[-1].codomain, self.event_dim)

    def forward_and_log_det(
        self, x: Tensor, context: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        return self._run(x, context, list(self.parts), forward=True)

    def inverse_and_log_det(
        self, y: Tensor, context: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        parts = list(self.parts)
        parts.reverse()
        return self._run(y, context, parts, forward=False)

    def _run(
        self, x: Tensor, context: Tensor | None, parts: list[Bijector], forward: bool
    ) -> tuple[Tensor, Tensor]:
        """Apply ``parts`` in order, summing their log-dets onto the chain's event."""
        batch_shape_of(x, self.event_dim, "Chain")
        like = reference_tensor(self)  # dtype and device, once for all the parts
        check_tensor("the Chain's input", x, like)
        if context is not None and self.context_features:
            check_tensor("context", context, like)
            self._check_context(context)  # its width, before any part wraps the error
        total: Tensor | None = None
        for step, part in enumerate(parts):
            try:
                if forward:
                    x, log_det = part.forward_and_log_det(x, context)
                else:
                    x, log_det = part.inverse_and_log_det(x, context)
            except ShapeError as error:
                raise self._shape_error(parts, step, x, forward, error) from error
            if part.event_dim != self.event_dim:
                log_det = sum_rightmost(log_det, self.event_dim - part.event_dim)
            total = log_det if total is None else total + log_det
        if total is None:
            total = x.new_zeros(x.shape[: x.dim() - self.event_dim])
        return x, total

    def _shape_error(
        self, parts: list[Bijector], step: int, x: Tensor, forward: bool, error: ShapeError
    ) -> ShapeError:
        """The error of part ``step`` of a pass, naming the part and its neighbour."""
        index = list(self.parts).index
        previous = _describe(index(parts[step - 1]), parts[step - 1]) if step else "the input"
        return ShapeError(
            f"Chain {'forward' if forward else 'inverse'} pass: "
            f"{_describe(index(parts[step]), parts[step])} received shape {tuple(x.shape)} "
            f"from {previous}: {error} Check that the parts agree on the event shape (a "
            "Squeeze changes it) or rebuild the part for the shape it receives."
        )

    def forward_shape(self, shape: torch.Size) -> torch.Size:
        for part in self.parts:
            shape = part.forward_shape(shape)
        return shape

    def inverse_shape(self, shape: torch.Size) -> torch.Size:
        for part in reversed(self.parts):
            shape = part.inverse_shape(shape)
        return shape

    def __len__(self) -> int:
        return len(self.parts)

    def __getitem__(self, index: int) -> Bijector:
        return self.parts[index]


class Invert(Bijector):
    r"""The inverse bijector :math:`f^{-1}`: forward and inverse swap, and so do their log-dets.

    Unlike ``bij.inv`` (a plain torch transform), ``Invert(bij)`` is a
    :class:`Bijector` module that owns ``bij``'s parameters, so it can sit in a
    :class:`Chain`. Use it to run a density-direction (data to noise)
    bijector as a sampling-direction one.

    Args:
        bijector: the bijector to invert.

    Example:
        >>> from sandflow.bijectors import Sigmoid
        >>> Invert(Sigmoid())(torch.tensor([0.5]))
        tensor([0.])
    """

    def __init__(self, bijector: Bijector) -> None:
        super().__init__(event_dim=bijector.event_dim, context_features=bijector.context_features)
        self.bijector = bijector

    @constraints.dependent_property(is_discrete=False)
    def domain(self) -> constraints.Constraint:
        return self.bijector.codomain

    @constraints.dependent_property(is_discrete=False)
    def codomain(self) -> constraints.Constraint:
        return self.bijector.domain

    @property
    def inv(self) -> Bijector:
        """The inverted bijector itself."""
        return self.bijector

    def forward_and_log_det(
        self, x: Tensor, context: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        return self.bijector.inverse_and_log_det(x, context)

    def inverse_and_log_det(
        self, y: Tensor, context: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        return self.bijector.forward_and_log_det(y, context)

    def forward_shape(self, shape: torch.Size) -> torch.Size:
        return self.bijector.inverse_shape(shape)

    def inverse_shape(self, shape: torch.Size) -> torch.Size:
        return self.bijector.forward_shape(shape)
