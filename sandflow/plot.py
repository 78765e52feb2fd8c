"""Matplotlib figures for densities and images (needs the ``plot`` extra)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["density_panels", "image_grid"]


def _pyplot():  # noqa: ANN202
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError('sandflow.plot needs matplotlib: pip install "sandflow[plot]"') from error
    return plt


@torch.no_grad()
def density_panels(
    panels: Sequence[tuple[str, Callable[[Tensor], Tensor]]],
    *,
    extent: float = 4.0,
    resolution: int = 200,
    title: str | None = None,
) -> Figure:
    """Heatmaps of ``exp(log_prob)`` on ``[-extent, extent]^2``, a panel per ``(title, log_prob)``.

    Example:
        >>> d = sandflow.data.toy("banana")
        >>> fig = sandflow.plot.density_panels([("banana", d.log_prob)])
        >>> len(fig.axes)
        1
    """
    plt = _pyplot()
    grid = torch.linspace(-extent, extent, resolution)
    xx, yy = torch.meshgrid(grid, grid, indexing="xy")
    points = torch.stack([xx, yy], -1).reshape(-1, 2)
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.2), squeeze=False)
    for ax, (name, log_prob) in zip(axes[0], panels, strict=True):
        density = log_prob(points).float().exp().reshape(resolution, resolution)
        ax.imshow(density.cpu().numpy(), origin="lower", extent=(-extent, extent, -extent, extent))
        ax.set_title(name, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def image_grid(images: Tensor, *, ncol: int = 8, title: str | None = None) -> Figure:
    """A grid of ``(N, 1, H, W)`` grey images with values in ``[0, 1]``.

    Example:
        >>> fig = sandflow.plot.image_grid(torch.rand(16, 1, 8, 8), ncol=4)
        >>> len(fig.axes)
        1
    """
    plt = _pyplot()
    n, _, h, w = images.shape
    nrow = -(-n // ncol)
    canvas = torch.ones(nrow * (h + 1) + 1, ncol * (w + 1) + 1)
    for i, image in enumerate(images.detach().float().clamp(0, 1).cpu()):
        r, c = divmod(i, ncol)
        top, left = 1 + r * (h + 1), 1 + c * (w + 1)
        canvas[top : top + h, left : left + w] = image[0]
    fig, ax = plt.subplots(figsize=(0.45 * ncol + 0.5, 0.45 * nrow + 0.7))
    ax.imshow(canvas.numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
