r"""Elementwise maps :math:`y = \tau(x; \theta)` for coupling and autoregressive layers.

A coupling layer (:class:`~sandflow.bijectors.Coupling`) and a masked
autoregressive layer (:class:`~sandflow.bijectors.MaskedAutoregressive`) share
their structure (a network gives, for every transformed entry :math:`x_i`, the
parameters :math:`\theta_i` of a monotone scalar map) and differ only in that
map. Each map is written once, here, and passed to both:

* :class:`SoftClampedAffine`, :math:`\tau(x) = x e^{s} + t` with a bounded
  log-scale (RealNVP, Glow, MAF, IAF);
* :class:`Shift`, :math:`\tau(x) = x + t`, volume preserving (NICE);
* :class:`~sandflow.bijectors.spline.RationalQuadraticSpline` (NSF).

A map takes ``params`` of shape ``x.shape + (params_per_feature,)`` (the
parameter axis last) and returns the output with the elementwise
:math:`\log|\partial\tau/\partial x|` of the direction taken, or ``None`` for a
volume-preserving map. What defines a map (its bound, its bins) is saved in the
owner's ``state_dict`` and checked on load.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sandflow.bijectors.base import CheckedSettings

__all__ = ["ElementwiseMap", "Shift", "SoftClampedAffine", "soft_clamp"]


def soft_clamp(x: Tensor, bound: float) -> Tensor:
    """``bound * tanh(x / |bound|)``: ``sign(bound) x`` near 0, bounded by ``+-|bound|``.

    Example:
        >>> soft_clamp(torch.tensor([0.1, 100.0]), 3.0)
        tensor([0.1000, 3.0000])
    """
    return torch.tanh(x / abs(bound)) * bound


class ElementwiseMap(CheckedSettings, nn.Module):
    r"""A monotone elementwise map :math:`\tau(x; \theta)` with ``params_per_feature`` parameters.

    Subclasses set ``params_per_feature`` and implement :meth:`forward` and
    :meth:`inverse`; its :meth:`settings` (bound, bins) are saved in the
    ``state_dict`` so that a checkpoint of a differently configured map is
    refused on load with a message naming the setting.
    """

    params_per_feature: int = 1

    def forward(self, x: Tensor, params: Tensor) -> tuple[Tensor, Tensor | None]:
        """``(tau(x), log|tau'(x)|)`` elementwise; ``params`` has shape ``x.shape + (P,)``."""
        raise NotImplementedError

    def inverse(self, y: Tensor, params: Tensor) -> tuple[Tensor, Tensor | None]:
        """``(tau^{-1}(y), log|(tau^{-1})'(y)|)`` elementwise."""
        raise NotImplementedError

    def settings(self) -> dict[str, bool | int | float]:
        return {}


class SoftClampedAffine(ElementwiseMap):
    r"""Affine map :math:`\tau(x) = x\,e^{s} + t` with :math:`s = b \tanh(\tilde s / b)`.

    .. math::
        \log|\tau'(x)| = s \in (-b, b).

    The raw log-scale :math:`\tilde s` is soft-clamped to :math:`(-b, b)`
    (``bound``), so that no layer can blow up; raw parameters of zero give the
    identity. ``params[..., 0]`` is :math:`\tilde s`, ``params[..., 1]`` is :math:`t`.

    Args:
        bound: the soft bound :math:`b` of the log-scale.

    References:
        Density estimation using Real NVP (Dinh et al., 2017).
        https://arxiv.org/abs/1605.08803

    Example:
        >>> affine = SoftClampedAffine(bound=3.0)
        >>> y, log_det = affine(torch.ones(2), torch.tensor([[0.0, 1.0], [100.0, 0.0]]))
        >>> y, log_det
        (tensor([ 2.0000, 20.0855]), tensor([0., 3.]))
    """

    params_per_feature = 2

    def __init__(self, bound: float = 3.0) -> None:
        if not bound > 0:
            raise ValueError(f"SoftClampedAffine needs bound > 0, got {bound!r}")
        super().__init__()
        self.bound = float(bound)

    def forward(self, x: Tensor, params: Tensor) -> tuple[Tensor, Tensor]:
        raw_log_scale, shift = params.unbind(-1)
        log_scale = soft_clamp(raw_log_scale, self.bound)
        return x * log_scale.exp() + shift, log_scale

    def inverse(self, y: Tensor, params: Tensor) -> tuple[Tensor, Tensor]:
        raw_log_scale, shift = params.unbind(-1)
        log_scale = soft_clamp(raw_log_scale, -self.bound)  # the inverse's log-scale
        return (y - shift) * log_scale.exp(), log_scale

    def settings(self) -> dict[str, bool | int | float]:
        return {"bound": self.bound}

    def extra_repr(self) -> str:
        return f"bound={self.bound}"


class Shift(ElementwiseMap):
    r"""Additive map :math:`\tau(x) = x + t`, volume preserving (NICE).

    .. math::
        \log|\tau'(x)| = 0.

    References:
        NICE: Non-linear Independent Components Estimation (Dinh et al., 2014).
        https://arxiv.org/abs/1410.8516

    Example:
        >>> Shift()(torch.ones(2), torch.tensor([[1.0], [2.0]]))
        (tensor([2., 3.]), None)
    """

    params_per_feature = 1

    def forward(self, x: Tensor, params: Tensor) -> tuple[Tensor, None]:
        return x + params.squeeze(-1), None

    def inverse(self, y: Tensor, params: Tensor) -> tuple[Tensor, None]:
        return y - params.squeeze(-1), None
