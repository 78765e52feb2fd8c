"""Glow's invertible 1x1 convolution, :class:`Conv1x1`, with an optional LU parameterisation."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from sandflow.bijectors.base import Bijector
from sandflow.bijectors.checks import batch_shape_of, check_size

__all__ = ["Conv1x1"]


class Conv1x1(Bijector):
    r"""Invertible 1x1 convolution :math:`y_{:,h,w} = W x_{:,h,w}` (Glow).

    A learned invertible :math:`C \times C` matrix mixes the channels at every
    position, a learned generalisation of a channel permutation:

    .. math::
        \log|\det J| = H W \log|\det W|.

    With ``lu=True`` (the default) :math:`W = P L (U + \operatorname{diag}(s))`
    with :math:`P` a fixed permutation, :math:`L` unit lower triangular,
    :math:`U` strictly upper triangular and :math:`s = \operatorname{sign}
    \odot e^{\log|s|}`, so the log-det is :math:`HW \sum_c \log|s_c|` in
    :math:`O(C)` and the inverse takes two triangular solves, with no ``slogdet``
    or dense inverse. ``lu=False`` keeps a plain weight (log-det by
    ``slogdet``). Both start from a random rotation. The LU diagonal is used
    with :math:`\log|s|` clamped to :math:`[\log t, -\log t]` (:math:`t` the
    dtype's smallest normal number, :math:`e^{\pm 87.3}` in float32), in the
    matrix and in the log-det alike: a diverged parameter can no longer turn
    :math:`s` into 0 or infinity and give a NaN inverse beside a finite log-det.

    The mixed axis is the first event dimension ``-event_dim``: channels of
    ``(C, H, W)`` events (``event_dim=3``), or the features of a vector
    (``event_dim=1``, a learned invertible linear map).

    Args:
        channels: number of channels :math:`C`.
        lu: use the PLU parameterisation.
        event_dim: 3 for images, 1 for vectors.

    References:
        Glow: Generative Flow with Invertible 1x1 Convolutions (Kingma &
        Dhariwal, 2018). https://arxiv.org/abs/1807.03039

    Example:
        >>> conv = Conv1x1(4)
        >>> x = torch.randn(2, 4, 3, 3)
        >>> y, log_det = conv.forward_and_log_det(x)
        >>> torch.allclose(conv.inv(y), x, atol=1e-5), log_det.shape
        (True, torch.Size([2]))
    """

    def __init__(self, channels: int, *, lu: bool = True, event_dim: int = 3) -> None:
        check_size("Conv1x1", "channels", channels)
        check_size("Conv1x1", "event_dim", event_dim)
        super().__init__(event_dim=event_dim)
        self.channels, self.lu = channels, lu
        # Parameters are made contiguous: Pyro's param store keeps a contiguous copy of a
        # strided one, and the optimiser would then train a tensor the layer never reads.
        rotation = torch.linalg.qr(torch.randn(channels, channels))[0].contiguous()
        if not lu:
            self.weight = nn.Parameter(rotation)
            return
        permutation, lower, upper = torch.linalg.lu(rotation)
        diagonal = upper.diagonal()
        self.register_buffer("permutation", permutation.contiguous())
        self.register_buffer("diagonal_sign", diagonal.sign())
        self.register_buffer("lower_mask", torch.tril(torch.ones(channels, channels), -1))
        self.lower = nn.Parameter((lower * self.lower_mask).contiguous())
        self.upper = nn.Parameter(upper.triu(1).contiguous())
        self.log_diagonal = nn.Parameter(diagonal.abs().log().contiguous())

    def _log_diagonal(self) -> Tensor:
        """``log|s|`` clamped to ``[log tiny, -log tiny]``: ``s`` and ``1 / s`` stay finite."""
        bound = -math.log(torch.finfo(self.log_diagonal.dtype).tiny)
        return self.log_diagonal.clamp(-bound, bound)

    def _factors(self) -> tuple[Tensor, Tensor]:
        eye = torch.eye(self.channels, dtype=self.lower.dtype, device=self.lower.device)
        lower = self.lower * self.lower_mask + eye
        upper = self.upper.triu(1) + torch.diag(self.diagonal_sign * self._log_diagonal().exp())
        return lower, upper

    def matrix(self) -> Tensor:
        """The weight :math:`W`."""
        if not self.lu:
            return self.weight
        lower, upper = self._factors()
        return self.permutation @ lower @ upper

    def inverse_matrix(self) -> Tensor:
        """:math:`W^{-1}`, by triangular solves when ``lu=True``."""
        if not self.lu:
            return torch.linalg.inv(self.weight)
        lower, upper = self._factors()
        solved = torch.linalg.solve_triangular(
            lower, self.permutation.T, upper=False, unitriangular=True
        )
        return torch.linalg.solve_triangular(upper, solved, upper=True)

    def _log_det_per_position(self) -> Tensor:
        if self.lu:
            return self._log_diagonal().sum()
        return torch.linalg.slogdet(self.weight)[1]

    def _mix(self, x: Tensor, matrix: Tensor, sign: float) -> tuple[Tensor, Tensor]:
        batch = batch_shape_of(x, self.event_dim, "Conv1x1", self.channels)
        positions = math.prod(x.shape[x.dim() - self.event_dim + 1 :])
        if self.event_dim == 1:
            y = x @ matrix.T
        else:
            y = torch.einsum("ij,...jk->...ik", matrix, x.flatten(-self.event_dim + 1))
            y = y.view(x.shape)
        log_det = sign * positions * self._log_det_per_position()
        return y, log_det.expand(batch)

    def forward_and_log_det(
        self, x: Tensor, context: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        return self._mix(x, self.matrix(), 1.0)

    def inverse_and_log_det(
        self, y: Tensor, context: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        return self._mix(y, self.inverse_matrix(), -1.0)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, lu={self.lu}, event_dim={self.event_dim}"
