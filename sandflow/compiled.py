"""The compiled path: a flow's density, sampling and training through ``torch.compile``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from sandflow.bijectors.actnorm import ActNorm
from sandflow.bijectors.base import sum_rightmost
from sandflow.flows import Flow

__all__ = ["CompiledFlow", "compile"]


class CompiledFlow:
    r"""A :class:`~sandflow.flows.Flow` whose passes run as one ``torch.compile`` graph each.

    :meth:`log_prob` (one inverse pass) and the forward pass behind
    :meth:`sample` and :meth:`rsample_and_log_prob` are each compiled with
    ``fullgraph=True``: the whole flow, base density included, becomes one
    graph with no Python between layers, and training through :meth:`log_prob`
    compiles the backward pass too (AOTAutograd). The noise of a sample is
    drawn eagerly, so a seeded sample equals the eager flow's. The numbers
    equal the eager flow's to float rounding. A graph cannot branch on data,
    so the compiled passes do not validate values (``validate_args``): check
    doubtful data with the eager ``flow().log_prob``.

    Compiling happens on the first call with a new input shape; calls with new
    values, or after an optimiser step, reuse the graph. A flow with
    :class:`~sandflow.bijectors.ActNorm` layers runs its first density pass
    eagerly (their data-dependent initialisation), and the compiled one from
    then on.

    The :class:`CompiledFlow` shares its parameters with the flow: train
    either, and both see the new weights; ``flow.state_dict()`` is the
    checkpoint.

    Args:
        flow: the flow to compile.
        mode: ``torch.compile`` mode (``None``, ``"reduce-overhead"`` for
            small batches on a GPU, ``"max-autotune"``).
        dynamic: ``torch.compile``'s ``dynamic`` (``None``: static shapes until
            a shape changes, then dynamic).

    Example:
        >>> flow = sandflow.flows.realnvp(2, layers=2, hidden=(8,))
        >>> fast = sandflow.compile(flow)  # see the user guide's "compiled path"
        >>> fast.flow is flow
        True
    """

    def __init__(self, flow: Flow, *, mode: str | None = None, dynamic: bool | None = None) -> None:
        if not isinstance(flow, Flow):
            raise TypeError(
                f"sandflow.compile takes a sandflow Flow, got {type(flow).__name__}; for any "
                "other module use torch.compile directly."
            )
        self.flow = flow
        options: dict[str, Any] = {"fullgraph": True, "mode": mode, "dynamic": dynamic}
        self._log_prob = torch.compile(self._eager_log_prob, **options)
        self._forward = torch.compile(self._eager_forward, **options)
        # ActNorm's data-dependent initialisation runs in the first density pass, eagerly.
        self._eager_first = any(isinstance(m, ActNorm) for m in flow.modules())

    def _eager_log_prob(self, x: Tensor, context: Tensor | None) -> Tensor:
        return self.flow(context, validate_args=False).log_prob(x)

    def _eager_forward(self, z: Tensor, context: Tensor | None) -> tuple[Tensor, Tensor]:
        flow = self.flow
        bijector = flow.bijector if context is None else flow.bijector.condition(context)
        x, log_det = bijector.forward_and_log_det(z)
        base = flow.base
        return x, base.log_prob(z) - sum_rightmost(log_det, len(flow.shape) - bijector.event_dim)

    def log_prob(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        """``log p(x)`` (given ``context`` if conditional), as ``flow(context).log_prob(x)``."""
        if self._eager_first:
            self._eager_first = False
            return self._eager_log_prob(x, context)
        return self._log_prob(x, context)

    def _noise(self, sample_shape: Sequence[int], context: Tensor | None) -> Tensor:
        base = self.flow.base
        if context is not None:
            base = base.expand(context.shape[:-1])
        return base.sample(torch.Size(sample_shape))

    def rsample_and_log_prob(
        self, sample_shape: Sequence[int] = (), context: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """A reparameterised sample and its ``log_prob``, from one compiled forward pass."""
        return self._forward(self._noise(sample_shape, context), context)

    def sample(self, sample_shape: Sequence[int] = (), context: Tensor | None = None) -> Tensor:
        """Samples without gradients, from one compiled forward pass."""
        with torch.no_grad():
            return self._forward(self._noise(sample_shape, context), context)[0]

    def __repr__(self) -> str:
        return f"CompiledFlow({type(self.flow).__name__}(...))"


def compile(flow: Flow, *, mode: str | None = None, dynamic: bool | None = None) -> CompiledFlow:
    """The compiled path of ``flow``: ``log_prob``, ``sample`` and training via ``torch.compile``.

    See :class:`CompiledFlow`. ``sandflow.compile(flow)`` leaves ``flow`` as it
    is (the eager path keeps working); ``torch.nn.Module.compile`` is not
    overridden.

    Example:
        >>> flow = sandflow.flows.realnvp(2, layers=2, hidden=(8,))
        >>> sandflow.compile(flow, mode="max-autotune")  # compiles on the first call
        CompiledFlow(Flow(...))
    """
    return CompiledFlow(flow, mode=mode, dynamic=dynamic)
