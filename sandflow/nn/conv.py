"""Convolutional conditioner for coupling layers on images (Glow's three-layer network)."""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["ConvNet"]


class ConvNet(nn.Module):
    """``Conv3x3 -> ReLU -> Conv1x1 -> ReLU -> Conv3x3`` on ``(..., C, H, W)``, any batch dims.

    The last convolution starts at zero, so a coupling layer or a learned
    prior fed by it starts as the identity (Kingma & Dhariwal, 2018).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        hidden: hidden channels.

    Example:
        >>> net = ConvNet(2, 4, hidden=8)
        >>> net(torch.zeros(3, 5, 2, 4, 4)).shape
        torch.Size([3, 5, 4, 4, 4])
    """

    def __init__(self, in_channels: int, out_channels: int, hidden: int = 128) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(hidden, hidden, 1),
            nn.ReLU(),
            nn.Conv2d(hidden, out_channels, 3, padding=1),
        )
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, x: Tensor) -> Tensor:
        batch = x.shape[:-3]
        y = self.net(x.reshape(-1, *x.shape[-3:]))
        return y.view(*batch, *y.shape[-3:])
