"""Rational-quadratic splines (NSF): :func:`rational_quadratic_spline` and its map object."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from sandflow.bijectors.maps import ElementwiseMap

__all__ = ["RationalQuadraticSpline", "rational_quadratic_spline"]

MIN_BIN_WIDTH = 1e-3
MIN_BIN_HEIGHT = 1e-3
MIN_DERIVATIVE = 1e-3


def _knots(raw: Tensor, minimum: float, bound: float) -> Tensor:
    """Knots ``(..., K + 1)`` from ``-bound`` to ``bound``; bins at least ``minimum * 2 bound``."""
    bins = raw.shape[-1]
    sizes = minimum + (1 - minimum * bins) * torch.softmax(raw, dim=-1)
    inner = 2 * bound * torch.cumsum(sizes[..., :-1], dim=-1) - bound
    ends = inner.new_full((*inner.shape[:-1], 1), bound)
    return torch.cat((-ends, inner, ends), dim=-1)


def _gather(values: Tensor, index: Tensor) -> Tensor:
    return values.gather(-1, index).squeeze(-1)


def rational_quadratic_spline(
    x: Tensor, params: Tensor, *, bound: float = 5.0, inverse: bool = False
) -> tuple[Tensor, Tensor]:
    r"""Monotone rational-quadratic spline on :math:`[-B, B]`, the identity outside, elementwise.

    In bin :math:`k`, with :math:`s_k = h_k / w_k`, :math:`\xi = (x - x_k) / w_k`
    and knot derivatives :math:`d_k, d_{k+1}`:

    .. math::
        y = y_k + h_k \frac{s_k \xi^2 + d_k \xi(1 - \xi)}
                         {s_k + (d_{k+1} + d_k - 2 s_k)\,\xi(1 - \xi)}.

    The inverse solves the quadratic :math:`a\xi^2 + b\xi + c = 0` by the
    cancellation-free root :math:`\xi = 2c / (-b - \sqrt{b^2 - 4ac})`, with the
    discriminant clamped at 0 against rounding. The boundary derivatives are 1,
    so the spline joins the identity tails with a continuous derivative, and
    no input is rejected: values outside :math:`[-B, B]` are clamped before the
    spline is evaluated (no NaN reaches the gradients) and passed through. A
    NaN input gives NaN in both outputs, never the log-det 0 of a tail.

    ``params`` holds, along its last axis, ``K`` unnormalised bin widths,
    ``K`` heights and ``K - 1`` inner derivatives (``3K - 1`` numbers; zeros
    give the identity). Bins are at least ``1e-3 * 2B`` wide and high, and
    derivatives at least ``1e-3``.

    Args:
        x: inputs of any shape.
        params: shape ``x.shape + (3K - 1,)`` (or broadcastable to it).
        bound: half-width :math:`B` of the spline's interval.
        inverse: apply the inverse spline.

    Returns:
        The outputs and the elementwise ``log|dy/dx|`` of the direction taken.

    Example:
        >>> x = torch.tensor([-50.0, 0.5, 50.0])
        >>> params = torch.randn(3, 8)  # 3 bins for each entry
        >>> y, log_det = rational_quadratic_spline(x, params)
        >>> y[[0, 2]], log_det[[0, 2]]  # the identity tails
        (tensor([-50.,  50.]), tensor([0., 0.]))
        >>> torch.allclose(rational_quadratic_spline(y, params, inverse=True)[0], x)
        True
    """
    width = params.shape[-1]
    if width < 2 or (width + 1) % 3:
        raise ValueError(
            f"spline params need 3K - 1 entries (K bins) in their last dimension, got {width}"
        )
    bins = (width + 1) // 3
    if bins * max(MIN_BIN_WIDTH, MIN_BIN_HEIGHT) >= 1:
        raise ValueError(f"too many bins ({bins}) for the minimum bin size {MIN_BIN_WIDTH}")
    shape = torch.broadcast_shapes(x.shape, params.shape[:-1])
    x, params = x.expand(shape), params.expand(*shape, width)
    raw_widths, raw_heights, raw_derivatives = params.split((bins, bins, bins - 1), dim=-1)
    xs = _knots(raw_widths, MIN_BIN_WIDTH, bound)
    ys = _knots(raw_heights, MIN_BIN_HEIGHT, bound)
    offset = math.log(math.expm1(1 - MIN_DERIVATIVE))  # raw 0 gives derivative 1
    inner = MIN_DERIVATIVE + F.softplus(raw_derivatives + offset)
    derivatives = F.pad(inner, (1, 1), value=1.0)

    outside = (x < -bound) | (x > bound)  # NaN is neither: it goes through the spline
    v = x.clamp(-bound, bound)
    knots = ys if inverse else xs
    k = (v.unsqueeze(-1) >= knots[..., 1:-1]).sum(-1, keepdim=True)
    x_k, y_k = _gather(xs, k), _gather(ys, k)
    w = _gather(xs, k + 1) - x_k
    h = _gather(ys, k + 1) - y_k
    d0, d1 = _gather(derivatives, k), _gather(derivatives, k + 1)
    s = h / w
    curvature = d0 + d1 - 2 * s
    if inverse:
        dy = v - y_k
        a = h * (s - d0) + dy * curvature
        b = h * d0 - dy * curvature
        c = -s * dy
        root = (b.square() - 4 * a * c).clamp_min(0).sqrt()
        xi = (2 * c / (-b - root)).clamp(0, 1)
    else:
        xi = ((v - x_k) / w).clamp(0, 1)
    t = xi * (1 - xi)
    denominator = s + curvature * t
    log_slope = (
        2 * s.log()
        + (d1 * xi.square() + 2 * s * t + d0 * (1 - xi).square()).log()
        - 2 * denominator.log()
    )
    if inverse:
        out, log_det = x_k + xi * w, -log_slope
    else:
        out, log_det = y_k + h * (s * xi.square() + d0 * t) / denominator, log_slope
    return torch.where(outside, x, out), torch.where(outside, torch.zeros_like(x), log_det)


class RationalQuadraticSpline(ElementwiseMap):
    r"""Monotone rational-quadratic spline on :math:`[-B, B]`, the identity outside (NSF).

    The map object of :func:`rational_quadratic_spline`: ``bins`` bins whose
    widths, heights and inner knot derivatives (``3 * bins - 1`` parameters
    per entry) come from the owner's network; raw parameters of zero give the
    identity. ``bins`` and ``bound`` are saved in the owner's ``state_dict``.

    Args:
        bins: number of bins :math:`K` (``bins=1`` is the identity).
        bound: half-width :math:`B` of the spline interval.

    References:
        Neural Spline Flows (Durkan, Bekasov, Murray & Papamakarios, 2019).
        https://arxiv.org/abs/1906.04032

    Example:
        >>> spline = RationalQuadraticSpline(bins=4)
        >>> x = torch.tensor([-1.0, 0.5, 7.0])
        >>> y, log_det = spline(x, torch.zeros(3, spline.params_per_feature))
        >>> torch.allclose(y, x), torch.allclose(log_det, torch.zeros(3), atol=1e-6)
        (True, True)
    """

    def __init__(self, bins: int = 8, bound: float = 5.0) -> None:
        if not isinstance(bins, int) or isinstance(bins, bool) or bins < 1:
            raise ValueError(f"a spline needs bins >= 1, got {bins!r}")
        if not bound > 0 or bound == float("inf"):
            raise ValueError(f"a spline needs a finite bound > 0, got {bound!r}")
        super().__init__()
        self.bins, self.bound = bins, float(bound)
        self.params_per_feature = 3 * bins - 1

    def forward(self, x: Tensor, params: Tensor) -> tuple[Tensor, Tensor]:
        return rational_quadratic_spline(x, params, bound=self.bound)

    def inverse(self, y: Tensor, params: Tensor) -> tuple[Tensor, Tensor]:
        return rational_quadratic_spline(y, params, bound=self.bound, inverse=True)

    def settings(self) -> dict[str, bool | int | float]:
        return {"bins": self.bins, "bound": self.bound}

    def extra_repr(self) -> str:
        return f"bins={self.bins}, bound={self.bound}"
