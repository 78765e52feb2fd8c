import math

import pytest
import torch

from sandflow.nn.denoisers import MLPDenoiser, SinusoidalEmbedding, UNet


def test_sinusoidal_embedding_values():
    emb = SinusoidalEmbedding(6, max_period=100.0)
    t = torch.tensor([0, 3, 250])
    freqs = [100.0 ** (-k / 3) for k in range(3)]
    expected = torch.tensor(
        [[math.sin(s * f) for f in freqs] + [math.cos(s * f) for f in freqs] for s in (0, 3, 250)]
    )
    torch.testing.assert_close(emb(t), expected, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="dim must be an even int >= 2"):
        SinusoidalEmbedding(5)


def test_mlp_denoiser_starts_at_zero_and_learns_from_t():
    net = MLPDenoiser(3, hidden=(32, 32), embedding_dim=16)
    x = torch.randn(8, 3)
    assert torch.equal(net(x, torch.full((8,), 5)), torch.zeros(8, 3))
    torch.nn.init.normal_(net.net[-1].weight)
    a, b = net(x, torch.full((8,), 5)), net(x, torch.full((8,), 900))
    assert not torch.allclose(a, b)  # the timestep reaches the output
    assert MLPDenoiser(3, hidden=(8,), out_features=6)(
        x, torch.ones(8, dtype=torch.long)
    ).shape == (
        8,
        6,
    )


@pytest.mark.parametrize("out_channels", [None, 2])
def test_unet_shapes_and_zero_start(out_channels):
    net = UNet(1, base=8, out_channels=out_channels)
    x = torch.randn(4, 1, 8, 8)
    y = net(x, torch.randint(1, 1000, (4,)))
    assert y.shape == (4, out_channels or 1, 8, 8)
    assert torch.equal(y, torch.zeros_like(y))


def test_unet_gradients_reach_every_parameter():
    net = UNet(2, base=8)
    for p in net.parameters():  # leave the zero start so every path carries signal
        torch.nn.init.normal_(p, std=0.1)
    y = net(torch.randn(3, 2, 8, 8), torch.tensor([1, 50, 999]))
    y.square().sum().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing
    a = net(torch.ones(1, 2, 8, 8), torch.tensor([1]))
    b = net(torch.ones(1, 2, 8, 8), torch.tensor([999]))
    assert not torch.allclose(a, b)


def test_unet_rejects_odd_sizes():
    with pytest.raises(ValueError, match=r"even height and width, got \(7, 8\)"):
        UNet(1, base=8)(torch.zeros(1, 1, 7, 8), torch.ones(1, dtype=torch.long))
