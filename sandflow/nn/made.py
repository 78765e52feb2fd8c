"""Masked autoencoder for distribution estimation (MADE): an autoregressive conditioner."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sandflow.nn.mlp import MLP

__all__ = ["MADE"]


class MADE(MLP):
    r"""An :class:`~sandflow.nn.MLP` with masked weights: output :math:`i` sees inputs before it.

    .. math::
        \theta_{p, i} = \mathrm{MADE}(x, c)_{p, i} \text{ depends on } x_j
        \text{ only if } \mathrm{rank}(j) < \mathrm{rank}(i),

    where the rank of a feature is its position in ``order``. Input feature
    ``j`` gets degree ``rank(j) + 1``, hidden units get degrees cycling over
    :math:`1 \dots D - 1`, and a weight is kept when the degree of its output
    unit is at least (hidden layers) or strictly above (output layer) the
    degree of its input unit. The ``context`` features have degree 0, and with
    a context the hidden degrees cycle over :math:`0 \dots D - 1`: units of
    degree 0 see the context alone, so that every output, the first feature's
    included, depends on it. Outputs are ``params`` blocks of ``features``
    entries, ``(..., params * features)``, block ``p`` holding parameter ``p``
    of every feature. With ``zero_last`` the last layer starts at zero.

    Args:
        features: number of autoregressive features :math:`D`.
        params: number of outputs per feature.
        hidden: sizes of the hidden layers.
        context: number of context features appended to the input.
        order: a permutation of ``range(features)``, the autoregressive order
            (``order[0]`` comes first); the natural order by default.
        activation: activation module class placed after each hidden layer.
        zero_last: initialise the last layer to zero.

    References:
        MADE: Masked Autoencoder for Distribution Estimation (Germain, Gregor,
        Murray & Larochelle, 2015). https://arxiv.org/abs/1502.03509

    Example:
        >>> made = MADE(3, params=2, hidden=(8,))
        >>> made(torch.randn(5, 3)).shape
        torch.Size([5, 6])
    """

    def __init__(
        self,
        features: int,
        params: int,
        hidden: Sequence[int] = (256, 256),
        *,
        context: int = 0,
        order: Sequence[int] | Tensor | None = None,
        activation: type[nn.Module] = nn.ReLU,
        zero_last: bool = False,
    ) -> None:
        if features < 1 or params < 1:
            raise ValueError(f"MADE needs features >= 1 and params >= 1, got {features}, {params}")
        order = torch.arange(features) if order is None else torch.as_tensor(order)
        if order.dim() != 1 or not torch.equal(order.sort().values, torch.arange(features)):
            raise ValueError(f"order must be a permutation of range({features}), got {order}")
        super().__init__(features + context, params * features, hidden, activation, zero_last)
        self.features, self.params, self.context_features = features, params, context
        degrees = torch.empty(features, dtype=torch.long)
        degrees[order] = torch.arange(1, features + 1)
        self.register_buffer("degrees", degrees)
        inputs = torch.cat((degrees, torch.zeros(context, dtype=torch.long)))
        low = 0 if context or features == 1 else 1  # lowest hidden degree
        layers = [m for m in self if isinstance(m, nn.Linear)]
        self.num_layers = len(layers)
        for k, layer in enumerate(layers[:-1]):
            units = torch.arange(layer.out_features) % (features - low) + low
            self.register_buffer(f"mask{k}", (units[:, None] >= inputs).float())
            inputs = units
        outputs = degrees.repeat(params)
        self.register_buffer(f"mask{self.num_layers - 1}", (outputs[:, None] > inputs).float())

    def masks(self) -> list[Tensor]:
        """The binary masks of the linear layers, first to last, shape ``(out, in)``."""
        return [getattr(self, f"mask{k}") for k in range(self.num_layers)]

    def forward(self, x: Tensor) -> Tensor:
        """Parameters ``(..., params * features)`` of inputs ``(..., features + context)``."""
        masks = iter(self.masks())
        for layer in self:
            if isinstance(layer, nn.Linear):
                x = F.linear(x, layer.weight * next(masks), layer.bias)
            else:
                x = layer(x)
        return x
