import math

import pytest
import torch
from scipy import stats

from sandflow.distributions.gaussian import (
    DiscretizedNormal,
    discretized_normal_log_prob,
    normal_kl,
)


def test_normal_kl_hand_values():
    # KL(N(1, 4) || N(0, 1)) = 0.5 * (log(1/4) + 4 + 1 - 1) = 2 - log 2
    kl = normal_kl(torch.tensor(1.0), torch.tensor(4.0), torch.tensor(0.0), torch.tensor(1.0))
    assert kl.item() == pytest.approx(2.0 - math.log(2.0))
    # KL(N(0, 1) || N(2, 0.25)) = 0.5 * (log 0.25 + (1 + 4) / 0.25 - 1) = 9.5 - log 2
    kl = normal_kl(torch.tensor(0.0), torch.tensor(1.0), torch.tensor(2.0), torch.tensor(0.25))
    assert kl.item() == pytest.approx(9.5 - math.log(2.0))


def test_normal_kl_matches_torch_and_broadcasts():
    m1, m2 = torch.randn(5, 3, dtype=torch.float64), torch.randn(3, dtype=torch.float64)
    v1, v2 = torch.rand(5, 3, dtype=torch.float64) + 0.1, torch.rand(3, dtype=torch.float64) + 0.1
    expected = torch.distributions.kl_divergence(
        torch.distributions.Normal(m1, v1.sqrt()), torch.distributions.Normal(m2, v2.sqrt())
    )
    torch.testing.assert_close(normal_kl(m1, v1, m2, v2), expected)
    assert normal_kl(m1, v1, m1, v1).abs().max() < 1e-12


def _reference(x, loc, scale, levels):
    """log of the bin mass, by CDFs left of the mean and survival functions right of it."""
    half = 1.0 / (levels - 1)
    a = (x - half - loc) / scale if x > -1 + half else -math.inf
    b = (x + half - loc) / scale if x < 1 - half else math.inf
    if x > loc:
        return math.log(stats.norm.sf(a) - stats.norm.sf(b))
    return math.log(stats.norm.cdf(b) - stats.norm.cdf(a))


@pytest.mark.parametrize("levels", [2, 5, 17, 256])
def test_discretized_matches_hand_computed_bin_masses(levels):
    grid = torch.linspace(-1, 1, levels, dtype=torch.float64)
    for loc, scale in [(0.0, 1.0), (0.3, 0.05), (-0.9, 0.2), (1.2, 0.5)]:
        loc_ = torch.tensor(loc, dtype=torch.float64)
        scale_ = torch.tensor(scale, dtype=torch.float64)
        lp = discretized_normal_log_prob(grid, loc_, scale_, levels)
        expected = torch.tensor([_reference(float(x), loc, scale, levels) for x in grid])
        torch.testing.assert_close(lp, expected.double(), rtol=1e-7, atol=1e-9)
        assert lp.exp().sum().item() == pytest.approx(1.0, abs=1e-12)


def test_discretized_is_exact_far_in_both_tails():
    # 17 levels, bins of half-width 1/16; the mean 30 standard deviations away
    x = torch.tensor([0.0, 0.0], dtype=torch.float64)
    loc = torch.tensor([0.6, -0.6], dtype=torch.float64)
    lp = discretized_normal_log_prob(x, loc, torch.tensor(0.02, dtype=torch.float64), 17)
    upper = stats.norm.logcdf((0.0 + 1 / 16 - 0.6) / 0.02)
    ratio = math.exp(stats.norm.logcdf((0.0 - 1 / 16 - 0.6) / 0.02) - upper)
    expected = upper + math.log1p(-ratio)
    assert torch.isfinite(lp).all()
    torch.testing.assert_close(lp, torch.tensor([expected, expected], dtype=torch.float64))


def test_discretized_gradients_are_finite():
    loc = torch.tensor([0.0, 0.9, -3.0, 4.0], requires_grad=True)
    scale = torch.tensor([0.01, 0.5, 0.1, 0.05], requires_grad=True)
    x = torch.tensor([-1.0, 1.0, 0.5, 0.0])
    discretized_normal_log_prob(x, loc, scale, 256).sum().backward()
    assert torch.isfinite(loc.grad).all() and torch.isfinite(scale.grad).all()


def test_discretized_normal_samples_follow_the_bin_masses():
    d = DiscretizedNormal(torch.tensor(0.2), torch.tensor(0.4), grid_points=5)
    x = d.sample((100_000,))
    grid = torch.linspace(-1, 1, 5)
    assert torch.isin(x, grid).all()
    freq = torch.stack([(x == g).double().mean() for g in grid])
    torch.testing.assert_close(freq, d.log_prob(grid).exp().double(), atol=5e-3, rtol=0)


def test_discretized_bad_grid_points():
    with pytest.raises(ValueError, match="grid_points must be an int >= 2"):
        DiscretizedNormal(torch.zeros(2), torch.ones(2), grid_points=1)
    with pytest.raises(ValueError, match="grid_points must be an int >= 2"):
        discretized_normal_log_prob(torch.zeros(2), torch.zeros(2), torch.ones(2), grid_points=0)
