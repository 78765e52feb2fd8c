import math

import pytest
import torch
from scipy import stats

from sandflow.diffusion import ELBO, GaussianDiffusion, NoiseSchedule

N = 16_000  # 32,000 values: below torch's grain for multithreading tiny ops


def run_elbo(case, T, reverse_variance="beta", parameterization="eps", steps_per_call=None):
    schedule = NoiseSchedule.cosine(T)
    diffusion = GaussianDiffusion(schedule, parameterization, reverse_variance)
    x0 = case.sample(N)
    model = case.optimal(schedule.betas[1:], parameterization)
    return diffusion.elbo(model, x0, steps_per_call), x0, schedule.betas[1:]


@pytest.mark.parametrize(("T", "gap"), [(10, 0.190), (100, 0.0213)])
def test_gaussian_elbo_gap_is_exact_and_shrinks_with_T(gaussian_case, T, gap):
    out, x0, betas = run_elbo(gaussian_case, T)
    assert isinstance(out, ELBO)
    assert out.denoising.shape == (N, T - 1)
    torch.testing.assert_close(
        out.total, out.reconstruction - out.prior_matching - out.denoising.sum(-1)
    )
    # closed form, computed in the test from the betas alone
    expected = gaussian_case.expected_elbo(betas, "beta")
    assert -gaussian_case.entropy() - expected == pytest.approx(gap, abs=5e-4)
    # the bound on this batch: below the exact log-likelihood by the closed-form gap
    diff = gaussian_case.log_prob(x0) - out.total
    stderr = diff.std().item() / math.sqrt(N)
    assert diff.mean().item() == pytest.approx(gap, abs=4 * stderr)
    assert out.total.mean() < gaussian_case.log_prob(x0).mean()


def test_elbo_terms_match_their_closed_forms_term_by_term(gaussian_case):
    T = 12
    out, x0, betas = run_elbo(gaussian_case, T, "posterior", steps_per_call=5)
    expected = gaussian_case.expected_denoising(betas, "posterior")
    per_t = out.denoising.double().mean(0)
    stderr = out.denoising.double().std(0) / math.sqrt(N)
    assert ((per_t - expected).abs() < 4 * stderr + 1e-4).all(), (per_t, expected)
    # prior matching is deterministic given x0: KL(N(sqrt(abar_T) x0, 1 - abar_T) || N(0, 1))
    abar = gaussian_case.alpha_bars(betas)[-1]
    mean, var = abar.sqrt() * x0.double(), 1 - abar
    kl = 0.5 * (-torch.log(var) + var + mean**2 - 1)
    torch.testing.assert_close(out.prior_matching.double(), kl.sum(-1), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("reverse_variance", ["posterior", "beta"])
def test_parameterizations_agree_with_the_same_optimal_model(gaussian_case, reverse_variance):
    results = {}
    x0 = gaussian_case.sample(256)
    schedule = NoiseSchedule.cosine(50)
    for p in ("eps", "x0", "v"):
        diffusion = GaussianDiffusion(schedule, p, reverse_variance)
        torch.manual_seed(1)
        results[p] = diffusion.elbo(gaussian_case.optimal(schedule.betas[1:], p), x0)
    for p in ("x0", "v"):
        for a, b in zip(results[p], results["eps"], strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=2e-3)


def test_steps_per_call_does_not_change_the_expectation(gaussian_case):
    one, _, betas = run_elbo(gaussian_case, 8, steps_per_call=1)
    many, _, _ = run_elbo(gaussian_case, 8, steps_per_call=3)
    expected = gaussian_case.expected_elbo(betas, "beta")
    for out in (one, many):
        stderr = out.total.std().item() / math.sqrt(N)
        assert out.total.mean().item() == pytest.approx(expected, abs=4 * stderr)
    with pytest.raises(ValueError, match="steps_per_call must be >= 1"):
        GaussianDiffusion(NoiseSchedule.linear(5)).elbo(lambda x, t: x, torch.zeros(2, 1), 0)


def test_discretized_reconstruction_and_bits_per_dim():
    # T = 1: the ELBO is the decoder term minus the prior term. An x0-model that
    # outputs a constant c makes the decoder N(c, beta_1) binned on 5 levels.
    levels, c, beta = 5, 0.2, 0.3
    diffusion = GaussianDiffusion(
        NoiseSchedule([beta]), "x0", "posterior", decoder="discretized", grid_points=levels
    )
    x0 = torch.tensor([[-1.0, -0.5, 0.0, 0.5, 1.0]])
    out = diffusion.elbo(lambda xt, t: torch.full_like(xt, c), x0)
    sd, half = math.sqrt(beta), 1 / (levels - 1)
    edges = [-math.inf, -0.75, -0.25, 0.25, 0.75, math.inf]
    expected = sum(
        math.log(stats.norm.cdf((edges[i + 1] - c) / sd) - stats.norm.cdf((edges[i] - c) / sd))
        for i in range(5)
    )
    assert half == 0.25
    assert out.reconstruction.item() == pytest.approx(expected, rel=1e-5)
    prior = 0.5 * sum(beta + (1 - beta) * x**2 - 1 - math.log(beta) for x in x0[0])
    assert out.prior_matching.item() == pytest.approx(float(prior), rel=1e-5)
    bpd = diffusion.bits_per_dim(lambda xt, t: torch.full_like(xt, c), x0)
    assert bpd.item() == pytest.approx(-(expected - float(prior)) / (5 * math.log(2)), rel=1e-5)


def test_learned_variance_interpolates_between_the_fixed_ones(gaussian_case):
    schedule = NoiseSchedule.cosine(20)
    model = gaussian_case.optimal(schedule.betas[1:], "eps")
    x0 = gaussian_case.sample(64)
    learned = GaussianDiffusion(schedule, reverse_variance="learned")
    for v, fixed in ((1.0, "beta"), (-1.0, "posterior")):
        torch.manual_seed(3)
        a = learned.elbo(
            lambda xt, t, v=v: torch.cat([model(xt, t), torch.full_like(xt, v)], 1), x0
        )
        torch.manual_seed(3)
        b = GaussianDiffusion(schedule, reverse_variance=fixed).elbo(model, x0)
        torch.testing.assert_close(a.total, b.total, rtol=1e-5, atol=1e-4)
