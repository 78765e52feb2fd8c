"""Coupling layers: :class:`AffineCoupling` (RealNVP, Glow) and :class:`AdditiveCoupling` (NICE)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from sandflow.bijectors.base import ConditionalBijector, ShapeError, batch_shape_of, sum_rightmost
from sandflow.nn.conv import ConvNet
from sandflow.nn.mlp import MLP

__all__ = ["AdditiveCoupling", "AffineCoupling", "Coupling", "soft_clamp"]


def soft_clamp(x: Tensor, bound: float) -> Tensor:
    """``bound * tanh(x / |bound|)``: ``sign(bound) x`` near 0, bounded by ``+-|bound|``."""
    return torch.tanh(x / abs(bound)) * bound


class Coupling(ConditionalBijector):
    r"""Coupling layer: :math:`y_A = x_A`, :math:`y_B = \tau(x_B; \theta(x_A, c))`.

    The split axis (features of a vector, ``event_dim=1``; channels of an
    image, ``event_dim=3``) is cut into a conditioning half :math:`A` (the
    first ``features // 2`` entries, or the last ones with ``swap=True``) and a
    transformed half :math:`B`. A conditioner network maps :math:`x_A` and the
    optional context :math:`c` to the parameters :math:`\theta` of an
    elementwise bijection :math:`\tau`, so the Jacobian is triangular and

    .. math::
        \log|\det J| = \sum_{i \in B} \log|\partial \tau / \partial x_i|.

    Subclasses set ``params_per_feature`` and implement :meth:`transform`.
    The default conditioner is an :class:`~sandflow.nn.MLP` for vectors and a
    :class:`~sandflow.nn.ConvNet` for images (context broadcast over pixels),
    its last layer at zero so that the layer starts near the identity.

    Args:
        features: size of the split axis.
        hidden: hidden sizes of the MLP conditioner (an int for the ConvNet).
        context: number of context features (0: unconditional).
        swap: condition on the second half and transform the first.
        event_dim: 1 for vectors, 3 for ``(C, H, W)`` images.
        conditioner: a custom network from ``(..., n_A + context)`` (or
            ``(..., n_A + context, H, W)``) to ``params_per_feature * n_B``
            entries along the split axis.
    """

    params_per_feature: int = 1

    def __init__(
        self,
        features: int,
        *,
        hidden: Sequence[int] | int = (256, 256),
        context: int = 0,
        swap: bool = False,
        event_dim: int = 1,
        conditioner: nn.Module | None = None,
    ) -> None:
        if event_dim not in (1, 3):
            raise ValueError(f"coupling layers take event_dim 1 or 3, got {event_dim}")
        if features < 2:
            raise ValueError(f"a coupling layer needs at least 2 features to split, got {features}")
        super().__init__(context=context, event_dim=event_dim)
        self.features, self.swap = features, swap
        first = features // 2
        self.sizes = (first, features - first)
        self.conditioned, self.transformed = self.sizes[::-1] if swap else self.sizes
        out = self.params_per_feature * self.transformed
        if conditioner is None:
            if event_dim == 1:
                hidden = tuple(hidden) if not isinstance(hidden, int) else (hidden, hidden)
                conditioner = MLP(self.conditioned + context, out, hidden, zero_last=True)
            else:
                hidden = hidden if isinstance(hidden, int) else hidden[0]
                conditioner = ConvNet(self.conditioned + context, out, hidden)
        self.conditioner = conditioner

    def transform(self, x: Tensor, params: Tensor, inverse: bool) -> tuple[Tensor, Tensor | None]:
        r"""Apply :math:`\tau` (or its inverse) elementwise.

        Args:
            x: the transformed half, shape ``(..., n_B, *spatial)``.
            params: shape ``(..., params_per_feature, n_B, *spatial)``.
            inverse: apply :math:`\tau^{-1}`.

        Returns:
            The new half and the elementwise log-det of the direction taken
            (``None`` for a volume-preserving map).
        """
        raise NotImplementedError

    def pass_through(
        self, x: Tensor, context: Tensor | None, inverse: bool
    ) -> tuple[Tensor, Tensor | None]:
        """The map applied to the conditioning half: the identity here (see MultiscaleSplit)."""
        return x, None

    def _split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        batch_shape_of(x, self.event_dim, type(self).__name__)
        if x.shape[-self.event_dim] != self.features:
            raise ShapeError(
                f"{type(self).__name__} was built for {self.features} features along dim "
                f"{-self.event_dim}, got shape {tuple(x.shape)}."
            )
        a, b = x.split(self.sizes, dim=-self.event_dim)
        return (b, a) if self.swap else (a, b)

    def _merge(self, a: Tensor, b: Tensor) -> Tensor:
        return torch.cat((b, a) if self.swap else (a, b), dim=-self.event_dim)

    def _params(self, a: Tensor, context: Tensor | None) -> Tensor:
        if context is not None:
            if self.event_dim == 3:
                context = context[..., None, None].expand(*context.shape, *a.shape[-2:])
            a = torch.cat((a, context), dim=-self.event_dim)
        h = self.conditioner(a)
        return h.unflatten(-self.event_dim, (self.params_per_feature, self.transformed))

    def _map(self, x: Tensor, context: Tensor | None, inverse: bool) -> tuple[Tensor, Tensor]:
        a, b = self._split(x)
        context = self._context_for(x, context)
        log_det_a = None
        if not inverse:
            a, log_det_a = self.pass_through(a, context, inverse)
        b, log_det = self.transform(b, self._params(a, context), inverse)
        out_a = a
        if inverse:
            out_a, log_det_a = self.pass_through(a, context, inverse)
        if log_det is None:
            total = x.new_zeros(x.shape[: x.dim() - self.event_dim])
        else:
            total = sum_rightmost(log_det, self.event_dim)
        if log_det_a is not None:
            total = total + log_det_a
        return self._merge(out_a, b), total

    def extra_repr(self) -> str:
        return f"features={self.features}, swap={self.swap}, " + super().extra_repr()


class AffineCoupling(Coupling):
    r"""Affine coupling :math:`y_B = x_B \odot e^{s(x_A)} + t(x_A)` (RealNVP, Glow).

    .. math::
        \log|\det J| = \sum_{i \in B} s_i(x_A), \qquad
        s = b \tanh(\tilde s / b),

    where the raw log-scale :math:`\tilde s` of the conditioner is soft-clamped
    to :math:`(-b, b)` (``bound``, 3 by default) so that no layer can blow up,
    and a zero-initialised conditioner makes the layer start as the identity.
    See :class:`Coupling` for the split, the conditioner and the arguments.

    References:
        Density estimation using Real NVP (Dinh et al., 2017).
        https://arxiv.org/abs/1605.08803

    Example:
        >>> layer = AffineCoupling(4, hidden=(16,))
        >>> x = torch.randn(10, 4)
        >>> y, log_det = layer.forward_and_log_det(x)
        >>> y.shape, log_det.shape
        (torch.Size([10, 4]), torch.Size([10]))
    """

    params_per_feature = 2

    def __init__(self, features: int, *, bound: float = 3.0, **kwargs: object) -> None:
        super().__init__(features, **kwargs)
        self.bound = bound

    def transform(self, x: Tensor, params: Tensor, inverse: bool) -> tuple[Tensor, Tensor | None]:
        raw_log_scale, shift = params.unbind(-self.event_dim - 1)
        if inverse:
            log_scale = soft_clamp(raw_log_scale, -self.bound)  # the inverse's log-scale
            return (x - shift) * log_scale.exp(), log_scale
        log_scale = soft_clamp(raw_log_scale, self.bound)
        return x * log_scale.exp() + shift, log_scale


class AdditiveCoupling(Coupling):
    r"""Additive coupling :math:`y_B = x_B + t(x_A)`, volume preserving (NICE).

    .. math::
        \log|\det J| = 0.

    See :class:`Coupling` for the split, the conditioner and the arguments.

    References:
        NICE: Non-linear Independent Components Estimation (Dinh et al., 2014).
        https://arxiv.org/abs/1410.8516

    Example:
        >>> layer = AdditiveCoupling(3, hidden=(8,))
        >>> layer.forward_and_log_det(torch.ones(3))[1]
        tensor(0.)
    """

    params_per_feature = 1

    def transform(self, x: Tensor, params: Tensor, inverse: bool) -> tuple[Tensor, Tensor | None]:
        shift = params.squeeze(-self.event_dim - 1)
        return (x - shift if inverse else x + shift), None
