"""The probability-flow ODE against the closed forms of Gaussian data."""

import math

import pytest
import torch

from sandflow.bijectors import ContinuousFlow
from sandflow.diffusion import GaussianDiffusion, NoiseSchedule
from sandflow.diffusion.probability_flow import (
    ProbabilityFlowField,
    alpha_bar,
    bits_per_dim,
    distribution,
    probability_flow,
)

F64 = torch.float64
SCHEDULE = NoiseSchedule.linear(100, 1e-3, 0.1)
MU = torch.tensor([1.0, -0.5, 0.3], dtype=F64)
SD = torch.tensor([0.5, 1.2, 0.8], dtype=F64)
TIGHT = {"atol": 1e-9, "rtol": 1e-9}
CLOSE = {"atol": 1e-7, "rtol": 1e-7}


def optimal_eps(x, t):
    """E[eps | x_t] for data N(MU, diag(SD^2)), at real t of the continuous schedule."""
    abar = alpha_bar(SCHEDULE, t).to(x.dtype)[:, None]
    return (1 - abar).sqrt() * (x - abar.sqrt() * MU) / (abar * SD**2 + 1 - abar)


def optimal_v(x, t):
    abar = alpha_bar(SCHEDULE, t).to(x.dtype)[:, None]
    eps = optimal_eps(x, t)
    x0 = (x - (1 - abar).sqrt() * eps) / abar.sqrt()
    return abar.sqrt() * eps - (1 - abar).sqrt() * x0


def closed_form_log_prob(x0):
    """The ODE maps x0 affinely to x_T = sqrt(abar_T) MU + sqrt(v_T) (x0 - MU) / SD."""
    abar = SCHEDULE.alpha_bars[-1]
    var = abar * SD**2 + 1 - abar
    xt = abar.sqrt() * MU + (var / SD**2).sqrt() * (x0 - MU)
    return (
        torch.distributions.Normal(0.0, 1.0).log_prob(xt).sum(-1) + 0.5 * (var / SD**2).log().sum()
    )


def test_continuous_alpha_bar_meets_the_schedule_at_every_step():
    t = torch.arange(SCHEDULE.num_steps + 1)
    assert torch.equal(alpha_bar(SCHEDULE, t), SCHEDULE.alpha_bars)
    half = alpha_bar(SCHEDULE, t[:-1] + 0.5)
    torch.testing.assert_close(half**2, SCHEDULE.alpha_bars[:-1] * SCHEDULE.alpha_bars[1:])
    assert alpha_bar(SCHEDULE, -3.0) == 1 and alpha_bar(SCHEDULE, 1e3) == SCHEDULE.alpha_bars[-1]


def test_field_times_stay_inside_the_schedule():
    field = ProbabilityFlowField(GaussianDiffusion(SCHEDULE), optimal_eps)
    sigma_T = math.sqrt(1 / SCHEDULE.alpha_bars[-1] - 1)
    sigma = torch.tensor([-1.0, 0.0, sigma_T, 2 * sigma_T], dtype=F64)
    times = field.timestep(sigma)
    torch.testing.assert_close(times, torch.tensor([0.0, 0.0, 100.0, 100.0], dtype=F64))
    levels = torch.tensor([3.0, 41.5], dtype=F64)
    sigma = (1 / alpha_bar(SCHEDULE, levels) - 1).sqrt()
    torch.testing.assert_close(field.timestep(sigma), levels)
    x = torch.randn(4, 3, dtype=F64)
    torch.testing.assert_close(field(x, torch.tensor(-0.5, dtype=F64)), field(x, torch.tensor(0.0)))


def test_log_prob_matches_the_closed_form_of_the_optimal_model():
    x0 = MU + SD * torch.randn(64, 3, dtype=F64)
    diffusion = GaussianDiffusion(SCHEDULE)
    with torch.no_grad():
        log_q = distribution(diffusion, optimal_eps, (3,), **TIGHT).log_prob(x0)
        elbo = diffusion.elbo(optimal_eps, x0).total
    assert ((log_q - closed_form_log_prob(x0)).abs() / 3).max() < 1e-3
    # on average the data's own density, up to the N(0, I) start at T
    log_p = torch.distributions.Normal(MU, SD).log_prob(x0).sum(-1)
    assert abs(log_q.mean() - log_p.mean()) / 3 < 0.01
    assert log_q.mean() > elbo.mean()


def test_v_parameterization_and_learned_variance_give_the_same_flow():
    x0 = MU + SD * torch.randn(8, 3, dtype=F64)
    eps = distribution(GaussianDiffusion(SCHEDULE), optimal_eps, (3,), **CLOSE)
    v = distribution(GaussianDiffusion(SCHEDULE, "v"), optimal_v, (3,), **CLOSE)
    learned = GaussianDiffusion(SCHEDULE, "eps", "learned")
    both = distribution(
        learned, lambda x, t: torch.cat([optimal_eps(x, t), 0 * x], 1), (3,), **CLOSE
    )
    with torch.no_grad():
        reference = eps.log_prob(x0)
        torch.testing.assert_close(v.log_prob(x0), reference)
        torch.testing.assert_close(both.log_prob(x0), reference)


def test_sampling_runs_the_flow_forward_to_the_data_distribution():
    flow = probability_flow(GaussianDiffusion(SCHEDULE), optimal_eps, (3,), atol=1e-6, rtol=1e-6)
    assert flow.t_span[1] == 0.0
    with torch.no_grad():
        x = flow(torch.randn(4000, 3, dtype=F64))
    torch.testing.assert_close(x.mean(0), MU, atol=0.06, rtol=0)
    torch.testing.assert_close(x.std(0), SD, atol=0.06, rtol=0)


def test_bits_per_dim_dequantises_discrete_data():
    diffusion = GaussianDiffusion(SCHEDULE, decoder="discretized", grid_points=5)
    x0 = torch.tensor([[-1.0, 0.0, 0.5], [1.0, -0.5, 0.0]], dtype=F64)
    torch.manual_seed(1)
    bpd = bits_per_dim(diffusion, optimal_eps, x0, **CLOSE)
    torch.manual_seed(1)
    noisy = x0 + 0.5 * (torch.rand_like(x0) - 0.5)
    log_q = distribution(diffusion, optimal_eps, (3,), **CLOSE).log_prob(noisy)
    torch.testing.assert_close(bpd, -(log_q + 3 * math.log(0.5)) / (3 * math.log(2)))
    continuous = bits_per_dim(GaussianDiffusion(SCHEDULE), optimal_eps, x0, **CLOSE)
    expected = -closed_form_log_prob(x0) / (3 * math.log(2))
    torch.testing.assert_close(continuous, expected, atol=1e-4, rtol=0)


def test_x0_parameterization_is_refused():
    with pytest.raises(ValueError, match="parameterization"):
        probability_flow(GaussianDiffusion(SCHEDULE, "x0"), optimal_eps, (3,))


def test_gaussian_diffusion_methods_delegate():
    diffusion = GaussianDiffusion(SCHEDULE)
    flow = diffusion.probability_flow(optimal_eps, (3,), trace="hutchinson")
    assert isinstance(flow, ContinuousFlow) and flow.trace == "hutchinson"
    x0 = MU + SD * torch.randn(4, 3, dtype=F64)
    with torch.no_grad():
        log_q = diffusion.distribution(optimal_eps, (3,), **CLOSE).log_prob(x0)
        expected = distribution(diffusion, optimal_eps, (3,), **CLOSE).log_prob(x0)
    torch.testing.assert_close(log_q, expected)
