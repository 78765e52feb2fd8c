import ast
from pathlib import Path

import pytest
import torch

import sandflow.diffusion
from sandflow.diffusion import GaussianDiffusion, NoiseSchedule

BETAS = torch.linspace(0.02, 0.4, 12, dtype=torch.float64)


@pytest.mark.parametrize("parameterization", ["eps", "x0", "v"])
def test_reverse_mean_is_the_posterior_mean_at_the_predicted_x0(parameterization):
    diffusion = GaussianDiffusion(NoiseSchedule(BETAS), parameterization)
    xt = torch.randn(6, 3, dtype=torch.float64)
    out = torch.randn(6, 3, dtype=torch.float64)
    t = torch.tensor([1, 2, 5, 9, 11, 12])
    abar = torch.cumprod(1 - BETAS, 0)[t - 1][:, None]
    x0_hat = {
        "eps": (xt - (1 - abar).sqrt() * out) / abar.sqrt(),
        "x0": out,
        "v": abar.sqrt() * xt - (1 - abar).sqrt() * out,
    }[parameterization]
    expected = diffusion.posterior(x0_hat, xt, t).mean
    mean, _ = diffusion.p_mean_variance(lambda x, s: out, xt, t)
    torch.testing.assert_close(mean, expected)


def test_learned_log_variance_interpolates_log_beta_and_log_beta_tilde():
    schedule = NoiseSchedule(BETAS)
    diffusion = GaussianDiffusion(schedule, reverse_variance="learned")
    xt = torch.randn(4, 2, dtype=torch.float64)
    v = torch.tensor([-1.0, 0.0, 0.5, 1.0], dtype=torch.float64)[:, None].expand(4, 2)
    t = torch.tensor([3, 3, 7, 12])
    _, log_var = diffusion.p_mean_variance(lambda x, s: torch.cat([x, v], 1), xt, t)
    frac = (v + 1) / 2
    expected = (
        frac * BETAS[t - 1].log()[:, None]
        + (1 - frac) * schedule.posterior_variances[t].log()[:, None]
    )
    torch.testing.assert_close(log_var, expected)


def test_q_sample_and_the_posterior_are_the_closed_forms():
    schedule = NoiseSchedule(BETAS)
    diffusion = GaussianDiffusion(schedule)
    x0, noise = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    t = torch.tensor([1, 2, 6, 11, 12])
    abar = schedule.alpha_bars[t][:, None]
    xt = diffusion.q_sample(x0, t, noise)
    torch.testing.assert_close(xt, abar.sqrt() * x0 + (1 - abar).sqrt() * noise)
    mean, variance = diffusion.q_posterior_mean_variance(x0, xt, t)
    q = diffusion.posterior(x0, xt, t)
    torch.testing.assert_close(mean, q.mean)
    torch.testing.assert_close(variance.expand_as(x0), q.variance)
    assert variance.shape == (5, 1)
    torch.testing.assert_close(schedule.alpha_bars_prev[1:], schedule.alpha_bars[:-1])
    assert schedule.alpha_bars_prev[0] == 1
    torch.testing.assert_close(diffusion.alpha_bars_prev, schedule.alpha_bars_prev)


@pytest.mark.parametrize("parameterization", ["eps", "x0", "v"])
def test_the_target_is_what_recovers_x0_and_eps(parameterization):
    diffusion = GaussianDiffusion(NoiseSchedule(BETAS), parameterization)
    x0, noise = torch.randn(4, 2, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    t = torch.tensor([1, 4, 9, 12])
    xt = diffusion.q_sample(x0, t, noise)
    target = diffusion.prediction_target(x0, t, noise)
    torch.testing.assert_close(diffusion.predict_x0(xt, t, target), x0)
    torch.testing.assert_close(diffusion.predict_eps(xt, t, target), noise)
    # the reverse mean at the true target is the posterior mean: the bound term is its KL
    mean, variance = diffusion.q_posterior_mean_variance(x0, xt, t)
    torch.testing.assert_close(diffusion.p_mean(xt, t, target), mean)
    log_variance = diffusion.p_log_variance(xt, t)
    kl = diffusion.vb_term(x0[1:], xt[1:], t[1:], mean[1:], log_variance[1:])
    expected = 0.5 * (
        log_variance[1:] - variance[1:].log() + variance[1:] / log_variance[1:].exp() - 1
    )
    torch.testing.assert_close(kl, 2 * expected.squeeze(-1))


def test_prior_kl_is_the_kl_to_the_standard_normal():
    schedule = NoiseSchedule(BETAS)
    x0 = torch.randn(3, 2, dtype=torch.float64)
    abar = schedule.alpha_bars[-1]
    q = torch.distributions.Normal(abar.sqrt() * x0, (1 - abar).sqrt())
    expected = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(GaussianDiffusion(schedule).prior_kl(x0), expected)


def test_coefficients_are_public_float64_attributes_indexed_by_t():
    diffusion = GaussianDiffusion(NoiseSchedule(BETAS), "v")
    for name in (
        "betas", "alphas", "alpha_bars", "alpha_bars_prev", "posterior_variances",
        "sqrt_alphas", "sqrt_betas", "sqrt_alpha_bars", "sqrt_one_minus_alpha_bars",
        "posterior_mean_coef_x0", "posterior_mean_coef_xt", "x0_from_xt", "x0_from_output",
        "eps_from_xt", "eps_from_output", "mean_from_xt", "mean_from_output",
        "posterior_log_variance_clipped", "log_betas",
    ):  # fmt: skip
        value = getattr(diffusion, name)
        assert value.dtype == torch.float64 and value.shape == (13,), name
    x = torch.zeros(2, 3, 4)
    coef = diffusion.extract(diffusion.sqrt_alpha_bars, torch.tensor([2, 5]), x)
    assert coef.shape == (2, 1, 1) and coef.dtype == torch.float32
    assert coef[1].item() == pytest.approx(diffusion.alpha_bars[5].sqrt().item())


def test_objectives_and_samplers_use_only_the_public_api_and_import_nothing_above():
    """elbo, losses and sampling read no private member and never import gaussian_diffusion."""
    package = Path(sandflow.diffusion.__file__).parent
    for module in ("elbo", "losses", "sampling", "coefficients", "schedule"):
        tree = ast.parse((package / f"{module}.py").read_text())
        imported = [
            f"{node.module}.{alias.name}" if isinstance(node, ast.ImportFrom) else alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in node.names
        ]
        assert imported and not [name for name in imported if "gaussian_diffusion" in name]
        if module in ("elbo", "losses", "sampling"):
            private = [
                node.attr
                for node in ast.walk(tree)
                if isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ]
            assert not private, (module, private)
