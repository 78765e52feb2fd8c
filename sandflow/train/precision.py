"""Mixed precision: ``torch.autocast`` on the networks, float32 for log-dets and losses.

Under ``precision="bf16"`` (CPU or CUDA) or ``"fp16"`` (CUDA, with a
``GradScaler``) the loss runs inside ``torch.autocast``, so matrix products
and convolutions run in half precision. What a network returns is cast back
to float32 by a forward hook, on every network a bijector owns (its
conditioner), or on the module itself when it holds no bijector (a
denoiser): a flow's log-dets and every loss then add up in float32, never in
bfloat16's 8-bit mantissa.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn
from torch.distributions import Transform

__all__ = ["PRECISIONS", "autocast", "check", "float32_outputs"]

PRECISIONS = {"float32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def _to_float32(output: Any) -> Any:  # noqa: ANN401
    if isinstance(output, Tensor) and output.is_floating_point():
        return output.float()
    if isinstance(output, tuple | list):
        return type(output)(_to_float32(part) for part in output)
    return output


def _networks(module: nn.Module) -> list[nn.Module]:
    """The modules whose outputs go back to float32: a bijector's networks, or ``module``."""
    nets = [
        child
        for parent in module.modules()
        if isinstance(parent, Transform)
        for child in parent.children()
        if not isinstance(child, Transform)
    ]
    if nets or any(isinstance(m, Transform) for m in module.modules()):
        return nets
    return [module]


def check(precision: str, device: torch.device) -> None:
    """Raise ``ValueError`` if ``precision`` is unknown or unavailable on ``device``."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "fp16" and device.type != "cuda":
        raise ValueError(f"precision='fp16' needs a CUDA device (got {device}); use 'bf16'")


@contextlib.contextmanager
def float32_outputs(module: nn.Module, precision: str) -> Iterator[None]:
    """While open, the networks of ``module`` return float32 (no-op for ``"float32"``)."""
    if PRECISIONS[precision] is None:
        yield
        return
    hooks = [net.register_forward_hook(lambda m, i, o: _to_float32(o)) for net in _networks(module)]
    try:
        yield
    finally:
        for hook in hooks:
            hook.remove()


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The context of one loss evaluation: ``torch.autocast`` to ``precision``, or nothing."""
    dtype = PRECISIONS[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)
