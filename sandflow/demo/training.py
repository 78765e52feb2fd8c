"""Maximum-likelihood training loop shared by the demo and the quality tests."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from tqdm.auto import trange

__all__ = ["fit_flow"]


def fit_flow(
    flow: nn.Module,
    batches: Callable[[int], Tensor],
    *,
    steps: int,
    lr: float = 1e-3,
    progress: str | None = None,
) -> list[float]:
    """Fit ``flow`` by maximum likelihood (Adam, cosine learning-rate decay); return the losses.

    Args:
        flow: a :class:`~sandflow.flows.Flow` (``flow().log_prob`` is maximised).
        batches: ``step -> batch`` of training data.
        steps: number of gradient steps.
        lr: initial learning rate.
        progress: a tqdm description, or ``None`` for no progress bar.

    Example:
        >>> flow = sandflow.flows.realnvp(2, layers=2, hidden=(8,))
        >>> losses = fit_flow(flow, lambda step: torch.randn(64, 2), steps=5)
        >>> len(losses)
        5
    """
    optimizer = torch.optim.Adam(flow.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    losses = []
    bar = trange(steps, desc=progress, disable=progress is None, leave=False)
    for step in bar:
        loss = -flow().log_prob(batches(step)).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(flow.parameters(), 10.0)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        if step % 50 == 0:
            bar.set_postfix(nll=f"{loss.item():.3f}")
    return losses
