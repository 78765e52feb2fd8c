"""Coupling layers: affine (RealNVP, Glow), additive (NICE) and spline (NSF) couplings."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from sandflow.bijectors.base import Bijector, CheckedSettings, sum_rightmost
from sandflow.bijectors.checks import batch_shape_of, check_size
from sandflow.bijectors.maps import ElementwiseMap, Shift, SoftClampedAffine
from sandflow.bijectors.spline import RationalQuadraticSpline
from sandflow.nn.conv import ConvNet
from sandflow.nn.mlp import MLP

__all__ = ["AdditiveCoupling", "AffineCoupling", "Coupling", "SplineCoupling"]


class Coupling(CheckedSettings, Bijector):
    r"""Coupling layer: :math:`y_A = x_A`, :math:`y_B = \tau(x_B; \theta(x_A, c))`.

    The split axis (features of a vector, ``event_dim=1``; channels of an
    image, ``event_dim=3``) is cut into a conditioning half :math:`A` (the
    first ``features // 2`` entries, or the last ones with ``swap=True``) and a
    transformed half :math:`B`. A conditioner network maps :math:`x_A` and the
    optional context :math:`c` to the parameters :math:`\theta` of the
    elementwise map :math:`\tau` (``transform``, an
    :class:`~sandflow.bijectors.maps.ElementwiseMap`), so the Jacobian is
    triangular and

    .. math::
        \log|\det J| = \sum_{i \in B} \log|\partial \tau / \partial x_i|.

    The default conditioner is an :class:`~sandflow.nn.MLP` for vectors and a
    :class:`~sandflow.nn.ConvNet` for images (context broadcast over pixels),
    its last layer at zero so that the layer starts as the identity.

    Args:
        features: size of the split axis.
        transform: the elementwise map :math:`\tau`.
        hidden: hidden sizes of the MLP conditioner (an int for the ConvNet).
        context: number of context features (0: unconditional).
        swap: condition on the second half and transform the first.
        event_dim: 1 for vectors, 3 for ``(C, H, W)`` images.
        conditioner: a custom network from ``(..., n_A + context)`` (or
            ``(..., n_A + context, H, W)``) to ``P * n_B`` entries along the
            split axis (``P = transform.params_per_feature``; block ``p``
            holds parameter ``p`` of every entry).

    Example:
        >>> from sandflow.bijectors.maps import Shift
        >>> layer = Coupling(4, Shift(), hidden=(8,))
        >>> layer.forward_and_log_det(torch.ones(4))
        (tensor([1., 1., 1., 1.], grad_fn=<CatBackward0>), tensor(0.))
    """

    def __init__(
        self,
        features: int,
        transform: ElementwiseMap,
        *,
        hidden: Sequence[int] | int = (256, 256),
        context: int = 0,
        swap: bool = False,
        event_dim: int = 1,
        conditioner: nn.Module | None = None,
    ) -> None:
        if event_dim not in (1, 3):
            raise ValueError(f"coupling layers take event_dim 1 or 3, got {event_dim}")
        if not isinstance(features, int) or features < 2:
            raise ValueError(f"a coupling layer needs at least 2 features to split, got {features}")
        if not isinstance(transform, ElementwiseMap):
            raise TypeError(
                f"transform must be an ElementwiseMap (SoftClampedAffine, Shift, "
                f"RationalQuadraticSpline), got {type(transform).__name__}"
            )
        super().__init__(event_dim=event_dim, context_features=context)
        self.features, self.swap = features, swap
        first = features // 2
        self.sizes = (first, features - first)
        self.conditioned, self.transformed = self.sizes[::-1] if swap else self.sizes
        self.transform = transform
        self.params_per_feature = transform.params_per_feature
        out = self.params_per_feature * self.transformed
        if conditioner is None:
            for size in (hidden,) if isinstance(hidden, int) else hidden:
                check_size(type(self).__name__, "hidden", size)
            if event_dim == 1:
                hidden = tuple(hidden) if not isinstance(hidden, int) else (hidden, hidden)
                conditioner = MLP(self.conditioned + context, out, hidden, zero_last=True)
            else:
                hidden = hidden if isinstance(hidden, int) else hidden[0]
                conditioner = ConvNet(self.conditioned + context, out, hidden)
        self.conditioner = conditioner

    def _split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The conditioning and the transformed halves of ``x``."""
        batch_shape_of(x, self.event_dim, type(self).__name__, self.features)
        a, b = x.split(self.sizes, dim=-self.event_dim)
        return (b, a) if self.swap else (a, b)

    def _merge(self, a: Tensor, b: Tensor) -> Tensor:
        return torch.cat((b, a) if self.swap else (a, b), dim=-self.event_dim)

    def _params(self, a: Tensor, context: Tensor | None) -> Tensor:
        """The map's parameters from the conditioning half: ``b.shape + (P,)``."""
        if context is not None:
            if self.event_dim == 3:
                context = context[..., None, None].expand(*context.shape, *a.shape[-2:])
            a = torch.cat((a, context), dim=-self.event_dim)
        h = self.conditioner(a).unflatten(
            -self.event_dim, (self.params_per_feature, self.transformed)
        )
        return h.movedim(-self.event_dim - 1, -1)

    def _log_det(self, x: Tensor, log_det: Tensor | None) -> Tensor:
        if log_det is None:
            return x.new_zeros(x.shape[: x.dim() - self.event_dim])
        return sum_rightmost(log_det, self.event_dim)

    def forward_and_log_det(
        self, x: Tensor, context: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        a, b = self._split(x)
        b, log_det = self.transform.forward(b, self._params(a, self._context_for(x, context)))
        return self._merge(a, b), self._log_det(x, log_det)

    def inverse_and_log_det(
        self, y: Tensor, context: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        a, b = self._split(y)
        b, log_det = self.transform.inverse(b, self._params(a, self._context_for(y, context)))
        return self._merge(a, b), self._log_det(y, log_det)

    def settings(self) -> dict[str, bool | int | float]:
        return {"swap": self.swap}

    def extra_repr(self) -> str:
        return f"features={self.features}, swap={self.swap}, " + super().extra_repr()


class AffineCoupling(Coupling):
    r"""Affine coupling :math:`y_B = x_B \odot e^{s(x_A)} + t(x_A)` (RealNVP, Glow).

    .. math::
        \log|\det J| = \sum_{i \in B} s_i(x_A), \qquad
        s = b \tanh(\tilde s / b),

    where the raw log-scale :math:`\tilde s` of the conditioner is soft-clamped
    to :math:`(-b, b)` (``bound``, 3 by default; see
    :class:`~sandflow.bijectors.maps.SoftClampedAffine`) so that no layer can
    blow up, and a zero-initialised conditioner makes the layer start as the
    identity. See :class:`Coupling` for the split, the conditioner and the
    arguments.

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

    def __init__(self, features: int, *, bound: float = 3.0, **kwargs: object) -> None:
        super().__init__(features, SoftClampedAffine(bound), **kwargs)


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

    def __init__(self, features: int, **kwargs: object) -> None:
        super().__init__(features, Shift(), **kwargs)


class SplineCoupling(Coupling):
    r"""Spline coupling :math:`y_B = \mathrm{RQS}(x_B; \theta(x_A))`, the identity outside [-B, B].

    Each transformed entry goes through its own monotone rational-quadratic
    spline (:func:`~sandflow.bijectors.rational_quadratic_spline`) with
    ``bins`` bins on :math:`[-B, B]`, whose widths, heights and inner knot
    derivatives (:math:`3K - 1` numbers per entry) come from the conditioner:

    .. math::
        \log|\det J| = \sum_{i \in B} \log \mathrm{RQS}_i'(x_i).

    Outside the interval the map is the identity (linear tails), so any input
    is accepted in both directions. A zero-initialised conditioner gives
    uniform bins and unit derivatives: the layer starts as the identity. See
    :class:`Coupling` for the split, the conditioner and the other arguments.

    Args:
        features: size of the split axis.
        bins: number of bins :math:`K` (``bins=1`` is the identity).
        bound: half-width :math:`B` of the spline interval.
        **kwargs: ``hidden``, ``context``, ``swap``, ``event_dim``,
            ``conditioner`` as for :class:`Coupling`.

    References:
        Neural Spline Flows (Durkan, Bekasov, Murray & Papamakarios, 2019).
        https://arxiv.org/abs/1906.04032

    Example:
        >>> layer = SplineCoupling(4, bins=8, hidden=(16,))
        >>> y, log_det = layer.forward_and_log_det(torch.randn(10, 4))
        >>> y.shape, log_det.shape
        (torch.Size([10, 4]), torch.Size([10]))
    """

    def __init__(
        self, features: int, *, bins: int = 8, bound: float = 5.0, **kwargs: object
    ) -> None:
        super().__init__(features, RationalQuadraticSpline(bins, bound), **kwargs)
