"""Radial flow, :class:`Radial` (Rezende & Mohamed 2015), with a closed-form inverse."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from sandflow.bijectors._vector import VectorBijector

__all__ = ["Radial"]


class Radial(VectorBijector):
    r"""Radial flow :math:`y = z + \frac{\beta}{\alpha + r}(z - z_0)`, :math:`r = \|z - z_0\|`.

    .. math::
        \log|\det J| = (D - 1)\log\Bigl(1 + \frac{\beta}{\alpha + r}\Bigr)
        + \log\Bigl(1 + \frac{\alpha\beta}{(\alpha + r)^2}\Bigr),

    with :math:`\alpha = \mathrm{softplus}(\alpha') > 0` and
    :math:`\beta = -\alpha + \mathrm{softplus}(\beta') > -\alpha`, the
    condition for invertibility. The map moves points along rays from
    :math:`z_0`, so the inverse is one scalar equation for the radius,
    :math:`r + \beta r / (\alpha + r) = s` with :math:`s = \|y - z_0\|`, that is
    the quadratic :math:`r^2 + (\alpha + \beta - s) r - \alpha s = 0`. Its
    non-negative root is taken in the cancellation-free form
    (:math:`2\alpha s / (q + \sqrt{q^2 + 4\alpha s})` for
    :math:`q = \alpha + \beta - s > 0`, :math:`(\sqrt{q^2 + 4\alpha s} - q) / 2`
    otherwise), and :math:`z = z_0 + (y - z_0) / (1 + \beta / (\alpha + r))`:
    exact, in closed form, at any distance from :math:`z_0`.

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

    def _alpha_beta(self) -> tuple[Tensor, Tensor]:
        alpha = F.softplus(self.alpha_raw)
        return alpha, F.softplus(self.beta_raw) - alpha

    def _log_det(self, r: Tensor, alpha: Tensor, beta: Tensor) -> Tensor:
        stretch = torch.log1p(beta / (alpha + r))
        return (self.features - 1) * stretch + torch.log1p(alpha * beta / (alpha + r).square())

    def forward_and_log_det(
        self, x: Tensor, context: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        self._check(x)
        alpha, beta = self._alpha_beta()
        offset = x - self.center
        r = torch.linalg.vector_norm(offset, dim=-1)
        y = x + (beta / (alpha + r)).unsqueeze(-1) * offset
        return y, self._log_det(r, alpha, beta)

    def inverse_and_log_det(
        self, y: Tensor, context: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        self._check(y)
        alpha, beta = self._alpha_beta()
        offset = y - self.center
        s = torch.linalg.vector_norm(offset, dim=-1)
        q = alpha + beta - s
        root = (q.square() + 4 * alpha * s).sqrt()
        positive = q > 0
        r = torch.where(
            positive, 2 * alpha * s / torch.where(positive, q + root, 1.0), (root - q) / 2
        )
        x = self.center + offset / (1 + beta / (alpha + r)).unsqueeze(-1)
        return x, -self._log_det(r, alpha, beta)

    def extra_repr(self) -> str:
        return f"features={self.features}"
