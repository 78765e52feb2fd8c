import pytest
import torch

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
    mean, _ = diffusion._reverse_params(lambda x, s: out, xt, t)
    torch.testing.assert_close(mean, expected)


def test_learned_log_variance_interpolates_log_beta_and_log_beta_tilde():
    schedule = NoiseSchedule(BETAS)
    diffusion = GaussianDiffusion(schedule, reverse_variance="learned")
    xt = torch.randn(4, 2, dtype=torch.float64)
    v = torch.tensor([-1.0, 0.0, 0.5, 1.0], dtype=torch.float64)[:, None].expand(4, 2)
    t = torch.tensor([3, 3, 7, 12])
    _, log_var = diffusion._reverse_params(lambda x, s: torch.cat([x, v], 1), xt, t)
    frac = (v + 1) / 2
    expected = (
        frac * BETAS[t - 1].log()[:, None]
        + (1 - frac) * schedule.posterior_variances[t].log()[:, None]
    )
    torch.testing.assert_close(log_var, expected)
