"""Time-conditioned vector fields ``v(x, t[, context])`` for continuous normalizing flows."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from sandflow.nn.denoisers import SinusoidalEmbedding
from sandflow.nn.mlp import MLP

__all__ = ["MLPVectorField"]


class MLPVectorField(nn.Module):
    r"""v(x, t, c) = MLP([x, e(s t), c]): a time-conditioned vector field for vectors.

    The state :math:`x` of shape ``(..., features)``, the sinusoidal embedding
    :math:`e` (:class:`~sandflow.nn.SinusoidalEmbedding`) of the scaled time
    :math:`s t` and, for a conditional field, the context :math:`c` are
    concatenated and fed to an :class:`~sandflow.nn.MLP` with smooth (SiLU)
    activations, so that :math:`v` and its Jacobian are continuous in
    :math:`x` and :math:`t`, as an ODE solver and the divergence need. With
    the default ``time_scale=10`` and ``max_period=100`` the embedding's
    frequencies span 0.1 to 10 radians per unit time: smooth over
    :math:`t \in [0, 1]` yet able to tell its ends apart. The last layer starts
    at zero, so the untrained field is :math:`v = 0` (the identity flow).

    ``t`` is a scalar tensor (as an ODE solver passes it) or a tensor of the
    batch shape of ``x`` (as flow matching does); it is broadcast either way.

    Args:
        features: size of the state vectors.
        hidden: hidden layer sizes.
        context: number of context features (0: unconditional).
        embedding_dim: size of the time embedding (even).
        time_scale: the factor :math:`s` applied to ``t`` before embedding.
        max_period: longest period of the embedding, in units of :math:`s t`.

    References:
        Neural Ordinary Differential Equations (Chen et al., 2018),
        https://arxiv.org/abs/1806.07366;
        Flow Matching for Generative Modeling (Lipman et al., 2023),
        https://arxiv.org/abs/2210.02747.

    Example:
        >>> field = MLPVectorField(2, hidden=(16, 16))
        >>> field(torch.randn(5, 2), torch.tensor(0.5)).shape
        torch.Size([5, 2])
        >>> field(torch.randn(5, 2), torch.rand(5)).abs().max().item()  # starts at zero
        0.0
    """

    def __init__(
        self,
        features: int,
        hidden: Sequence[int] = (64, 64, 64),
        context: int = 0,
        embedding_dim: int = 16,
        time_scale: float = 10.0,
        max_period: float = 100.0,
    ) -> None:
        super().__init__()
        if isinstance(features, bool) or not isinstance(features, int) or features < 1:
            raise ValueError(f"features must be an int >= 1, got {features!r}")
        if isinstance(context, bool) or not isinstance(context, int) or context < 0:
            raise ValueError(f"context must be an int >= 0, got {context!r}")
        self.features, self.context_features, self.time_scale = features, context, time_scale
        self.embed = SinusoidalEmbedding(embedding_dim, max_period)
        width = features + embedding_dim + context
        self.net = MLP(width, features, hidden, activation=nn.SiLU, zero_last=True)

    def forward(self, x: Tensor, t: Tensor, context: Tensor | None = None) -> Tensor:
        """The velocity at ``x`` (shape ``(..., features)``) and time ``t``."""
        batch = x.shape[:-1]
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
        emb = self.embed(self.time_scale * t).to(x.dtype).expand(*batch, -1)
        parts = [x, emb]
        if self.context_features:
            if context is None:
                raise ValueError(
                    f"this vector field is conditional (context={self.context_features}); "
                    "pass a context tensor of shape (..., context)"
                )
            parts.append(context.expand(*batch, -1))
        return self.net(torch.cat(parts, dim=-1))

    def extra_repr(self) -> str:
        return (
            f"features={self.features}, context={self.context_features}, "
            f"time_scale={self.time_scale}"
        )
