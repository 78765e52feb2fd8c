"""Elementwise bijectors: :class:`Affine`, :class:`Sigmoid` and :class:`Logit`."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import constraints

from sandflow.bijectors.base import (
    Bijector,
    ShapeError,
    batch_shape_of,
    sum_rightmost,
    with_event_dim,
)

__all__ = ["Affine", "Logit", "Sigmoid"]


class Affine(Bijector):
    r"""Elementwise affine map :math:`y = \mu + \sigma \odot x`.

    .. math::
        \log|\det J| = \sum_{\text{event}} \log|\sigma|.

    ``loc`` and ``scale`` broadcast against the event shape (no batch
    dimensions of their own), so a per-channel scale of shape ``(C, 1, 1)``
    acts on ``(C, H, W)`` events with log-det :math:`HW \sum_c \log|\sigma_c|`.
    With ``learnable=True`` they are parameters (``scale`` stored as
    ``log|scale|`` and a fixed sign), otherwise buffers.

    Args:
        loc: shift :math:`\mu`.
        scale: non-zero scale :math:`\sigma`.
        event_dim: number of rightmost dimensions forming one event.
        learnable: make ``loc`` and ``scale`` trainable parameters.

    Example:
        >>> bij = Affine(torch.tensor([1.0, -1.0]), torch.tensor([2.0, 0.5]), event_dim=1)
        >>> y, log_det = bij.forward_and_log_det(torch.ones(2))
        >>> y, log_det
        (tensor([ 3.0000, -0.5000]), tensor(0.))
    """

    def __init__(
        self,
        loc: Tensor | float = 0.0,
        scale: Tensor | float = 1.0,
        *,
        event_dim: int = 0,
        learnable: bool = False,
    ) -> None:
        super().__init__(event_dim=event_dim)
        loc = torch.as_tensor(loc, dtype=torch.get_default_dtype())
        scale = torch.as_tensor(scale, dtype=torch.get_default_dtype())
        if loc.dim() > event_dim or scale.dim() > event_dim:
            raise ValueError(
                f"Affine loc {tuple(loc.shape)} and scale {tuple(scale.shape)} must have at most "
                f"event_dim={event_dim} dimensions; batch parameters belong in the base."
            )
        if not torch.all(torch.isfinite(scale) & (scale != 0)):
            raise ValueError("Affine scale must be finite and non-zero")
        loc, log_scale = torch.broadcast_tensors(loc, scale.abs().log())
        for name, value in (("loc", loc), ("log_scale", log_scale)):
            if learnable:
                self.register_parameter(name, nn.Parameter(value.clone()))
            else:
                self.register_buffer(name, value.clone())
        # A sign buffer exists only where some scale is negative, so that a checkpoint of
        # a sign-flipping map never loads silently into a positive one.
        self.signed = bool((scale < 0).any())
        if self.signed:
            self.register_buffer("scale_sign", torch.broadcast_to(scale.sign(), loc.shape).clone())

    @property
    def scale(self) -> Tensor:
        r"""The signed scale :math:`\sigma`."""
        return self.scale_sign * self.log_scale.exp() if self.signed else self.log_scale.exp()

    def _log_det(self, x: Tensor) -> Tensor:
        batch = batch_shape_of(x, self.event_dim, type(self).__name__)
        event_shape = x.shape[x.dim() - self.event_dim :]
        shape = self.log_scale.shape
        pairs = zip(reversed(shape), reversed(event_shape), strict=False)
        if len(shape) > len(event_shape) or any(p not in (1, e) for p, e in pairs):
            raise ShapeError(
                f"{type(self).__name__} parameters of shape {tuple(shape)} do not "
                f"broadcast to the event shape {tuple(event_shape)} of the input."
            )
        copies = math.prod(event_shape) // max(self.log_scale.numel(), 1)
        return (self.log_scale.sum() * copies).expand(batch)

    def forward_and_log_det(
        self, x: Tensor, context: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        log_det = self._log_det(x)
        if self.signed:
            return x * self.scale + self.loc, log_det
        return x * self.log_scale.exp() + self.loc, log_det

    def inverse_and_log_det(
        self, y: Tensor, context: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        log_det = self._log_det(y)
        if self.signed:
            return (y - self.loc) / self.scale, -log_det
        return (y - self.loc) * (-self.log_scale).exp(), -log_det


def _check_unit_interval(y: Tensor, name: str) -> None:
    if not torch.all((y > 0) & (y < 1)):
        bad = y[~((y > 0) & (y < 1))].flatten()[:3].tolist()
        raise ValueError(
            f"{name} needs values strictly inside (0, 1); got out-of-support values such as {bad}"
        )


def _sigmoid_log_det(x: Tensor) -> Tensor:
    """``log sigmoid'(x) = -softplus(-x) - softplus(x)``, stable for any real ``x``."""
    return -F.softplus(-x) - F.softplus(x)


class Sigmoid(Bijector):
    r"""Logistic sigmoid :math:`y = 1 / (1 + e^{-x})`, from the reals onto :math:`(0, 1)`.

    .. math::
        \log|\det J| = -\sum_{\text{event}} \mathrm{softplus}(-x) + \mathrm{softplus}(x).

    The inverse rejects values outside :math:`(0, 1)` with a ``ValueError``.

    Args:
        event_dim: number of rightmost dimensions forming one event.

    Example:
        >>> Sigmoid()(torch.tensor([0.0]))
        tensor([0.5000])
    """

    def __init__(self, event_dim: int = 0) -> None:
        super().__init__(event_dim=event_dim)

    @constraints.dependent_property(is_discrete=False)
    def codomain(self) -> constraints.Constraint:
        return with_event_dim(constraints.unit_interval, self.event_dim)

    def forward_and_log_det(
        self, x: Tensor, context: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        return torch.sigmoid(x), sum_rightmost(_sigmoid_log_det(x), self.event_dim)

    def inverse_and_log_det(
        self, y: Tensor, context: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        _check_unit_interval(y, "Sigmoid.inverse")
        x = torch.logit(y)
        return x, -sum_rightmost(_sigmoid_log_det(x), self.event_dim)


class Logit(Bijector):
    r"""Logit :math:`y = \log x - \log(1 - x)`, from :math:`(0, 1)` onto the reals.

    The inverse of :class:`Sigmoid`, used at the data end of a flow on data in
    a bounded interval (dequantised images). Inputs outside :math:`(0, 1)`
    raise a ``ValueError`` that names them.

    Args:
        event_dim: number of rightmost dimensions forming one event.

    Example:
        >>> Logit()(torch.tensor([0.5]))
        tensor([0.])
    """

    def __init__(self, event_dim: int = 0) -> None:
        super().__init__(event_dim=event_dim)

    @constraints.dependent_property(is_discrete=False)
    def domain(self) -> constraints.Constraint:
        return with_event_dim(constraints.unit_interval, self.event_dim)

    def forward_and_log_det(
        self, x: Tensor, context: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        _check_unit_interval(x, "Logit")
        y = torch.logit(x)
        return y, -sum_rightmost(_sigmoid_log_det(y), self.event_dim)

    def inverse_and_log_det(
        self, y: Tensor, context: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        return torch.sigmoid(y), sum_rightmost(_sigmoid_log_det(y), self.event_dim)
