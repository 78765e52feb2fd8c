"""Space-to-depth reshaping of images, :class:`Squeeze` (RealNVP, Glow)."""

from __future__ import annotations

from torch import Tensor

from sandflow.bijectors.base import Bijector
from sandflow.bijectors.checks import ShapeError, batch_shape_of

__all__ = ["Squeeze"]


class Squeeze(Bijector):
    r"""Space-to-depth :math:`(C, H, W) \to (4C, H/2, W/2)`, a permutation with zero log-det.

    Each :math:`2 \times 2` block of pixels becomes four channels, so that a
    channel coupling can mix neighbouring pixels, and a multiscale flow works
    on ever coarser grids. The inverse (depth-to-space) undoes it exactly.
    ``Invert(Squeeze())`` goes the other way, which a sampling-direction flow
    uses to return to the data's shape.

    References:
        Density estimation using Real NVP (Dinh et al., 2017).
        https://arxiv.org/abs/1605.08803

    Example:
        >>> x = torch.arange(16.0).view(1, 4, 4)
        >>> Squeeze()(x).shape
        torch.Size([4, 2, 2])
        >>> Squeeze().forward_shape((1, 4, 4))
        (4, 2, 2)
    """

    def __init__(self) -> None:
        super().__init__(event_dim=3)

    def forward_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        *batch, c, h, w = shape
        if h % 2 or w % 2:
            raise ShapeError(f"Squeeze needs an even height and width, got event ({c}, {h}, {w}).")
        return type(shape)((*batch, 4 * c, h // 2, w // 2))

    def inverse_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        *batch, c, h, w = shape
        if c % 4:
            raise ShapeError(f"Squeeze's inverse needs channels divisible by 4, got {c}.")
        return type(shape)((*batch, c // 4, 2 * h, 2 * w))

    def forward_and_log_det(
        self, x: Tensor, context: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        batch = batch_shape_of(x, 3, "Squeeze")
        c, h, w = x.shape[-3:]
        self.forward_shape((c, h, w))
        y = x.reshape(*batch, c, h // 2, 2, w // 2, 2)
        y = y.movedim((-3, -1), (-4, -3)).reshape(*batch, 4 * c, h // 2, w // 2)
        return y, x.new_zeros(batch)

    def inverse_and_log_det(
        self, y: Tensor, context: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        batch = batch_shape_of(y, 3, "Squeeze")
        c, h, w = y.shape[-3:]
        self.inverse_shape((c, h, w))
        x = y.reshape(*batch, c // 4, 2, 2, h, w)
        x = x.movedim((-4, -3), (-3, -1)).reshape(*batch, c // 4, 2 * h, 2 * w)
        return x, y.new_zeros(batch)
