"""Masked autoregressive flows: :class:`MaskedAutoregressive` (MAF, and IAF with ``iaf=True``)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from sandflow.bijectors.base import Bijector, CheckedSettings
from sandflow.bijectors.checks import batch_shape_of, check_size
from sandflow.bijectors.maps import ElementwiseMap, SoftClampedAffine
from sandflow.bijectors.spline import RationalQuadraticSpline
from sandflow.nn.made import MADE

__all__ = ["MaskedAutoregressive"]


class MaskedAutoregressive(CheckedSettings, Bijector):
    r"""Autoregressive map :math:`x_i = \tau(u_i; \theta_i(x_{<i}, c))` (MAF) or its IAF mirror.

    Forward is the sampling direction, noise :math:`u` to data :math:`x`. A
    MADE network (:class:`~sandflow.nn.MADE`) gives the parameters of feature
    :math:`i` from the features before it in the autoregressive order, so the
    Jacobian is triangular in that order and

    .. math::
        \log|\det J| = \sum_i \log|\partial \tau / \partial u_i|.

    * ``iaf=False`` (MAF, for density estimation): :math:`\theta_i` depends on
      the data, :math:`u_i = \tau^{-1}(x_i; \theta_i(x_{<i}))`; the density
      direction (``log_prob``) is one network pass, sampling is :math:`D`
      passes.
    * ``iaf=True`` (IAF, for variational inference): :math:`\theta_i` depends on
      the noise, :math:`x_i = \tau(u_i; \theta_i(u_{<i}))`; sampling with its
      log-density (``rsample_and_log_prob``) is one pass, ``log_prob`` of
      given data is :math:`D` passes.

    The sequential direction runs the network :math:`D` times; after pass
    :math:`k` the first :math:`k` features (in order) are exact, so the result
    is exact, gradients included. The elementwise map :math:`\tau` is an
    :class:`~sandflow.bijectors.maps.ElementwiseMap`, the same objects that
    coupling layers take: ``"affine"`` (the default) is
    :math:`\tau(u) = u\,e^{s} + m` with the log-scale soft-clamped to
    :math:`(-b, b)` (``log_scale_bound``), ``"spline"`` a rational-quadratic
    spline with identity tails (``bins``, ``bound``), and any map object may be
    passed instead. The last layer of the network starts at zero, so the layer
    starts as the identity.

    Args:
        features: number of features :math:`D` (``event_dim=1``).
        hidden: hidden sizes of the MADE network.
        context: number of context features (0: unconditional).
        iaf: condition on the noise (fast sampling) instead of the data.
        transform: ``"affine"``, ``"spline"`` or an elementwise map object.
        bins: number of spline bins (``transform="spline"``).
        bound: half-width of the spline interval (``transform="spline"``).
        log_scale_bound: soft bound of the affine log-scale.
        order: the autoregressive order, a permutation of ``range(features)``.

    References:
        Masked Autoregressive Flow for Density Estimation (Papamakarios,
        Pavlakou & Murray, 2017). https://arxiv.org/abs/1705.07057

        Improved Variational Inference with Inverse Autoregressive Flow
        (Kingma, Salimans, Jozefowicz, Chen, Sutskever & Welling, 2016).
        https://arxiv.org/abs/1606.04934

    Example:
        >>> maf = MaskedAutoregressive(3, hidden=(16,))
        >>> u, log_det = maf.inverse_and_log_det(torch.randn(10, 3))  # one pass
        >>> u.shape, log_det.shape
        (torch.Size([10, 3]), torch.Size([10]))
    """

    def __init__(
        self,
        features: int,
        *,
        hidden: Sequence[int] = (256, 256),
        context: int = 0,
        iaf: bool = False,
        transform: str | ElementwiseMap = "affine",
        bins: int = 8,
        bound: float = 5.0,
        log_scale_bound: float = 3.0,
        order: Sequence[int] | Tensor | None = None,
    ) -> None:
        if not isinstance(features, int) or features < 1:
            raise ValueError(f"MaskedAutoregressive needs features >= 1, got {features!r}")
        if transform == "affine":
            transform = SoftClampedAffine(log_scale_bound)
        elif transform == "spline":
            transform = RationalQuadraticSpline(bins, bound)
        elif not isinstance(transform, ElementwiseMap):
            raise ValueError(
                "transform must be one of 'affine', 'spline' or an ElementwiseMap, "
                f"got {transform!r}"
            )
        for size in hidden:
            check_size("MaskedAutoregressive", "hidden", size)
        super().__init__(event_dim=1, context_features=context)
        self.features, self.iaf, self.transform = features, bool(iaf), transform
        self.num_params = transform.params_per_feature
        self.made = MADE(
            features, self.num_params, tuple(hidden), context=context, order=order, zero_last=True
        )

    def _params(self, v: Tensor, context: Tensor | None) -> Tensor:
        """Parameters of every feature, ``(..., features, num_params)``, given ``v``."""
        if context is not None:
            v = torch.cat((v, context), dim=-1)
        return self.made(v).unflatten(-1, (self.num_params, self.features)).transpose(-1, -2)

    def _tau(self, v: Tensor, params: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        """The elementwise map (noise to data, or back) and its log-det summed over features."""
        out, log_det = (self.transform.inverse if inverse else self.transform.forward)(v, params)
        return out, v.new_zeros(v.shape[:-1]) if log_det is None else log_det.sum(-1)

    def _sequential(
        self, v: Tensor, context: Tensor | None, inverse: bool
    ) -> tuple[Tensor, Tensor]:
        """The direction whose network reads its own output: ``features`` passes."""
        out = torch.zeros_like(v)
        for _ in range(self.features):
            out, log_det = self._tau(v, self._params(out, context), inverse)
        return out, log_det

    def forward_and_log_det(
        self, x: Tensor, context: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        batch_shape_of(x, 1, type(self).__name__, self.features)
        context = self._context_for(x, context)
        if self.iaf:  # the network reads the noise: one pass
            return self._tau(x, self._params(x, context), inverse=False)
        return self._sequential(x, context, inverse=False)

    def inverse_and_log_det(
        self, y: Tensor, context: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        batch_shape_of(y, 1, type(self).__name__, self.features)
        context = self._context_for(y, context)
        if not self.iaf:  # the network reads the data: one pass
            return self._tau(y, self._params(y, context), inverse=True)
        return self._sequential(y, context, inverse=True)

    def settings(self) -> dict[str, bool | int | float]:
        return {"iaf": self.iaf}

    def extra_repr(self) -> str:
        return f"features={self.features}, iaf={self.iaf}, " + super().extra_repr()
