"""Activation normalisation with data-dependent initialisation, :class:`ActNorm` (Glow)."""

from __future__ import annotations

import torch
from torch import Tensor

from sandflow.bijectors.elementwise import Affine

__all__ = ["ActNorm"]


class ActNorm(Affine):
    r"""Per-channel affine map :math:`y = \mu_c + \sigma_c x`, initialised from the first batch.

    .. math::
        \log|\det J| = HW \sum_c \log\sigma_c

    for ``(C, H, W)`` events (``event_dim=3``), or :math:`\sum_c \log\sigma_c`
    for vectors (``event_dim=1``). The first inverse (density) pass sets
    :math:`\mu` and :math:`\sigma` to the per-channel mean and standard
    deviation of its batch, so that the pass's outputs are standardised. The
    "initialised" flag is a buffer: it travels in ``state_dict()``, and a
    reloaded checkpoint is never re-initialised. Forward (sampling) passes
    before any inverse pass use the identity.

    Args:
        channels: number of channels :math:`C`, the size of dim ``-event_dim``.
        event_dim: 3 for images, 1 for vectors.

    References:
        Glow: Generative Flow with Invertible 1x1 Convolutions (Kingma &
        Dhariwal, 2018). https://arxiv.org/abs/1807.03039

    Example:
        >>> norm = ActNorm(2, event_dim=1)
        >>> y = torch.tensor([[1.0, 10.0], [3.0, 30.0]])
        >>> torch.allclose(norm.inv(y), torch.tensor([[-1.0, -1.0], [1.0, 1.0]]))
        True
        >>> bool(norm.initialized)
        True
    """

    def __init__(self, channels: int, *, event_dim: int = 3) -> None:
        if event_dim < 1:
            raise ValueError("ActNorm needs event_dim >= 1")
        shape = (channels,) + (1,) * (event_dim - 1)
        super().__init__(torch.zeros(shape), torch.ones(shape), event_dim=event_dim, learnable=True)
        self.channels = channels
        self.register_buffer("initialized", torch.tensor(False))

    @torch.no_grad()
    def initialize(self, y: Tensor) -> None:
        """Set the parameters so that ``inverse(y)`` has zero mean and unit variance per channel."""
        channel_dim = y.dim() - self.event_dim
        dims = [d for d in range(y.dim()) if d != channel_dim]
        std, mean = torch.std_mean(y, dim=dims, correction=0, keepdim=True)
        self.loc.copy_(mean.view(self.loc.shape))
        self.log_scale.copy_(std.clamp_min(1e-6).log().view(self.log_scale.shape))
        self.initialized.fill_(True)

    def inverse_and_log_det(
        self, y: Tensor, context: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        if not self.initialized:
            self.initialize(y)
        return super().inverse_and_log_det(y, context)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, event_dim={self.event_dim}"
