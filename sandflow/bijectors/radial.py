"""Radial flow, :class:`Radial` (Rezende & Mohamed 2015), with a closed-form inverse."""

from __future__ import annotations

import torch
from torch import Tensor

from sandflow.bijectors._vector import VectorBijector

__all__ = ["Radial"]


class Radial(VectorBijector):
    r"""Radial flow :math:`y = z + \frac{\beta}{\alpha + r}(z - z_0)`, :math:`r = \|z - z_0\|`.

    .. math::
        \log|\det J| = (D - 1)\log\Bigl(1 + \frac{\beta}{\alpha + r}\Bigr)
        + \log\Bigl(1 + \frac{\alpha\beta}{(\alpha + r)^2}\Bigr),

    with :math:`\alpha = \mathrm{softplus}(\alpha') > 0` and
    :math:`\beta = -\alpha + g`, :math:`g = \mathrm{softplus}(\beta') > 0`, so
    that :math:`\beta > -\alpha`, the condition for invertibility. Everything is
    written in :math:`\alpha`, :math:`g` and :math:`r`, never in :math:`\beta`, so
    that nothing cancels as :math:`\beta \to -\alpha` (the most contracting maps):
    :math:`1 + \beta / (\alpha + r) = (g + r) / (\alpha + r)`,
    :math:`1 + \alpha\beta / (\alpha + r)^2 = (r (2\alpha + r) + \alpha g) / (\alpha + r)^2`
    and :math:`y = z_0 + (z - z_0)(g + r) / (\alpha + r)`. The map moves points
    along rays from :math:`z_0`, so the inverse is one scalar equation for the
    radius, :math:`r (g + r) / (\alpha + r) = s` with :math:`s = \|y - z_0\|`,
    that is the quadratic :math:`r^2 + (g - s) r - \alpha s = 0`. Its
    non-negative root is taken in the cancellation-free form
    (:math:`2\alpha s / (q + \sqrt{q^2 + 4\alpha s})` for :math:`q = g - s > 0`,
    :math:`(\sqrt{q^2 + 4\alpha s} - q) / 2` otherwise), and
    :math:`z = z_0 + (y - z_0)(\alpha + r) / (g + r)`: exact, in closed form, at
    any distance from :math:`z_0`.

    Args:
        features: dimension :math:`D` of the events (``event_dim=1``).

    References:
        Variational Inference with Normalizing Flows (Rezende & Mohamed,
        2015). https://arxiv.org/abs/1505.05770

    Example:
        >>> flow = Radial(2)
        >>> z = 50 * torch.randn(4, 2)
        >>> torch.allclose(flow.inv(flow(z)), z)
        True
    """

    def __init__(self, features: int) -> None:
        super().__init__(features)
        self.center = self.uniform_parameter(features)
        self.alpha_raw = self.uniform_parameter()
        self.beta_raw = self.uniform_parameter()

    def _alpha_gap(self) -> tuple[Tensor, Tensor]:
        """``alpha > 0`` and ``gap = alpha + beta > 0``, each from its own softplus."""
        return self.positive(self.alpha_raw), self.positive(self.beta_raw)

    def _log_det(self, r: Tensor, alpha: Tensor, gap: Tensor) -> Tensor:
        near = alpha + r
        stretch = torch.log((gap + r) / near)  # log(1 + beta / (alpha + r))
        # 1 + alpha beta / (alpha + r)^2 = (r (2 alpha + r) + alpha gap) / (alpha + r)^2
        u, v = r / near, alpha / near
        return (self.features - 1) * stretch + torch.log(u * (1 + v) + v * (gap / near))

    def forward_and_log_det(
        self, x: Tensor, context: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        self._check(x)
        alpha, gap = self._alpha_gap()
        offset = x - self.center
        r = torch.linalg.vector_norm(offset, dim=-1)
        y = self.center + ((gap + r) / (alpha + r)).unsqueeze(-1) * offset
        return y, self._log_det(r, alpha, gap)

    def inverse_and_log_det(
        self, y: Tensor, context: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        self._check(y)
        alpha, gap = self._alpha_gap()
        offset = y - self.center
        s = torch.linalg.vector_norm(offset, dim=-1)
        q = gap - s
        root = (q.square() + 4 * alpha * s).sqrt()
        positive = q > 0
        r = torch.where(
            positive, 2 * alpha * s / torch.where(positive, q + root, 1.0), (root - q) / 2
        )
        x = self.center + ((alpha + r) / (gap + r)).unsqueeze(-1) * offset
        return x, -self._log_det(r, alpha, gap)

    def extra_repr(self) -> str:
        return f"features={self.features}"
