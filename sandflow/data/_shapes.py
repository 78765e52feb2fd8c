"""Toy densities with a closed-form entropy: the checkerboard and the banana."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from sandflow.data._base import ToyDensity

__all__ = ["Banana", "Checkerboard"]


class Checkerboard(ToyDensity):
    """``p(x) = 1/8`` on the black squares of a 4 x 4 board on ``[-2, 2)^2``, else 0.

    The unit square ``[i, i + 1) x [j, j + 1)`` (``i, j`` in ``-2..1``) is black
    when ``i + j`` is even; the eight black squares have total area 8, so the
    entropy is exactly ``log 8``. ``log_prob`` is ``-inf`` off the black
    squares (``support`` stays ``real_vector`` so that any point can be
    scored). A flow has a positive density everywhere, so its KL gap to the
    checkerboard stays strictly positive, and its reverse KL is infinite.

    Example:
        >>> d = sandflow.data.toy("checkerboard")
        >>> d.log_prob(torch.tensor([[-1.5, -1.5], [-0.5, -1.5]]))
        tensor([-2.0794,    -inf])
    """

    def _log_prob(self, value: Tensor) -> Tensor:
        cell = value.floor()
        inside = ((cell >= -2) & (cell <= 1)).all(-1)
        black = cell.sum(-1).remainder(2) == 0
        density = torch.full_like(value[..., 0], -math.log(8))
        return torch.where(inside & black, density, -torch.inf)

    def _sample(self, n: int, dtype: torch.dtype) -> Tensor:
        square = torch.randint(8, (n,))
        row = square // 2
        corner = torch.stack([2 * (square % 2) + row % 2, row], dim=-1).to(dtype) - 2
        point = corner + torch.rand(n, 2, dtype=dtype)
        return torch.minimum(point, torch.nextafter(corner + 1, corner))

    @classmethod
    def _entropy(cls) -> float:
        return math.log(8)


class Banana(ToyDensity):
    """``x1 ~ N(0, 1)``, ``x2 | x1 ~ N(0.5 (x1^2 - 1), 0.5^2)``: a curved Gaussian.

    The shear ``x2 -> x2 - 0.5 (x1^2 - 1)`` has unit Jacobian, so the entropy is
    that of ``N(0, diag(1, 0.5^2))``: ``log(2 pi e 0.5)``, exactly. The offset
    ``-1`` makes ``E[x2] = 0``.

    Example:
        >>> d = sandflow.data.toy("banana")
        >>> float(d.entropy())  # log(pi e)
        2.144729...
    """

    std1 = 1.0
    curvature = 0.5
    offset = 1.0
    std2 = 0.5

    def _log_prob(self, value: Tensor) -> Tensor:
        x1, x2 = value.unbind(-1)
        residual = x2 - self.curvature * (x1.square() - self.offset)
        return (
            -0.5 * (x1 / self.std1).square()
            - 0.5 * (residual / self.std2).square()
            - math.log(2 * math.pi * self.std1 * self.std2)
        )

    def _sample(self, n: int, dtype: torch.dtype) -> Tensor:
        x1 = self.std1 * torch.randn(n, dtype=dtype)
        x2 = self.curvature * (x1.square() - self.offset) + self.std2 * torch.randn(n, dtype=dtype)
        return torch.stack([x1, x2], dim=-1)

    @classmethod
    def _entropy(cls) -> float:
        return math.log(2 * math.pi * math.e * cls.std1 * cls.std2)
