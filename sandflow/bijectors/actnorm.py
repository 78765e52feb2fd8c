"""Activation normalisation with data-dependent initialisation, :class:`ActNorm` (Glow)."""

from __future__ import annotations

import warnings

import torch
from torch import Tensor, nn

from sandflow.bijectors.checks import check_size
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

    The first batch must be non-empty and finite (a ``ValueError`` says so,
    and nothing is initialised). A channel whose statistics are degenerate (a
    batch of one value per channel, or zero variance) gets scale 1 around its
    mean, with a ``UserWarning`` naming the channel and the batch size, instead
    of a scale clamped to a tiny number. Under ``torch.compile`` the flag is
    read from a Python mirror of the buffer, so that no graph breaks on it.

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
        check_size("ActNorm", "channels", channels)
        if event_dim < 1:
            raise ValueError("ActNorm needs event_dim >= 1")
        shape = (channels,) + (1,) * (event_dim - 1)
        super().__init__(torch.zeros(shape), torch.ones(shape), event_dim=event_dim, learnable=True)
        self.channels = channels
        self.register_buffer("initialized", torch.tensor(False))
        self._ready = False  # mirrors the buffer: a Python bool that torch.compile can guard on
        self.register_load_state_dict_post_hook(_mirror_flag)

    @torch.no_grad()
    def initialize(self, y: Tensor) -> None:
        """Set the parameters so that ``inverse(y)`` has zero mean and unit variance per channel.

        Raises:
            ValueError: if ``y`` is empty or holds NaN or infinite values.
        """
        batch_shape = self._log_det(y).shape  # the shape check (channels) comes first
        if y.numel() == 0:
            raise ValueError(
                f"ActNorm cannot initialise from an empty batch (shape {tuple(y.shape)}); "
                "its first inverse pass must see data."
            )
        if not torch.isfinite(y).all():
            raise ValueError(
                "ActNorm cannot initialise from a batch with NaN or infinite values "
                f"(shape {tuple(y.shape)}); clean the data or initialise from another batch."
            )
        channel_dim = y.dim() - self.event_dim
        dims = [d for d in range(y.dim()) if d != channel_dim]
        std, mean = torch.std_mean(y, dim=dims, correction=0)
        degenerate = ~(std > 1e-6 * mean.abs().clamp_min(1.0))
        if degenerate.any():
            channels = degenerate.nonzero().flatten().tolist()
            warnings.warn(
                f"ActNorm: channel(s) {channels} of the first batch (batch shape "
                f"{tuple(batch_shape)}) have zero variance; their scale is set to 1. Initialise "
                "from a larger, varied batch for a data-dependent scale.",
                UserWarning,
                stacklevel=3,
            )
            std = torch.where(degenerate, torch.ones_like(std), std)
        self.loc.copy_(mean.view(self.loc.shape))
        self.log_scale.copy_(std.log().view(self.log_scale.shape))
        self.initialized.fill_(True)
        self._ready = True

    def inverse_and_log_det(
        self, y: Tensor, context: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        if not self._ready and not self.initialized:
            self.initialize(y)
        self._ready = True
        return super().inverse_and_log_det(y, context)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, event_dim={self.event_dim}"


def _mirror_flag(module: nn.Module, incompatible_keys: object) -> None:
    """After ``load_state_dict``, set the Python mirror of the loaded ``initialized`` buffer."""
    module._ready = bool(module.initialized)
