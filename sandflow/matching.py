r"""Flow matching: train the vector field of a continuous flow by regression, without ODE solves.

Noise :math:`x_0 \sim N(0, I)` sits at time 0 and data :math:`x_1` at time 1,
the direction of :class:`~sandflow.bijectors.ContinuousFlow` with its default
``t_span=(0, 1)``. A *path* :math:`x_t = a_t x_0 + b_t x_1 (+ \sigma \varepsilon)`
joins each pair; its velocity :math:`u_t = \dot a_t x_0 + \dot b_t x_1` is
known, and the conditional flow-matching loss

.. math::
    \mathcal L(\theta) = \mathbb E_{t, (x_0, x_1), \varepsilon}
    \big\| v_\theta(x_t, t) - u_t \big\|^2

has the same gradient as regressing on the marginal velocity field that
carries :math:`N(0, I)` to the data, so that the trained field, integrated
exactly by a :class:`~sandflow.bijectors.ContinuousFlow`, is a density model
with an exact ``log_prob``.

Paths: ``"linear"`` (rectified flow, :math:`a_t = 1 - t`, :math:`b_t = t`)
and ``"vp"`` (variance preserving, :math:`a_t = \cos(\pi t / 2)`,
:math:`b_t = \sin(\pi t / 2)`). Couplings: ``"independent"`` pairs noise and
data at random; ``"ot"`` re-pairs each minibatch by the exact optimal
(squared Euclidean) assignment, which straightens the learned paths.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["flow_matching_loss", "ot_coupling", "probability_path"]

_PATHS = ("linear", "vp")
_COUPLINGS = ("independent", "ot")


def ot_coupling(x0: Tensor, x1: Tensor) -> Tensor:
    r"""x0[pi], pi = argmin_pi sum_i ||x0[pi(i)] - x1[i]||^2: the noise re-paired to the data.

    The exact minibatch optimal-transport plan between two equal-size
    batches is a permutation; it is found by the Hungarian algorithm
    (:func:`scipy.optimize.linear_sum_assignment`) on the squared Euclidean
    costs, on the CPU. The data keep their order, so a context that goes with
    ``x1`` stays aligned.

    Args:
        x0: noise, shape ``(batch, *event)``.
        x1: data, shape ``(batch, *event)``.

    Returns:
        ``x0`` permuted to the optimal pairing with ``x1``.

    References:
        Improving and Generalizing Flow-Based Generative Models with Minibatch
        Optimal Transport (Tong et al., 2023), https://arxiv.org/abs/2302.00482.

    Example:
        >>> x1 = torch.tensor([[0.0], [10.0]])
        >>> ot_coupling(torch.tensor([[9.0], [1.0]]), x1)
        tensor([[1.],
                [9.]])
    """
    if x0.shape != x1.shape:
        raise ValueError(
            f"ot_coupling needs noise and data of the same shape, got {tuple(x0.shape)} "
            f"and {tuple(x1.shape)}"
        )
    from scipy.optimize import linear_sum_assignment  # scipy.optimize loads in 0.3 s: on use

    cost = torch.cdist(x0.detach().flatten(1).double(), x1.detach().flatten(1).double()) ** 2
    rows, cols = linear_sum_assignment(cost.cpu().numpy())
    order = torch.empty(len(cols), dtype=torch.long)
    order[torch.as_tensor(cols)] = torch.as_tensor(rows)
    return x0[order.to(x0.device)]


def probability_path(
    x0: Tensor, x1: Tensor, t: Tensor, path: str = "linear", sigma: float = 0.0
) -> tuple[Tensor, Tensor]:
    r"""x_t = a_t x_0 + b_t x_1 + sigma eps and u_t = a'_t x_0 + b'_t x_1: a point and its velocity.

    ``"linear"``: :math:`a_t = 1 - t`, :math:`b_t = t`, :math:`u_t = x_1 - x_0`.
    ``"vp"``: :math:`a_t = \cos(\frac{\pi}{2} t)`, :math:`b_t = \sin(\frac{\pi}{2} t)`,
    which keeps unit variance along the path for standardised data. A
    constant ``sigma > 0`` blurs the path with Gaussian noise without
    changing its velocity (Tong et al.'s independent CFM).

    Args:
        x0: noise, shape ``(batch, *event)``.
        x1: data, same shape.
        t: times in ``[0, 1]``, shape ``(batch,)``.
        path: ``"linear"`` or ``"vp"``.
        sigma: standard deviation of the blur.

    Returns:
        ``(x_t, u_t)``, each of the shape of ``x0``.

    References:
        Flow Straight and Fast (Liu et al., 2023), https://arxiv.org/abs/2209.03003;
        Stochastic Interpolants (Albergo & Vanden-Eijnden, 2023),
        https://arxiv.org/abs/2209.15571 (trigonometric, variance-preserving path).

    Example:
        >>> x0, x1 = torch.zeros(2, 3), torch.ones(2, 3)
        >>> xt, ut = probability_path(x0, x1, torch.tensor([0.25, 1.0]))
        >>> xt[:, 0], ut[:, 0]
        (tensor([0.2500, 1.0000]), tensor([1., 1.]))
    """
    if path not in _PATHS:
        raise ValueError(f"path must be one of {', '.join(map(repr, _PATHS))}, got {path!r}")
    t = t.to(x0.dtype).view(-1, *(1,) * (x0.dim() - 1))
    if path == "linear":
        ut = x1 - x0
        xt = x0 + t * ut
    else:
        angle = 0.5 * math.pi * t
        cos, sin = angle.cos(), angle.sin()
        xt, ut = cos * x0 + sin * x1, 0.5 * math.pi * (cos * x1 - sin * x0)
    if sigma:
        xt = xt + sigma * torch.randn_like(xt)
    return xt, ut


def flow_matching_loss(
    vector_field: Callable[..., Tensor],
    x1: Tensor,
    context: Tensor | None = None,
    *,
    path: str = "linear",
    coupling: str = "independent",
    sigma: float = 0.0,
) -> Tensor:
    r"""E ||v(x_t, t[, c]) - u_t||^2 at t ~ U(0, 1): the conditional flow-matching loss of a batch.

    Draws noise :math:`x_0 \sim N(0, I)` of the shape of the data ``x1``,
    pairs it with the data (``coupling``), one time per example, the point
    and velocity of ``path`` (see :func:`probability_path`), and returns the
    mean squared error of the field over every entry. No ODE is solved.

    Args:
        vector_field: ``v(x, t)`` or ``v(x, t, context)``, with ``t`` of shape ``(batch,)``.
        x1: a batch of data, shape ``(batch, *event)``.
        context: the context of each example for a conditional field, shape
            ``(batch, context_features)``.
        path: ``"linear"`` or ``"vp"``.
        coupling: ``"independent"`` or ``"ot"`` (minibatch optimal transport,
            see :func:`ot_coupling`).
        sigma: blur of the path.

    Returns:
        The scalar loss.

    References:
        Flow Matching for Generative Modeling (Lipman et al., 2023),
        https://arxiv.org/abs/2210.02747;
        Improving and Generalizing Flow-Based Generative Models with Minibatch
        Optimal Transport (Tong et al., 2023), https://arxiv.org/abs/2302.00482.

    Example:
        >>> from sandflow.nn import MLPVectorField
        >>> field = MLPVectorField(2, hidden=(16,))
        >>> flow_matching_loss(field, torch.randn(64, 2), coupling="ot").shape
        torch.Size([])
    """
    if coupling not in _COUPLINGS:
        raise ValueError(
            f"coupling must be one of {', '.join(map(repr, _COUPLINGS))}, got {coupling!r}"
        )
    x0 = torch.randn_like(x1)
    if coupling == "ot":
        x0 = ot_coupling(x0, x1)
    t = torch.rand(x1.shape[0], dtype=x1.dtype, device=x1.device)
    xt, ut = probability_path(x0, x1, t, path, sigma)
    v = vector_field(xt, t) if context is None else vector_field(xt, t, context)
    return (v - ut).square().mean()
