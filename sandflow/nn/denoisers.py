"""Denoisers ``model(xt, t)`` for diffusion: an MLP for vectors, a small UNet for images."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from sandflow.nn.mlp import MLP

__all__ = ["MLPDenoiser", "SinusoidalEmbedding", "UNet"]


class SinusoidalEmbedding(nn.Module):
    r"""e(t) = [sin(t w_k), cos(t w_k)], w_k = P^{-k / (d/2)}: the timestep as a vector of size d.

    The Transformer's position encoding applied to the diffusion timestep, so
    that a network sees nearby timesteps as similar and distant ones as not.

    Args:
        dim: embedding size (even).
        max_period: the longest period :math:`P`.

    References:
        Attention Is All You Need (Vaswani et al., 2017), https://arxiv.org/abs/1706.03762,
        section 3.5; used for timesteps by Ho et al. (2020), https://arxiv.org/abs/2006.11239.

    Example:
        >>> SinusoidalEmbedding(8)(torch.tensor([1, 500])).shape
        torch.Size([2, 8])
    """

    def __init__(self, dim: int, max_period: float = 10_000.0) -> None:
        super().__init__()
        if dim < 2 or dim % 2:
            raise ValueError(f"dim must be an even int >= 2, got {dim}")
        k = torch.arange(dim // 2, dtype=torch.float32)
        self.register_buffer("freqs", torch.exp(-math.log(max_period) * k / (dim // 2)))

    def forward(self, t: Tensor) -> Tensor:  # noqa: D102
        angles = t.to(self.freqs.dtype)[..., None] * self.freqs
        return torch.cat([angles.sin(), angles.cos()], dim=-1)


class MLPDenoiser(nn.Module):
    r"""model(x_t, t) = MLP([x_t, e(t)]): a denoiser for vectors of shape ``(batch, features)``.

    The data and the sinusoidal timestep embedding are concatenated and fed
    to a :class:`~sandflow.nn.MLP` with SiLU activations. The last layer
    starts at zero, so the untrained network predicts zero.

    Args:
        features: size of the data vectors.
        hidden: hidden layer sizes.
        embedding_dim: size of the timestep embedding.
        out_features: output size (default ``features``; ``2 * features`` for a
            learned reverse variance).

    References:
        Denoising Diffusion Probabilistic Models (Ho et al., 2020),
        https://arxiv.org/abs/2006.11239.

    Example:
        >>> net = MLPDenoiser(2, hidden=(32, 32))
        >>> net(torch.randn(5, 2), torch.randint(1, 100, (5,))).shape
        torch.Size([5, 2])
    """

    def __init__(
        self,
        features: int,
        hidden: Sequence[int] = (256, 256, 256),
        embedding_dim: int = 64,
        out_features: int | None = None,
    ) -> None:
        super().__init__()
        self.embed = SinusoidalEmbedding(embedding_dim)
        out = features if out_features is None else out_features
        self.net = MLP(features + embedding_dim, out, hidden, activation=nn.SiLU, zero_last=True)

    def forward(self, xt: Tensor, t: Tensor) -> Tensor:  # noqa: D102
        return self.net(torch.cat([xt, self.embed(t)], dim=-1))


class _ResBlock(nn.Module):
    """``h + conv(act(norm(conv(act(norm(h))) + emb)))``, the timestep added between the convs."""

    def __init__(self, cin: int, cout: int, emb_dim: int) -> None:
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(min(8, cin), cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb_dim, cout)
        self.norm2, self.conv2 = (
            nn.GroupNorm(min(8, cout), cout),
            nn.Conv2d(cout, cout, 3, padding=1),
        )
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, h: Tensor, emb: Tensor) -> Tensor:
        y = self.conv1(nn.functional.silu(self.norm1(h))) + self.emb(emb)[..., None, None]
        return self.skip(h) + self.conv2(nn.functional.silu(self.norm2(y)))


class UNet(nn.Module):
    r"""model(x_t, t): a two-level UNet with residual blocks for small images ``(batch, C, H, W)``.

    One residual block at full resolution (``base`` channels), a strided
    convolution down to half resolution, two blocks there (``2 * base``),
    nearest-neighbour upsampling, concatenation of the skip connection and a
    last block, each block conditioned on the timestep embedding. Sized for
    8x8 digits on a CPU; ``H`` and ``W`` must be even. The output
    convolution starts at zero.

    Args:
        channels: image channels.
        base: channels of the first level.
        out_channels: output channels (default ``channels``; ``2 * channels``
            for a learned reverse variance).

    References:
        U-Net: Convolutional Networks for Biomedical Image Segmentation
        (Ronneberger et al., 2015), https://arxiv.org/abs/1505.04597;
        the residual, time-conditioned variant of Ho et al. (2020),
        https://arxiv.org/abs/2006.11239.

    Example:
        >>> net = UNet(1, base=16)
        >>> net(torch.randn(3, 1, 8, 8), torch.randint(1, 100, (3,))).shape
        torch.Size([3, 1, 8, 8])
    """

    def __init__(self, channels: int = 1, base: int = 32, out_channels: int | None = None) -> None:
        super().__init__()
        emb = 4 * base
        self.embed = nn.Sequential(
            SinusoidalEmbedding(base), MLP(base, emb, (emb,), activation=nn.SiLU), nn.SiLU()
        )
        self.inp = nn.Conv2d(channels, base, 3, padding=1)
        self.down_block = _ResBlock(base, base, emb)
        self.down = nn.Conv2d(base, base, 3, stride=2, padding=1)
        self.mid = nn.ModuleList(
            [_ResBlock(base, 2 * base, emb), _ResBlock(2 * base, 2 * base, emb)]
        )
        self.up_block = _ResBlock(3 * base, base, emb)
        self.out = nn.Sequential(
            nn.GroupNorm(min(8, base), base),
            nn.SiLU(),
            nn.Conv2d(base, channels if out_channels is None else out_channels, 3, padding=1),
        )
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def forward(self, xt: Tensor, t: Tensor) -> Tensor:  # noqa: D102
        if xt.shape[-1] % 2 or xt.shape[-2] % 2:
            raise ValueError(f"UNet needs an even height and width, got {tuple(xt.shape[-2:])}")
        emb = self.embed(t)
        skip = self.down_block(self.inp(xt), emb)
        h = self.down(skip)
        for block in self.mid:
            h = block(h, emb)
        h = nn.functional.interpolate(h, scale_factor=2.0, mode="nearest")
        return self.out(self.up_block(torch.cat([h, skip], dim=1), emb))
