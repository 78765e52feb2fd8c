import math

import pytest
import torch

from sandflow.diffusion import NoiseSchedule


def running_product(betas):
    out, prod = [1.0], 1.0
    for b in betas:
        prod *= 1.0 - b
        out.append(prod)
    return torch.tensor(out, dtype=torch.float64)


def test_linear_schedule_indexing_and_closed_forms():
    s = NoiseSchedule.linear(1000)
    assert s.num_steps == 1000
    for name in ("betas", "alphas", "alpha_bars", "posterior_variances", "snr"):
        value = getattr(s, name)
        assert value.shape == (1001,) and value.dtype == torch.float64, name
    assert s.betas[0] == 0 and s.alpha_bars[0] == 1
    assert s.betas[1].item() == pytest.approx(1e-4) and s.betas[-1].item() == pytest.approx(0.02)
    betas = [1e-4 + (0.02 - 1e-4) * i / 999 for i in range(1000)]
    torch.testing.assert_close(s.betas[1:], torch.tensor(betas, dtype=torch.float64))
    torch.testing.assert_close(s.alphas, 1 - s.betas)
    torch.testing.assert_close(s.alpha_bars, running_product(betas), rtol=1e-12, atol=0)
    abar = running_product(betas)
    for t in (1, 2, 500, 1000):
        expected = betas[t - 1] * (1 - abar[t - 1]) / (1 - abar[t])
        assert s.posterior_variances[t].item() == pytest.approx(expected.item(), rel=1e-12)
        assert s.snr[t].item() == pytest.approx((abar[t] / (1 - abar[t])).item(), rel=1e-12)
    assert s.posterior_variances[1] == 0 and s.snr[0] == math.inf


def test_cosine_schedule_follows_nichol_dhariwal():
    T = 50
    s = NoiseSchedule.cosine(T)

    def f(t):
        return math.cos((t / T + 0.008) / 1.008 * math.pi / 2) ** 2

    betas = [min(1 - f(t) / f(t - 1), 0.999) for t in range(1, T + 1)]
    torch.testing.assert_close(s.betas[1:], torch.tensor(betas, dtype=torch.float64))
    assert s.betas[-1].item() == 0.999  # clipped
    torch.testing.assert_close(s.alpha_bars, running_product(betas), rtol=1e-12, atol=0)
    # before clipping bites, alpha_bar_t is f(t) / f(0)
    assert s.alpha_bars[25].item() == pytest.approx(f(25) / f(0), rel=1e-12)


def test_custom_betas_are_beta_1_to_beta_T():
    s = NoiseSchedule([0.1, 0.2, 0.5])
    assert s.num_steps == 3
    torch.testing.assert_close(s.betas, torch.tensor([0.0, 0.1, 0.2, 0.5], dtype=torch.float64))
    assert s.alpha_bars[3].item() == pytest.approx(0.9 * 0.8 * 0.5)
    assert "T=3" in repr(s)


@pytest.mark.parametrize(
    ("betas", "match"),
    [
        ([0.1, 0.0, 0.2], r"betas must lie in \(0, 1\); beta_t does not at t = \[2\]"),
        ([0.1, 1.0], r"at t = \[2\]"),
        ([-0.1, 0.5], r"at t = \[1\]"),
        ([0.1, float("nan")], r"betas must be finite; beta_t is not at t = \[2\]"),
        ([float("inf")], "betas must be finite"),
        ([], "1-D sequence of the T >= 1 values"),
        ([[0.1, 0.2]], "1-D sequence"),
        ([0.1, 1e-20, 0.2], r"strictly decreasing in t, but 1 - beta_t rounds to 1 at t = \[2\]"),
        ([0.9] * 8000, r"alpha_bars\[T\] underflows to 0"),
    ],
)
def test_invalid_schedules_name_the_problem(betas, match):
    with pytest.raises(ValueError, match=match):
        NoiseSchedule(betas)


@pytest.mark.parametrize("T", [0, -3, 2.5, True])
def test_invalid_number_of_steps(T):
    with pytest.raises(ValueError, match="number of steps T must be an int >= 1"):
        NoiseSchedule.linear(T)
    with pytest.raises(ValueError, match="number of steps T must be an int >= 1"):
        NoiseSchedule.cosine(T)


def test_respace_keeps_alpha_bars_at_the_kept_steps():
    s = NoiseSchedule.cosine(100)
    short, taus = s.respace(10)
    assert short.num_steps == 10 and taus[0] == 0 and taus[1] == 1 and taus[-1] == 100
    assert (taus[1:] > taus[:-1]).all()
    torch.testing.assert_close(short.alpha_bars, s.alpha_bars[taus], rtol=1e-10, atol=0)
    same, identity = s.respace(100)
    assert identity.tolist() == list(range(101))
    torch.testing.assert_close(same.betas, s.betas, rtol=1e-9, atol=1e-15)
    single, tau = s.respace(1)
    assert tau.tolist() == [0, 100]
    assert single.alpha_bars[1].item() == pytest.approx(s.alpha_bars[100].item(), rel=1e-12)


@pytest.mark.parametrize("steps", [0, 101, 2.0])
def test_respace_rejects_bad_step_counts(steps):
    with pytest.raises(ValueError, match=r"steps must be an int in 1..T = 1..100"):
        NoiseSchedule.cosine(100).respace(steps)
