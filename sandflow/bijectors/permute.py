"""Fixed permutations of the features (or channels): :class:`Permute` and :class:`Reverse`."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from sandflow.bijectors.base import Bijector
from sandflow.bijectors.checks import batch_shape_of, check_size

__all__ = ["Permute", "Reverse"]


class Permute(Bijector):
    r"""Permutation of one axis, :math:`y_i = x_{\pi(i)}`, with :math:`\log|\det J| = 0`.

    The permuted axis is the first event dimension, ``-event_dim``: the
    features of a vector (``event_dim=1``) or the channels of a ``(C, H, W)``
    image (``event_dim=3``). Used between coupling layers so that every
    feature is transformed (Dinh et al. 2017).

    Args:
        permutation: a permutation of ``range(n)``.
        event_dim: number of rightmost dimensions forming one event.

    Example:
        >>> Permute([2, 0, 1])(torch.tensor([10.0, 20.0, 30.0]))
        tensor([30., 10., 20.])
    """

    def __init__(self, permutation: Sequence[int] | Tensor, *, event_dim: int = 1) -> None:
        if event_dim < 1:
            raise ValueError("Permute needs event_dim >= 1: it permutes within an event")
        super().__init__(event_dim=event_dim)
        permutation = torch.as_tensor(permutation, dtype=torch.long)
        if permutation.dim() != 1 or not torch.equal(
            permutation.sort().values, torch.arange(len(permutation))
        ):
            raise ValueError(f"not a permutation of range(n): {permutation.tolist()}")
        self.register_buffer("permutation", permutation)
        self.register_buffer("inverse_permutation", permutation.argsort())

    @classmethod
    def random(
        cls, features: int, *, event_dim: int = 1, generator: torch.Generator | None = None
    ) -> Permute:
        """A uniformly random permutation of ``features`` entries."""
        return cls(torch.randperm(features, generator=generator), event_dim=event_dim)

    def _permute(self, x: Tensor, index: Tensor) -> tuple[Tensor, Tensor]:
        batch = batch_shape_of(x, self.event_dim, type(self).__name__, len(index))
        return x.index_select(x.dim() - self.event_dim, index), x.new_zeros(batch)

    def forward_and_log_det(
        self, x: Tensor, context: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        return self._permute(x, self.permutation)

    def inverse_and_log_det(
        self, y: Tensor, context: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        return self._permute(y, self.inverse_permutation)


class Reverse(Permute):
    r"""Reverse the order of one axis, :math:`y_i = x_{n-1-i}` (RealNVP's alternation).

    Args:
        features: length of the reversed axis.
        event_dim: number of rightmost dimensions forming one event.

    Example:
        >>> Reverse(3)(torch.tensor([1.0, 2.0, 3.0]))
        tensor([3., 2., 1.])
    """

    def __init__(self, features: int, *, event_dim: int = 1) -> None:
        check_size("Reverse", "features", features)
        super().__init__(torch.arange(features - 1, -1, -1), event_dim=event_dim)
