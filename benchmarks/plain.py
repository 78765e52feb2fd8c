"""Plain-torch RealNVP and Glow: the reference the flow benchmark measures against.

Written directly with ``nn.Module``s and no bijector abstraction, the two flows
compute what ``sandflow.flows.realnvp`` and ``sandflow.flows.glow`` compute:
the same layers in the same order, the same parameterisation (soft-clamped
log-scales, PLU 1x1 convolutions, ActNorm initialised from the first density
pass, a learned conditional prior at the multiscale split) and the same number
of parameters. Forward is the sampling direction (noise to data);
``log_prob`` runs the inverse pass.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["Glow", "RealNVP"]

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def standard_normal_log_prob(z: Tensor) -> Tensor:
    """Log-density of a standard normal, summed over all but the first dimension."""
    z = z.flatten(1)
    return -0.5 * (z * z).sum(1) - z.shape[1] * HALF_LOG_2PI


def soft_clamp(x: Tensor, bound: float) -> Tensor:
    return bound * torch.tanh(x / bound)


def mlp(n_in: int, n_out: int, hidden: Sequence[int]) -> nn.Sequential:
    sizes = [n_in, *hidden, n_out]
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        if i:
            layers.append(nn.ReLU())
        layers.append(nn.Linear(a, b))
    nn.init.zeros_(layers[-1].weight)
    nn.init.zeros_(layers[-1].bias)
    return nn.Sequential(*layers)


def convnet(n_in: int, n_out: int, hidden: int) -> nn.Sequential:
    net = nn.Sequential(
        nn.Conv2d(n_in, hidden, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(hidden, hidden, 1),
        nn.ReLU(),
        nn.Conv2d(hidden, n_out, 3, padding=1),
    )
    nn.init.zeros_(net[-1].weight)
    nn.init.zeros_(net[-1].bias)
    return net


# -- RealNVP ----------------------------------------------------------------------------


class Coupling(nn.Module):
    """Affine coupling on vectors: the second half (first with ``swap``) is transformed."""

    def __init__(self, features: int, hidden: Sequence[int], swap: bool, bound: float = 3.0):
        super().__init__()
        first = features // 2
        self.sizes = (first, features - first)
        self.swap, self.bound = swap, bound
        n_a, n_b = self.sizes[::-1] if swap else self.sizes
        self.net = mlp(n_a, 2 * n_b, hidden)

    def _halves(self, x: Tensor) -> tuple[Tensor, Tensor]:
        a, b = x.split(self.sizes, dim=-1)
        return (b, a) if self.swap else (a, b)

    def _merge(self, a: Tensor, b: Tensor) -> Tensor:
        return torch.cat((b, a) if self.swap else (a, b), dim=-1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        a, b = self._halves(x)
        s, t = self.net(a).chunk(2, dim=-1)
        s = soft_clamp(s, self.bound)
        return self._merge(a, b * torch.exp(s) + t), s.sum(-1)

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        a, b = self._halves(y)
        s, t = self.net(a).chunk(2, dim=-1)
        s = soft_clamp(s, self.bound)
        return self._merge(a, (b - t) * torch.exp(-s)), -s.sum(-1)


class RealNVP(nn.Module):
    """``layers`` affine couplings alternating halves, over a standard-normal base."""

    def __init__(self, features: int, layers: int = 8, hidden: Sequence[int] = (256, 256)):
        super().__init__()
        self.features = features
        self.layers = nn.ModuleList(Coupling(features, hidden, i % 2 == 1) for i in range(layers))

    def log_prob(self, x: Tensor) -> Tensor:
        total = x.new_zeros(x.shape[0])
        for layer in reversed(self.layers):
            x, log_det = layer.inverse(x)
            total = total + log_det
        return standard_normal_log_prob(x) + total

    def sample(self, n: int) -> Tensor:
        x = torch.randn(n, self.features, device=self.layers[0].net[0].weight.device)
        for layer in self.layers:
            x, _ = layer(x)
        return x


# -- Glow -------------------------------------------------------------------------------


def squeeze(x: Tensor) -> Tensor:
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(b, 4 * c, h // 2, w // 2)


def unsqueeze(x: Tensor) -> Tensor:
    b, c, h, w = x.shape
    x = x.reshape(b, c // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
    return x.reshape(b, c // 4, 2 * h, 2 * w)


class ImageCoupling(nn.Module):
    """Affine coupling over channels, conditioned by a 3x3-1x1-3x3 ConvNet."""

    def __init__(self, channels: int, hidden: int, bound: float = 3.0):
        super().__init__()
        self.half, self.bound = channels // 2, bound
        self.net = convnet(self.half, 2 * (channels - self.half), hidden)

    def _params(self, a: Tensor) -> tuple[Tensor, Tensor]:
        s, t = self.net(a).chunk(2, dim=1)
        return soft_clamp(s, self.bound), t

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        a, b = x.split((self.half, x.shape[1] - self.half), dim=1)
        s, t = self._params(a)
        return torch.cat((a, b * torch.exp(s) + t), 1), s.sum((1, 2, 3))

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        a, b = y.split((self.half, y.shape[1] - self.half), dim=1)
        s, t = self._params(a)
        return torch.cat((a, (b - t) * torch.exp(-s)), 1), -s.sum((1, 2, 3))


class Conv1x1(nn.Module):
    """Invertible 1x1 convolution, ``W = P L (U + diag(sign * exp(log_diagonal)))``."""

    def __init__(self, channels: int):
        super().__init__()
        self.channels = channels
        rotation = torch.linalg.qr(torch.randn(channels, channels))[0]
        permutation, lower, upper = torch.linalg.lu(rotation)
        diagonal = upper.diagonal()
        self.register_buffer("permutation", permutation)
        self.register_buffer("sign", diagonal.sign())
        self.register_buffer("lower_mask", torch.tril(torch.ones(channels, channels), -1))
        self.register_buffer("eye", torch.eye(channels))
        self.lower = nn.Parameter(lower * self.lower_mask)
        self.upper = nn.Parameter(upper.triu(1))
        self.log_diagonal = nn.Parameter(diagonal.abs().log())

    def _factors(self) -> tuple[Tensor, Tensor]:
        lower = self.lower * self.lower_mask + self.eye
        upper = self.upper.triu(1) + torch.diag(self.sign * self.log_diagonal.exp())
        return lower, upper

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        lower, upper = self._factors()
        weight = self.permutation @ lower @ upper
        log_det = x.shape[2] * x.shape[3] * self.log_diagonal.sum()
        y = F.conv2d(x, weight.view(self.channels, self.channels, 1, 1))
        return y, log_det.expand(x.shape[0])

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        lower, upper = self._factors()
        solved = torch.linalg.solve_triangular(
            lower, self.permutation.T, upper=False, unitriangular=True
        )
        weight = torch.linalg.solve_triangular(upper, solved, upper=True)
        log_det = -y.shape[2] * y.shape[3] * self.log_diagonal.sum()
        x = F.conv2d(y, weight.view(self.channels, self.channels, 1, 1))
        return x, log_det.expand(y.shape[0])


class ActNorm(nn.Module):
    """Per-channel ``y = loc + exp(log_scale) x``, set from the first density pass."""

    def __init__(self, channels: int):
        super().__init__()
        self.loc = nn.Parameter(torch.zeros(channels, 1, 1))
        self.log_scale = nn.Parameter(torch.zeros(channels, 1, 1))
        self.register_buffer("initialized", torch.tensor(False))
        self.ready = False  # mirrors the buffer: a Python bool that torch.compile can guard on

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        log_det = x.shape[2] * x.shape[3] * self.log_scale.sum()
        return x * torch.exp(self.log_scale) + self.loc, log_det.expand(x.shape[0])

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        if not self.ready:
            with torch.no_grad():
                std, mean = torch.std_mean(y, dim=(0, 2, 3), correction=0, keepdim=True)
                self.loc.copy_(mean[0])
                self.log_scale.copy_(std[0].clamp_min(1e-6).log())
                self.initialized.fill_(True)
            self.ready = True
        log_det = -y.shape[2] * y.shape[3] * self.log_scale.sum()
        return (y - self.loc) * torch.exp(-self.log_scale), log_det.expand(y.shape[0])


class Step(nn.Module):
    """One Glow step; sampling direction: coupling, 1x1 convolution, ActNorm."""

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.coupling = ImageCoupling(channels, hidden)
        self.conv = Conv1x1(channels)
        self.norm = ActNorm(channels)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x, ld1 = self.coupling(x)
        x, ld2 = self.conv(x)
        x, ld3 = self.norm(x)
        return x, ld1 + ld2 + ld3

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        y, ld3 = self.norm.inverse(y)
        y, ld2 = self.conv.inverse(y)
        y, ld1 = self.coupling.inverse(y)
        return y, ld1 + ld2 + ld3


class Level(nn.Module):
    """Squeeze; split (kept half through the deeper levels, learned prior); steps; unsqueeze."""

    def __init__(self, channels: int, levels: int, steps: int, hidden: int):
        super().__init__()
        wide = 4 * channels
        self.half = wide // 2
        self.inner = Level(self.half, levels - 1, steps, hidden) if levels > 1 else None
        self.prior = convnet(self.half, 2 * (wide - self.half), hidden) if levels > 1 else None
        self.steps = nn.ModuleList(Step(wide, hidden) for _ in range(steps))

    def _prior(self, a: Tensor) -> tuple[Tensor, Tensor]:
        s, t = self.prior(a).chunk(2, dim=1)
        return soft_clamp(s, 3.0), t

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        h = squeeze(z)
        total = z.new_zeros(z.shape[0])
        if self.inner is not None:
            a, b = h.split((self.half, h.shape[1] - self.half), dim=1)
            a, total = self.inner(a)
            s, t = self._prior(a)
            h = torch.cat((a, b * torch.exp(s) + t), 1)
            total = total + s.sum((1, 2, 3))
        for step in self.steps:
            h, log_det = step(h)
            total = total + log_det
        return unsqueeze(h), total

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = squeeze(x)
        total = x.new_zeros(x.shape[0])
        for step in reversed(self.steps):
            h, log_det = step.inverse(h)
            total = total + log_det
        if self.inner is not None:
            a, b = h.split((self.half, h.shape[1] - self.half), dim=1)
            s, t = self._prior(a)
            b = (b - t) * torch.exp(-s)
            a, log_det = self.inner.inverse(a)
            h = torch.cat((a, b), 1)
            total = total + log_det - s.sum((1, 2, 3))
        return unsqueeze(h), total


class Glow(nn.Module):
    """Multiscale Glow mapping ``(C, H, W)`` noise to ``(C, H, W)`` data."""

    def __init__(self, shape: Sequence[int], levels: int = 2, steps: int = 4, hidden: int = 128):
        super().__init__()
        self.shape = tuple(shape)
        self.level = Level(self.shape[0], levels, steps, hidden)

    def log_prob(self, x: Tensor) -> Tensor:
        z, log_det = self.level.inverse(x)
        return standard_normal_log_prob(z) + log_det

    def sample(self, n: int) -> Tensor:
        noise = torch.randn(n, *self.shape, device=self.level.steps[0].norm.loc.device)
        return self.level(noise)[0]
