"""Discrete grey levels to continuous data and back, and discrete bits per dimension."""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "dequantize",
    "dequantized_bits_per_dim",
    "quantize",
    "to_symmetric",
    "to_unit_interval",
]

_INTEGER_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def dequantize(
    x: Tensor,
    levels: int = 17,
    *,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Uniform dequantisation ``(k + u) / levels``, ``u ~ U[0, 1)``: levels to ``[0, 1)``.

    Level ``k`` becomes a point uniform in its bin ``[k / levels, (k + 1) / levels)``,
    so a continuous density fitted to the result bounds the discrete
    likelihood (see :func:`dequantized_bits_per_dim`). Where floating-point rounding would
    put a point on its bin's upper edge, it is stepped back inside ulp by ulp,
    so that ``quantize(dequantize(x)) == x`` always and every value is below 1.

    Args:
        x: integer grey levels in ``0 .. levels - 1``, any shape.
        levels: number of grey levels.
        generator: source of the uniform noise (torch's global one if ``None``).
        dtype: floating dtype of the result.

    Returns:
        A tensor of ``dtype`` and the shape of ``x``, in ``[0, 1)``.

    Raises:
        TypeError: if ``x`` is not an integer tensor or ``dtype`` is not floating.
        ValueError: if a level is outside ``0 .. levels - 1``.

    Example:
        >>> x = sandflow.data.dequantize(torch.tensor([0, 8, 16]))
        >>> sandflow.data.quantize(x)
        tensor([ 0,  8, 16])
    """
    if not isinstance(x, Tensor) or x.dtype not in _INTEGER_DTYPES:
        raise TypeError(f"dequantize expects an integer tensor of levels, got {_describe(x)}")
    _check_levels(levels)
    if not dtype.is_floating_point:
        raise TypeError(f"dequantize needs a floating dtype, got {dtype}")
    if x.numel() and (x.min() < 0 or x.max() >= levels):
        raise ValueError(
            f"levels must lie in 0..{levels - 1}, got values in {int(x.min())}..{int(x.max())}"
        )
    noise = torch.rand(x.shape, generator=generator, dtype=dtype, device=x.device)
    y = (x + noise) / levels
    while True:
        offset = torch.floor(y * levels) - x
        if not offset.any():
            return y
        toward = (offset < 0).to(y)  # 1 where y fell below its bin, 0 where above
        y = torch.where(offset == 0, y, torch.nextafter(y, toward))


def quantize(y: Tensor, levels: int = 17) -> Tensor:
    """``floor(levels * y)`` clipped to ``0 .. levels - 1``: data in ``[0, 1)`` back to levels.

    Inverts :func:`dequantize`; values outside ``[0, 1)`` (a model's samples,
    infinities included) go to the nearest end level. NaN has no level.

    Args:
        y: data on the ``[0, 1)`` scale.
        levels: number of grey levels.

    Returns:
        A ``torch.long`` tensor of levels, the shape of ``y``.

    Raises:
        TypeError: if ``y`` is not a floating-point tensor.
        ValueError: if ``y`` holds NaN or ``levels`` is not an int >= 2.

    Example:
        >>> sandflow.data.quantize(torch.tensor([0.0, 0.5, 0.99, 1.7]))
        tensor([ 0,  8, 16, 16])
    """
    if not isinstance(y, Tensor) or not torch.is_floating_point(y):
        raise TypeError(f"quantize expects a floating-point tensor, got {_describe(y)}")
    _check_levels(levels)
    nan = torch.isnan(y)
    if nan.any():
        raise ValueError(
            f"quantize got NaN in y ({int(nan.sum())} of {y.numel()} values), which has no "
            "grey level; check the model that produced y"
        )
    return torch.floor(y * levels).clamp(0, levels - 1).long()


def to_symmetric(y: Tensor) -> Tensor:
    """``2 y - 1``: data in ``[0, 1)`` to ``[-1, 1)``, the scale diffusion models use.

    The map multiplies volumes by ``2^D``: give :func:`dequantized_bits_per_dim`
    the log-density on the ``[-1, 1)`` scale with ``scale=2``.

    Example:
        >>> sandflow.data.to_symmetric(torch.tensor([0.0, 0.5]))
        tensor([-1.,  0.])
    """
    return 2 * y - 1


def to_unit_interval(z: Tensor) -> Tensor:
    """``(z + 1) / 2``: data in ``[-1, 1)`` back to ``[0, 1)``, the inverse of :func:`to_symmetric`.

    Example:
        >>> sandflow.data.to_unit_interval(torch.tensor([-1.0, 0.0]))
        tensor([0.0000, 0.5000])
    """
    return (z + 1) / 2


def dequantized_bits_per_dim(
    log_prob: Tensor | float, num_dims: int, levels: int = 17, scale: float = 1.0
) -> Tensor:
    """``(-log p(x) - D log(scale) + D log(levels)) / (D log 2)``: discrete bits per dimension.

    For data dequantised to bins of width ``1 / levels`` on ``[0, 1)`` (see
    :func:`dequantize`), the discrete probability of an image ``k`` obeys
    ``-log P(k) <= E_u[-log p((k + u) / levels)] + D log(levels)`` (Jensen), so
    the mean of this value over dequantised test data bounds the discrete
    bits per dimension from above. A uniform density on ``[0, 1)^D`` gives
    exactly ``log2(levels)``. (A diffusion model's own bound on discrete
    data is :meth:`sandflow.diffusion.GaussianDiffusion.bits_per_dim`.)

    ``log_prob`` may be the density on a rescaled copy ``z = scale * y + shift``
    of the ``[0, 1)`` data: the Jacobian ``D log(scale)`` is added back
    (``scale=2`` for data in ``[-1, 1)`` from :func:`to_symmetric`).

    Args:
        log_prob: continuous log-density in nats of each dequantised example.
        num_dims: number of dimensions ``D`` of one example (64 for digits).
        levels: number of grey levels of the original data.
        scale: width of the data range that ``log_prob`` lives on, over 1.

    Returns:
        Bits per dimension, the shape of ``log_prob``.

    Raises:
        ValueError: if ``num_dims``, ``levels`` or ``scale`` is out of range.

    Example:
        >>> sandflow.data.dequantized_bits_per_dim(torch.tensor(0.0), num_dims=64)  # log2(17)
        tensor(4.0875)
        >>> log_prob = torch.tensor(-64 * 0.6931471805599453)  # uniform on [-1, 1)^64
        >>> sandflow.data.dequantized_bits_per_dim(log_prob, 64, scale=2)
        tensor(4.0875)
    """
    if not isinstance(num_dims, int) or num_dims < 1:
        raise ValueError(f"num_dims must be a positive int, got {num_dims!r}")
    _check_levels(levels)
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale!r}")
    log_prob = torch.as_tensor(log_prob)
    nats = -log_prob + num_dims * (math.log(levels) - math.log(scale))
    return nats / (num_dims * math.log(2))


def _check_levels(levels: int) -> None:
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 2:
        raise ValueError(f"levels must be an int >= 2, got {levels!r}")


def _describe(x: object) -> str:
    """``'a tensor of dtype ...'`` or the type name, for error messages."""
    return f"a tensor of dtype {x.dtype}" if isinstance(x, Tensor) else type(x).__name__
