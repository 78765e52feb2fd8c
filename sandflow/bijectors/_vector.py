"""Shared set-up of the single-layer vector flows (:class:`Planar`, :class:`Radial`)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sandflow.bijectors.base import Bijector
from sandflow.bijectors.checks import batch_shape_of, check_size

__all__ = ["VectorBijector"]


class VectorBijector(Bijector):
    """A bijector on vectors of ``features`` entries (``event_dim=1``).

    Args:
        features: size of the last dimension of its inputs.
    """

    def __init__(self, features: int) -> None:
        check_size(type(self).__name__, "features", features)
        super().__init__(event_dim=1)
        self.features = features

    def uniform_parameter(self, *shape: int) -> nn.Parameter:
        """A parameter drawn from ``U(-1/sqrt(features), 1/sqrt(features))``."""
        bound = 1 / math.sqrt(self.features)
        return nn.Parameter(torch.empty(shape).uniform_(-bound, bound))

    @staticmethod
    def positive(raw: Tensor) -> Tensor:
        """``softplus(raw)``, at least the dtype's smallest normal number: never 0 once rounded."""
        return F.softplus(raw).clamp_min(torch.finfo(raw.dtype).tiny)

    def _check(self, x: Tensor) -> None:
        batch_shape_of(x, 1, type(self).__name__, self.features)
