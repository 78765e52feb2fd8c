"""Masked autoregressive flows: :class:`MaskedAutoregressive` (MAF, and IAF with ``iaf=True``)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from sandflow.bijectors.base import ConditionalBijector, ShapeError, batch_shape_of
from sandflow.bijectors.coupling import soft_clamp
from sandflow.bijectors.spline import rational_quadratic_spline
from sandflow.nn.made import MADE

__all__ = ["MaskedAutoregressive"]

TRANSFORMS = ("affine", "spline")


class MaskedAutoregressive(ConditionalBijector):
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
    is exact, gradients included. The elementwise map :math:`\tau` is affine,
    :math:`\tau(u) = u\,e^{s} + m` with the log-scale soft-clamped to
    :math:`(-b, b)` (``log_scale_bound``), or a rational-quadratic spline with
    identity tails (``transform="spline"``, see
    :func:`~sandflow.bijectors.spline.rational_quadratic_spline`). The last
    layer of the network starts at zero, so the layer starts as the identity.

    Args:
        features: number of features :math:`D` (``event_dim=1``).
        hidden: hidden sizes of the MADE network.
        context: number of context features (0: unconditional).
        iaf: condition on the noise (fast sampling) instead of the data.
        transform: ``"affine"`` or ``"spline"``.
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
        transform: str = "affine",
        bins: int = 8,
        bound: float = 5.0,
        log_scale_bound: float = 3.0,
        order: Sequence[int] | Tensor | None = None,
    ) -> None:
        if transform not in TRANSFORMS:
            raise ValueError(f"transform must be one of {TRANSFORMS}, got {transform!r}")
        if transform == "spline" and (not isinstance(bins, int) or bins < 1):
            raise ValueError(f"a spline needs bins >= 1, got {bins!r}")
        super().__init__(context=context, event_dim=1)
        self.features, self.iaf, self.transform = features, iaf, transform
        self.bins, self.bound, self.log_scale_bound = bins, float(bound), float(log_scale_bound)
        self.num_params = 2 if transform == "affine" else 3 * bins - 1
        self.made = MADE(
            features, self.num_params, tuple(hidden), context=context, order=order, zero_last=True
        )

    def _params(self, v: Tensor, context: Tensor | None) -> Tensor:
        """Parameters of every feature, ``(..., features, num_params)``, given ``v``."""
        if context is not None:
            v = torch.cat((v, context), dim=-1)
        return self.made(v).unflatten(-1, (self.num_params, self.features)).transpose(-1, -2)

    def _tau(self, v: Tensor, params: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        """The elementwise map (noise to data, or back) and its summed log-det."""
        if self.transform == "spline":
            out, log_det = rational_quadratic_spline(v, params, bound=self.bound, inverse=inverse)
            return out, log_det.sum(-1)
        raw_log_scale, shift = params.unbind(-1)
        log_scale = soft_clamp(raw_log_scale, self.log_scale_bound)
        if inverse:
            return (v - shift) * torch.exp(-log_scale), -log_scale.sum(-1)
        return v * torch.exp(log_scale) + shift, log_scale.sum(-1)

    def _map(self, x: Tensor, context: Tensor | None, inverse: bool) -> tuple[Tensor, Tensor]:
        batch_shape_of(x, 1, type(self).__name__)
        if x.shape[-1] != self.features:
            raise ShapeError(
                f"{type(self).__name__} was built for {self.features} features, "
                f"got shape {tuple(x.shape)}."
            )
        context = self._context_for(x, context)
        if inverse != self.iaf:  # the network reads this direction's input: one pass
            return self._tau(x, self._params(x, context), inverse)
        out = torch.zeros_like(x)
        for _ in range(self.features):
            out, log_det = self._tau(x, self._params(out, context), inverse)
        return out, log_det

    def extra_repr(self) -> str:
        return (
            f"features={self.features}, iaf={self.iaf}, transform={self.transform!r}, "
            + super().extra_repr()
        )
