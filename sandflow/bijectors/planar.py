"""Planar flow, :class:`Planar` (Rezende & Mohamed 2015), with a numerical inverse."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from sandflow.bijectors._vector import VectorBijector

__all__ = ["Planar"]

MAX_ITERATIONS = 100


def _slope(t: Tensor, gap: Tensor) -> Tensor:
    r""":math:`1 + (g - 1)\tanh'(t) = \tanh^2 t + g\,\mathrm{sech}^2 t`, without cancellation.

    With :math:`e = e^{-2|t|}`, :math:`\tanh^2 t = \mathrm{expm1}(-2|t|)^2 / (1 + e)^2`
    and :math:`\mathrm{sech}^2 t = 4e / (1 + e)^2`: a sum of non-negative terms,
    accurate however close :math:`g > 0` comes to 0 (the map's flattest point).
    """
    e = torch.exp(-2 * t.abs())
    return (torch.expm1(-2 * t.abs()).square() + 4 * e * gap) / (1 + e).square()


def _log_slope(t: Tensor, gap: Tensor) -> Tensor:
    """``log(_slope(t, gap))``, finite for any ``gap`` of at least the dtype's ``tiny``."""
    e = torch.exp(-2 * t.abs())
    return torch.log(torch.expm1(-2 * t.abs()).square() + 4 * e * gap) - 2 * torch.log1p(e)


def _solve_monotone(t: Tensor, gap: Tensor, b: Tensor) -> Tensor:
    r"""The root of :math:`f(a) = a + (g - 1) \tanh(a + b) - t` (:math:`g > 0`), vectorised.

    :math:`f` is increasing and the root lies in :math:`[t - |g - 1|, t + |g - 1|]`;
    Newton steps that leave the current bracket are replaced by bisection.
    Stops when every step is below ``4 eps (1 + |a|)`` of the dtype; NaN
    entries stay NaN and do not hold the others back.
    """
    eps = torch.finfo(t.dtype).eps
    c = gap - 1
    spread = c.abs().expand_as(t)
    low, high = t - spread, t + spread
    a = t.clone()
    for _ in range(MAX_ITERATIONS):
        f = a + c * torch.tanh(a + b) - t
        low, high = torch.where(f < 0, a, low), torch.where(f > 0, a, high)
        newton = a - f / _slope(a + b, gap)
        inside = (newton > low) & (newton < high)
        new = torch.where(inside, newton, (low + high) / 2)
        step = (new - a).abs()
        a = new
        if bool(((step <= 4 * eps * (1 + a.abs())) | step.isnan()).all()):
            break
    return a


class Planar(VectorBijector):
    r"""Planar flow :math:`y = z + \hat u\, \tanh(w^\top z + b)`, invertible by construction.

    .. math::
        \log|\det J| = \log\bigl(1 + \hat u^\top w\, \tanh'(w^\top z + b)\bigr),
        \qquad \hat u = u + \bigl(m(w^\top u) - w^\top u\bigr) \frac{w}{\|w\|^2},

    with :math:`m(a) = -1 + \mathrm{softplus}(a)`, so that :math:`w^\top \hat u
    = m(w^\top u) > -1`: the map is then strictly increasing along :math:`w`
    and invertible. With :math:`g = 1 + w^\top \hat u = \mathrm{softplus}(w^\top u)`
    and :math:`t = w^\top z + b` the log-det is evaluated as

    .. math::
        \log|\det J| = \log\bigl(\tanh^2 t + g\,\mathrm{sech}^2 t\bigr),

    a sum of non-negative terms: finite and accurate for every :math:`w^\top u`
    (where :math:`1 + (g - 1)\tanh' t` would round to 0 once :math:`g` is below
    the dtype's epsilon, :math:`w^\top u \lesssim -17` in float32). The
    inverse has no closed form. Writing :math:`\alpha = w^\top z`, it solves
    the scalar equation

    .. math::
        \alpha + w^\top \hat u\, \tanh(\alpha + b) = w^\top y,

    (monotone in :math:`\alpha`, root within :math:`w^\top y \pm |w^\top \hat u|`)
    by bracketed Newton steps with a bisection fallback, for the whole batch
    at once, to a few ulps of the dtype; then :math:`z = y - \hat u
    \tanh(\alpha + b)`. The solution is detached and refined by one Newton
    step in the graph, which gives exact first-order gradients (implicit
    function theorem) to the parameters and to :math:`y`.

    Args:
        features: dimension :math:`D` of the events (``event_dim=1``).

    References:
        Variational Inference with Normalizing Flows (Rezende & Mohamed,
        2015). https://arxiv.org/abs/1505.05770

    Example:
        >>> flow = Planar(2)
        >>> z = torch.randn(4, 2)
        >>> torch.allclose(flow.inv(flow(z)), z, atol=1e-5)
        True
    """

    def __init__(self, features: int) -> None:
        super().__init__(features)
        self.u = self.uniform_parameter(features)
        self.w = self.uniform_parameter(features)
        self.b = self.uniform_parameter()

    def _u_hat_and_gap(self) -> tuple[Tensor, Tensor]:
        r""":math:`\hat u` and :math:`g = 1 + w^\top \hat u = \mathrm{softplus}(w^\top u) > 0`."""
        wu = self.w @ self.u
        norm = self.w.square().sum().clamp_min(torch.finfo(self.w.dtype).tiny)
        # m(wu) - wu = softplus(wu) - 1 - wu = softplus(-wu) - 1, without cancellation
        return self.u + (F.softplus(-wu) - 1) * self.w / norm, self.positive(wu)

    def forward_and_log_det(
        self, x: Tensor, context: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        self._check(x)
        u_hat, gap = self._u_hat_and_gap()
        alpha = x @ self.w
        y = x + u_hat * torch.tanh(alpha + self.b).unsqueeze(-1)
        return y, _log_slope(alpha + self.b, gap)

    def inverse_and_log_det(
        self, y: Tensor, context: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        self._check(y)
        u_hat, gap = self._u_hat_and_gap()
        t = y @ self.w
        with torch.no_grad():
            root = _solve_monotone(t, gap, self.b)
        h = torch.tanh(root + self.b)
        slope = _slope(root + self.b, gap).clamp_min(torch.finfo(y.dtype).tiny)
        alpha = root - (root + (gap - 1) * h - t) / slope
        x = y - u_hat * torch.tanh(alpha + self.b).unsqueeze(-1)
        return x, -_log_slope(alpha + self.b, gap)

    def extra_repr(self) -> str:
        return f"features={self.features}"
