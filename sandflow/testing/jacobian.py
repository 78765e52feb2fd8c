r"""Exact Jacobians of batched maps by forward-mode autodiff, and their log-determinants.

A transform never mixes batch entries, so one Jacobian-vector product whose
tangent is the unit vector :math:`e_j` of the event, repeated in every batch
entry, gives column :math:`j` of every entry's own Jacobian at once:
``D`` products (``torch.func.jvp`` under ``torch.func.vmap``, in chunks) give
the full ``(*batch, D, D)`` Jacobian without ever flattening the batch, so
elementwise transforms whose parameters broadcast against the batch (an
``AffineTransform`` with a ``loc`` per feature) are handled as they are. Maps
that forward mode cannot trace (an op without a forward-mode formula, or
data-dependent control flow under ``vmap``) fall back to reverse mode, one
backward pass per output value.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["jacobian", "log_abs_det_jacobian"]

#: Values of tangents handled in one vmapped chunk (memory knob of :func:`jacobian`).
CHUNK_VALUES = 2**21


def _event_split(x: Tensor, event_dim: int) -> tuple[torch.Size, torch.Size]:
    if not 0 <= event_dim <= x.dim():
        raise ValueError(
            f"event_dim must lie in [0, x.dim()={x.dim()}] for x of shape {tuple(x.shape)}, "
            f"got {event_dim}"
        )
    return x.shape[: x.dim() - event_dim], x.shape[x.dim() - event_dim :]


def jacobian(
    fn: Callable[[Tensor], Tensor],
    x: Tensor,
    event_dim: int,
    *,
    chunk_size: int | None = None,
) -> Tensor:
    """Per-batch-entry Jacobians ``(*batch, D_out, D_in)`` of a batched map ``y = fn(x)``.

    Args:
        fn: a map that keeps the batch dims of ``x`` and never mixes batch entries.
        x: the point, of shape ``batch + event``.
        event_dim: number of rightmost dims of ``x`` forming one event (0 for
            elementwise maps: then ``D_in = 1`` and the "Jacobian" is the derivative).
        chunk_size: event coordinates per vmapped chunk (default: as many as fit
            :data:`CHUNK_VALUES` tangent values).

    Returns:
        ``J[b, i, j] = d fn(x)[b, i] / d x[b, j]``, event values flattened.

    Example:
        >>> A = torch.tensor([[2.0, 1.0], [0.0, 3.0]])
        >>> jacobian(lambda x: x @ A.T, torch.randn(4, 2), event_dim=1)[0]
        tensor([[2., 1.],
                [0., 3.]])
    """
    batch, event = _event_split(x, event_dim)
    size = math.prod(event)
    x = x.detach()
    if chunk_size is None:
        chunk_size = max(1, min(size, CHUNK_VALUES // max(x.numel(), 1)))
    try:
        columns = _columns_forward(fn, x, batch, event, chunk_size)
    except (RuntimeError, NotImplementedError, ValueError):  # not traceable by torch.func
        columns = _columns_reverse(fn, x, batch, event)
    return columns


def _unit_tangents(x: Tensor, event: torch.Size, start: int, stop: int) -> Tensor:
    """Tangents ``(stop - start, *x.shape)``: unit vector ``e_j`` of the event in every entry."""
    size = math.prod(event)
    units = torch.zeros(stop - start, size, dtype=x.dtype, device=x.device)
    units[torch.arange(stop - start), torch.arange(start, stop)] = 1
    view = (stop - start, *([1] * (x.dim() - len(event))), *event)
    return units.reshape(view).expand(stop - start, *x.shape)


def _as_columns(out: Tensor, batch: torch.Size) -> Tensor:
    """``(k, *batch, *event_out)`` -> ``(*batch, D_out, k)``."""
    if out.shape[1 : 1 + len(batch)] != batch:
        raise ValueError(
            f"the map changed the batch shape {tuple(batch)} into {tuple(out.shape[1:])}"
        )
    flat = out.reshape(out.shape[0], *batch, -1)
    return flat.movedim(0, -1)


def _columns_forward(
    fn: Callable[[Tensor], Tensor],
    x: Tensor,
    batch: torch.Size,
    event: torch.Size,
    chunk_size: int,
) -> Tensor:
    def column(tangent: Tensor) -> Tensor:
        return torch.func.jvp(fn, (x,), (tangent,))[1]

    size = math.prod(event)
    chunks = []
    with warnings.catch_warnings():
        # torch loads its forward-mode decompositions through torch.jit.script once
        warnings.filterwarnings("ignore", "`torch.jit.script` is deprecated", DeprecationWarning)
        for start in range(0, size, chunk_size):
            stop = min(size, start + chunk_size)
            tangents = _unit_tangents(x, event, start, stop)
            chunks.append(_as_columns(torch.func.vmap(column)(tangents), batch))
    return torch.cat(chunks, dim=-1)


def _columns_reverse(
    fn: Callable[[Tensor], Tensor], x: Tensor, batch: torch.Size, event: torch.Size
) -> Tensor:
    with torch.enable_grad():
        inputs = x.clone().requires_grad_(True)
        out = fn(inputs)
        flat = out.reshape(*batch, -1)
        rows = []
        for i in range(flat.shape[-1]):
            (grad,) = torch.autograd.grad(
                flat[..., i].sum(), inputs, retain_graph=True, allow_unused=True
            )
            grad = torch.zeros_like(inputs) if grad is None else grad
            rows.append(grad.reshape(*batch, -1))
    return torch.stack(rows, dim=-2).detach()


def log_abs_det_jacobian(
    fn: Callable[[Tensor], Tensor],
    x: Tensor,
    event_dim: int,
    *,
    chunk_size: int | None = None,
) -> Tensor:
    r""":math:`\log|\det J_{fn}(x)|` per batch entry, from the exact Jacobian (float64 ``slogdet``).

    Cost: ``D`` Jacobian-vector products plus one ``D x D`` LU per batch entry;
    a 3x32x32 event (``D = 3072``) takes seconds per entry on one CPU core.

    Raises:
        ValueError: if the Jacobian is not square (the map changes the number of values).

    Example:
        >>> x = torch.randn(5, 3)
        >>> log_abs_det_jacobian(lambda v: 2 * v, x, event_dim=1)
        tensor([2.0794, 2.0794, 2.0794, 2.0794, 2.0794])
    """
    jac = jacobian(fn, x, event_dim, chunk_size=chunk_size)
    if jac.shape[-1] != jac.shape[-2]:
        raise ValueError(
            f"the Jacobian is not square: {jac.shape[-1]} input values per event map to "
            f"{jac.shape[-2]} output values, so it has no determinant"
        )
    return torch.linalg.slogdet(jac.double())[1].to(x.dtype)
