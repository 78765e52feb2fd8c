"""Multi-layer perceptron used as a conditioner and as a denoiser backbone."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

__all__ = ["MLP"]


class MLP(nn.Sequential):
    """``Linear -> act -> ... -> Linear`` mapping ``(..., in_features)`` to ``(..., out_features)``.

    Args:
        in_features: input size.
        out_features: output size.
        hidden: sizes of the hidden layers.
        activation: activation module class placed after each hidden layer.
        zero_last: initialise the last layer to zero, so that a coupling or a
            learned prior fed by this network starts as the identity (Glow).

    Example:
        >>> net = MLP(3, 4, hidden=(16, 16))
        >>> net(torch.zeros(5, 3)).shape
        torch.Size([5, 4])
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden: Sequence[int] = (256, 256),
        activation: type[nn.Module] = nn.ReLU,
        zero_last: bool = False,
    ) -> None:
        sizes = [in_features, *hidden, out_features]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            if i > 0:
                layers.append(activation())
            layers.append(nn.Linear(a, b))
        if zero_last:
            nn.init.zeros_(layers[-1].weight)
            nn.init.zeros_(layers[-1].bias)
        super().__init__(*layers)
        self.in_features, self.out_features = in_features, out_features
