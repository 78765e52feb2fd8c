"""Glow's multiscale factor-out written as a bijection, :class:`MultiscaleSplit`."""

from __future__ import annotations

from torch import Tensor

from sandflow.bijectors.base import Bijector
from sandflow.bijectors.coupling import AffineCoupling

__all__ = ["MultiscaleSplit"]


class MultiscaleSplit(AffineCoupling):
    r"""Factor-out with a learned conditional prior, as a map :math:`(C, H, W) \to (C, H, W)`.

    The channels of the noise :math:`z = (z_1, z_2)` are split in two halves.
    The kept half goes through the deeper levels of the flow, ``inner``
    (the identity when ``None``: the exit of the last level), and the
    factored-out half is drawn from a Gaussian prior conditioned on the
    result (Glow's "split" with a learned prior):

    .. math::
        h_1 = g(z_1), \qquad h_2 = \mu(h_1) + \sigma(h_1) \odot z_2,

    .. math::
        \log|\det J| = \log|\det J_g(z_1)| + \sum \log \sigma(h_1).

    With :math:`z_2 \sim N(0, I)` this is exactly :math:`h_2 \sim N(\mu(h_1),
    \sigma(h_1)^2)`, so the whole multiscale flow is a single bijection from a
    standard-normal tensor to a tensor of the data's shape and ``log_prob`` is
    the plain change of variables. In the density direction the prior
    network reads :math:`h_1` and standardises :math:`h_2`, then ``inner`` maps
    :math:`h_1` back to :math:`z_1`. The prior is an
    :class:`~sandflow.bijectors.AffineCoupling` (its scale soft-clamped and
    starting at one) whose conditioning half also passes through ``inner``.

    Args:
        channels: channels :math:`C` of the events; ``channels // 2`` are kept.
        inner: the bijector applied to the kept half (deeper levels).
        hidden: hidden channels of the prior network.
        context: number of context features.

    References:
        Glow: Generative Flow with Invertible 1x1 Convolutions (Kingma &
        Dhariwal, 2018). https://arxiv.org/abs/1807.03039

    Example:
        >>> split = MultiscaleSplit(4, hidden=8)
        >>> split(torch.randn(2, 4, 3, 3)).shape
        torch.Size([2, 4, 3, 3])
    """

    def __init__(
        self, channels: int, inner: Bijector | None = None, *, hidden: int = 128, context: int = 0
    ) -> None:
        super().__init__(channels, hidden=hidden, context=context, event_dim=3)
        self.inner = inner

    def forward_and_log_det(
        self, x: Tensor, context: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        kept, out = self._split(x)
        context = self._context_for(x, context)
        log_det = x.new_zeros(())
        if self.inner is not None:
            kept, log_det = self.inner.forward_and_log_det(kept, context)
        out, prior_log_det = self.transform.forward(out, self._params(kept, context))
        return self._merge(kept, out), log_det + self._log_det(x, prior_log_det)

    def inverse_and_log_det(
        self, y: Tensor, context: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        kept, out = self._split(y)
        context = self._context_for(y, context)
        out, log_det = self.transform.inverse(out, self._params(kept, context))
        log_det = self._log_det(y, log_det)
        if self.inner is not None:
            kept, inner_log_det = self.inner.inverse_and_log_det(kept, context)
            log_det = log_det + inner_log_det
        return self._merge(kept, out), log_det
