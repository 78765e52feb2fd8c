"""Elementwise bijectors: :class:`Affine`, :class:`Sigmoid` and :class:`Logit`."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import constraints

from sandflow.bijectors.base import Bijector, sum_rightmost, with_event_dim
from sandflow.bijectors.checks import ShapeError, batch_shape_of

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
        shape = self.log_scale.shape
        # parameters that span the first event dimension (ActNorm's channels) give its size
        spans = len(shape) == self.event_dim > 0 and shape[0] > 1
        batch = batch_shape_of(x, self.event_dim, type(self).__name__, shape[0] if spans else None)
        event_shape = x.shape[x.dim() - self.event_dim :]
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
    """Refuse values outside (0, 1); NaN is no value at all and goes through as NaN."""
    outside = (y <= 0) | (y >= 1)
    if bool(outside.any()):
        bad = y[outside].flatten()[:3].tolist()
        raise ValueError(
            f"{name} needs values strictly inside (0, 1); got out-of-support values such as {bad}"
        )


def _sigmoid(x: Tensor) -> Tensor:
    """``sigmoid(x)`` clamped into the open interval: ``[tiny, 1 - eps / 2]`` of the dtype.

    In float32 ``sigmoid(17)`` already rounds to 1.0 and ``sigmoid(-104)`` to 0;
    the clamp keeps every output a valid input of the inverse (as torch's
    ``SigmoidTransform`` does with ``clamp_probs``, but to the nearest
    representable numbers, so that no precision is lost inside the interval).
    NaN stays NaN.
    """
    info = torch.finfo(x.dtype)
    return torch.sigmoid(x).clamp(info.tiny, 1 - info.eps / 2)


def _sigmoid_log_det(x: Tensor) -> Tensor:
    """``log sigmoid'(x) = -softplus(-x) - softplus(x)``, stable for any real ``x``."""
    return -F.softplus(-x) - F.softplus(x)


def _logit_log_det(y: Tensor) -> Tensor:
    """``log|logit'(y)| = -log y - log(1 - y)``, exact in ``y`` up to both edges of (0, 1)."""
    return -torch.log(y) - torch.log1p(-y)


class Sigmoid(Bijector):
    r"""Logistic sigmoid :math:`y = 1 / (1 + e^{-x})`, from the reals onto :math:`(0, 1)`.

    .. math::
        \log|\det J| = -\sum_{\text{event}} \mathrm{softplus}(-x) + \mathrm{softplus}(x).

    Outputs are clamped into :math:`[\text{tiny}, 1 - \epsilon/2]` of the dtype
    (the smallest normal number and the largest number below 1), so that a
    sample never lands on the edge of the codomain: float32 rounds
    ``sigmoid(17)`` to 1. The inverse rejects values outside :math:`(0, 1)`
    with a ``ValueError``, and its log-det :math:`-\log y - \log(1 - y)` is
    exact in :math:`y` up to both edges.

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
        return _sigmoid(x), sum_rightmost(_sigmoid_log_det(x), self.event_dim)

    def inverse_and_log_det(
        self, y: Tensor, context: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        _check_unit_interval(y, "Sigmoid.inverse")
        return torch.logit(y), sum_rightmost(_logit_log_det(y), self.event_dim)


class Logit(Bijector):
    r"""Logit :math:`y = \log x - \log(1 - x)`, from :math:`(0, 1)` onto the reals.

    The inverse of :class:`Sigmoid`, used at the data end of a flow on data in
    a bounded interval (dequantised images). Inputs outside :math:`(0, 1)`
    raise a ``ValueError`` that names them; the inverse clamps as
    :class:`Sigmoid` does, so that ``Logit`` round trips hold at both edges.

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
        return torch.logit(x), sum_rightmost(_logit_log_det(x), self.event_dim)

    def inverse_and_log_det(
        self, y: Tensor, context: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        return _sigmoid(y), sum_rightmost(_sigmoid_log_det(y), self.event_dim)
