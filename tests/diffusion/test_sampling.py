import pytest
import torch

from sandflow.diffusion import GaussianDiffusion, NoiseSchedule

N = 16_000  # 32,000 values: below torch's grain for multithreading tiny ops


@pytest.fixture(scope="module")
def setup():
    schedule = NoiseSchedule.cosine(1000)
    return schedule, GaussianDiffusion(schedule, reverse_variance="beta")


@pytest.mark.parametrize("method", ["ancestral", "ddim"])
def test_samples_match_the_gaussian_data(gaussian_case, setup, method):
    schedule, diffusion = setup
    x = diffusion.sample(gaussian_case.optimal(schedule.betas[1:], "eps"), (N, 2), method)
    m, s2 = gaussian_case.m, gaussian_case.s**2
    # standard errors: s / sqrt(N) for the mean, s^2 sqrt(2 / N) for the variance
    torch.testing.assert_close(x.mean(0), m, atol=4 * (s2 / N).sqrt().max().item(), rtol=0)
    torch.testing.assert_close(x.var(0), s2, rtol=0.04, atol=0)


def test_ddim_error_shrinks_with_the_number_of_steps(gaussian_case, setup):
    schedule, diffusion = setup
    model = gaussian_case.optimal(schedule.betas[1:], "eps")
    errors = []
    for steps in (20, 100, 1000):
        torch.manual_seed(0)
        x = diffusion.sample(model, (N, 2), "ddim", steps=steps)
        errors.append((x.var(0) / gaussian_case.s**2 - 1).abs().max().item())
    assert errors[0] > errors[1] > errors[2]
    assert errors[0] > 0.1 and errors[2] < 0.02


def test_parameterizations_sample_the_same_points(gaussian_case):
    schedule = NoiseSchedule.cosine(50)
    samples = []
    for p in ("eps", "x0", "v"):
        torch.manual_seed(5)
        diffusion = GaussianDiffusion(schedule, parameterization=p)
        samples.append(diffusion.sample(gaussian_case.optimal(schedule.betas[1:], p), (100, 2)))
    torch.testing.assert_close(samples[1], samples[0], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(samples[2], samples[0], atol=1e-4, rtol=1e-4)


def test_trajectory_runs_from_noise_to_the_sample(gaussian_case):
    schedule = NoiseSchedule.cosine(100)
    diffusion = GaussianDiffusion(schedule)
    model = gaussian_case.optimal(schedule.betas[1:], "eps")
    torch.manual_seed(2)
    traj = diffusion.sample(model, (5000, 2), "ddim", steps=25, trajectory=True)
    torch.manual_seed(2)
    x = diffusion.sample(model, (5000, 2), "ddim", steps=25)
    assert traj.shape == (5000, 26, 2)
    torch.testing.assert_close(traj[:, -1], x)
    torch.testing.assert_close(traj[:, 0].std(0), torch.ones(2), atol=0.05, rtol=0)


def test_ddim_eta_zero_is_deterministic_and_eta_one_is_stochastic(gaussian_case):
    schedule = NoiseSchedule.cosine(50)
    diffusion = GaussianDiffusion(schedule)
    model = gaussian_case.optimal(schedule.betas[1:], "eps")
    calls = []

    def traced(xt, t):
        calls.append(int(t[0]))
        return model(xt, t)

    torch.manual_seed(0)
    xt = torch.randn(3, 2)
    torch.manual_seed(0)
    a = diffusion.sample(traced, (3, 2), "ddim", steps=10, trajectory=True)
    torch.manual_seed(0)
    b = diffusion.sample(traced, (3, 2), "ddim", steps=10, eta=1.0, trajectory=True)
    assert torch.equal(a[:, 0], xt) and torch.equal(b[:, 0], xt)
    assert not torch.allclose(a[:, -1], b[:, -1])
    taus = diffusion.schedule.respace(10)[1].tolist()
    assert calls[:10] == taus[:0:-1]  # the original timesteps, from T down


def test_learned_variance_sampling_uses_the_interpolated_variance(gaussian_case):
    schedule = NoiseSchedule.cosine(30)
    model = gaussian_case.optimal(schedule.betas[1:], "eps")
    learned = GaussianDiffusion(schedule, reverse_variance="learned")
    torch.manual_seed(4)
    a = learned.sample(lambda xt, t: torch.cat([model(xt, t), torch.ones_like(xt)], 1), (10, 2))
    torch.manual_seed(4)
    b = GaussianDiffusion(schedule, reverse_variance="beta").sample(model, (10, 2))
    torch.testing.assert_close(a, b)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "euler"}, "method must be 'ancestral' or 'ddim'"),
        ({"method": "ddim", "eta": 1.5}, r"eta must lie in \[0, 1\]"),
        ({"eta": 0.5}, "eta is DDIM's noise scale"),
        ({"steps": 11}, r"steps must be an int in 1..T = 1..10"),
    ],
)
def test_bad_sampling_options(kwargs, match):
    diffusion = GaussianDiffusion(NoiseSchedule.linear(10))
    with pytest.raises(ValueError, match=match):
        diffusion.sample(lambda xt, t: xt, (2, 1), **kwargs)
