"""Toy 2-D densities with exact log-density and entropy, looked up by name."""

from __future__ import annotations

import torch

from sandflow.data._base import ToyDensity
from sandflow.data._gaussians import EightGaussians, Rings, TwoGaussians
from sandflow.data._moons import Moons
from sandflow.data._shapes import Banana, Checkerboard

__all__ = ["TOY_NAMES", "ToyDensity", "toy"]

_TOYS: dict[str, type[ToyDensity]] = {
    "two_gaussians": TwoGaussians,
    "eight_gaussians": EightGaussians,
    "checkerboard": Checkerboard,
    "rings": Rings,
    "banana": Banana,
    "moons": Moons,
}

TOY_NAMES: tuple[str, ...] = tuple(_TOYS)
"""Names accepted by :func:`toy`."""


def toy(name: str, dtype: torch.dtype = torch.float32) -> ToyDensity:
    """The toy density ``name``: a 2-D distribution with exact ``log_prob`` and true ``entropy()``.

    Every fit to a toy density can report its KL gap, not only its NLL:
    ``KL(p || q) = E_p[-log q(x)] - H(p)``, estimated by the test NLL minus
    ``entropy()``.

    The densities (each class docstring gives the exact definition):

    - ``two_gaussians``: modes at ``(+-2, 0)``, std 0.5; entropy 2.1446.
    - ``eight_gaussians``: 8 modes on the circle of radius 2, std 0.2; entropy 1.6981.
    - ``checkerboard``: uniform on the 8 black squares of a 4 x 4 board on
      ``[-2, 2)^2``; entropy ``log 8``.
    - ``rings``: rings of radius 0.5, 1, 1.5, 2 (weight proportional to the
      radius), noise 0.1; entropy 2.5360.
    - ``banana``: ``x1 ~ N(0, 1)``, ``x2 ~ N(0.5 (x1^2 - 1), 0.5^2)``; entropy ``log(pi e)``.
    - ``moons``: the ``make_moons`` arcs, centred, noise 0.1; entropy 1.0076.

    Args:
        name: one of :data:`TOY_NAMES`.
        dtype: floating dtype of samples, log-densities and the entropy.

    Returns:
        A Pyro ``TorchDistribution`` with ``batch_shape == ()`` and
        ``event_shape == (2,)``.

    Raises:
        ValueError: if ``name`` is not a known toy density.

    Example:
        >>> d = sandflow.data.toy("two_gaussians")
        >>> x = d.sample((1000,))
        >>> x.shape, d.log_prob(x).shape
        (torch.Size([1000, 2]), torch.Size([1000]))
        >>> kl_gap = -d.log_prob(x).mean() - d.entropy()  # q = p here: about 0
    """
    if not isinstance(name, str) or name not in _TOYS:
        raise ValueError(f"unknown toy density {name!r}; valid names: {', '.join(TOY_NAMES)}")
    return _TOYS[name](dtype=dtype)
