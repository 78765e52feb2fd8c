"""Checks of the inputs and arguments of bijectors and flows: shapes, sizes, dtype, device, NaN."""

from __future__ import annotations

import itertools

import torch
from torch import Tensor, nn

__all__ = [
    "ShapeError",
    "batch_shape_of",
    "check_finite",
    "check_size",
    "check_tensor",
    "reference_tensor",
]


class ShapeError(ValueError):
    """An input whose shape does not fit a bijector; the message says how to fix it."""


def batch_shape_of(
    x: Tensor, event_dim: int, name: str = "bijector", size: int | None = None
) -> torch.Size:
    """The batch shape ``x.shape[:x.dim() - event_dim]``, after checking the event of ``x``.

    The one shape check of the bijectors: ``x`` must have ``event_dim`` event
    dimensions and, when ``size`` is given, ``size`` entries along the first
    of them (dim ``-event_dim``: the features of a vector, the channels of an
    image).

    Raises:
        ShapeError: naming ``name``, the shape received and the one expected.
    """
    if x.dim() < event_dim:
        raise ShapeError(
            f"{name} has event_dim={event_dim} but got a tensor of shape {tuple(x.shape)} "
            f"with only {x.dim()} dimension(s); add the missing event dimensions."
        )
    if size is not None and x.shape[-event_dim] != size:
        raise ShapeError(
            f"{name} was built for {size} features along dim {-event_dim} (event_dim="
            f"{event_dim}), got shape {tuple(x.shape)}; rebuild it for "
            f"{x.shape[-event_dim]} or reshape the input."
        )
    return x.shape[: x.dim() - event_dim]


def check_size(owner: str, name: str, value: object, least: int = 1) -> None:
    """Refuse a constructor size that is not an int of at least ``least``, naming it.

    Raises:
        ValueError: naming ``owner``, ``name`` and the value received.
    """
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        raise ValueError(f"{owner}: {name} must be an int >= {least}, got {value!r}")


def check_tensor(
    name: str, x: object, like: Tensor | None = None, owner: str = "the bijector's parameters"
) -> None:
    """Refuse ``x`` unless it is a floating-point tensor in the dtype and on the device of ``like``.

    The dtype and device check of the public entry points (a distribution's
    ``log_prob`` and samplers, :class:`~sandflow.flows.Flow`, the outer call of a
    :class:`~sandflow.bijectors.Chain`): once per call, never in every layer.

    Args:
        name: the argument, as the user wrote it (``value``, ``context``).
        x: the argument.
        like: a tensor of the module (see :func:`reference_tensor`); ``None``
            checks the type only.
        owner: what ``like`` stands for in the message.

    Raises:
        TypeError: for a non-tensor, a non-floating dtype or a dtype other than ``like``'s.
        ValueError: for a device other than ``like``'s.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if like is None:
        return
    if x.dtype != like.dtype:
        raise TypeError(
            f"{name} has dtype {x.dtype}, but {owner} have dtype {like.dtype}: convert the "
            f"data (.to({like.dtype})) or the model (model.to({x.dtype}))"
        )
    if x.device != like.device:
        raise ValueError(
            f"{name} is on device {x.device}, but {owner} are on {like.device}: move both "
            "to one device with .to(device)"
        )


def check_finite(name: str, x: Tensor) -> None:
    """Refuse NaN or infinite entries in ``x`` (the check that validation adds), naming ``name``.

    Skipped while ``torch.compile`` traces: a data-dependent branch would break the graph.

    Raises:
        ValueError: counting the non-finite entries of ``x``.
    """
    if torch.compiler.is_compiling():
        return
    finite = torch.isfinite(x)
    if not bool(finite.all()):
        raise ValueError(
            f"{name} contains NaN or infinite values ({int((~finite).sum())} of {x.numel()}); "
            "pass finite data (or validate_args=False to let NaN through)"
        )


def reference_tensor(module: nn.Module) -> Tensor | None:
    """The first floating-point parameter (else buffer) of ``module``: its dtype and device.

    Found once and remembered by its owner and name, so that a later call is a
    look-up that follows ``.to()``, ``.double()`` and ``load_state_dict``.
    ``None`` for a module without floating-point tensors, and while
    ``torch.compile`` traces (its guards already pin dtypes and devices).
    """
    if torch.compiler.is_compiling():
        return None
    where = module.__dict__.get("_reference_tensor")  # (the owner's tensor dict, the name)
    if where is not None:
        value = where[0].get(where[1])
        if value is not None:
            return value
    modules = list(module.modules())
    owned = itertools.chain((m._parameters for m in modules), (m._buffers for m in modules))
    for tensors in owned:
        for name, value in tensors.items():
            if value is not None and value.is_floating_point():
                module.__dict__["_reference_tensor"] = (tensors, name)
                return value
    return None
