import math

import pytest
import torch

from sandflow.diffusion import GaussianDiffusion, NoiseSchedule
from sandflow.distributions.markov_chain import MarkovChain

T = 20
BETAS = torch.linspace(0.01, 0.3, T, dtype=torch.float64)


@pytest.fixture
def diffusion():
    return GaussianDiffusion(NoiseSchedule(BETAS))


def zero_model(xt, t):
    return torch.zeros_like(xt)


def test_schedule_is_held_as_float64_buffers_and_cast_on_use(diffusion):
    buffers = dict(diffusion.named_buffers())
    assert buffers["alpha_bars"].dtype == torch.float64
    assert buffers["betas"].shape == (T + 1,)
    assert diffusion.state_dict() == {}  # configuration, rebuilt by the constructor
    x32, x64 = torch.randn(3, 2), torch.randn(3, 2, dtype=torch.float64)
    assert diffusion.marginal(x32, 5).mean.dtype == torch.float32
    assert diffusion.marginal(x64, 5).mean.dtype == torch.float64


@pytest.mark.parametrize("t", [1, 2, 7, T])
def test_marginal_composes_t_one_step_gaussians(diffusion, t):
    x0 = torch.randn(4, 3, dtype=torch.float64)
    mean, var = x0.clone(), torch.zeros(())
    for s in range(1, t + 1):  # x_s = sqrt(1 - b) x_{s-1} + sqrt(b) eps
        b = BETAS[s - 1]
        mean, var = (1 - b).sqrt() * mean, (1 - b) * var + b
    q = diffusion.marginal(x0, t)
    torch.testing.assert_close(q.mean, mean)
    torch.testing.assert_close(q.variance, var.expand_as(x0))


@pytest.mark.parametrize("t", [2, 3, 11, T])
def test_posterior_is_gaussian_conditioning(diffusion, t):
    x0, xt = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    abar_prev = torch.prod(1 - BETAS[: t - 1])
    b = BETAS[t - 1]
    # prior x_{t-1} | x_0 ~ N(sqrt(abar_prev) x0, 1 - abar_prev); likelihood x_t | x_{t-1}
    precision = 1 / (1 - abar_prev) + (1 - b) / b
    mean = (abar_prev.sqrt() * x0 / (1 - abar_prev) + (1 - b).sqrt() * xt / b) / precision
    q = diffusion.posterior(x0, xt, t)
    torch.testing.assert_close(q.mean, mean)
    torch.testing.assert_close(q.variance, (1 / precision).expand_as(x0))


def test_posterior_at_t1_is_the_data(diffusion):
    x0, x1 = torch.randn(4, 3), torch.randn(4, 3)
    q = diffusion.posterior(x0, x1, 1)
    torch.testing.assert_close(q.mean, x0)
    assert (q.variance == 0).all()


def test_timesteps_as_a_batch_tensor(diffusion):
    x0 = torch.randn(3, 2)
    t = torch.tensor([1, 5, 20])
    q = diffusion.marginal(x0, t)
    for i in range(3):
        torch.testing.assert_close(q.mean[i], diffusion.marginal(x0[i : i + 1], int(t[i])).mean[0])


def test_forward_process_log_prob_is_the_sum_of_transitions(diffusion):
    x0 = torch.randn(5, 2, 3)
    chain = diffusion.forward_process(x0)
    assert isinstance(chain, MarkovChain)
    assert chain.batch_shape == (5,) and chain.event_shape == (T + 1, 2, 3)
    traj = chain.sample()
    assert traj.shape == (5, T + 1, 2, 3)
    assert torch.equal(traj[:, 0], x0)
    expected = torch.zeros(5, dtype=torch.float64)
    for t in range(1, T + 1):
        b = BETAS[t - 1]
        z = (traj[:, t].double() - (1 - b).sqrt() * traj[:, t - 1].double()) / b.sqrt()
        expected += (-0.5 * z**2 - 0.5 * torch.log(2 * math.pi * b)).sum((1, 2))
    torch.testing.assert_close(chain.log_prob(traj).double(), expected, rtol=1e-5, atol=1e-3)


def test_forward_process_matches_the_marginals(diffusion):
    x0 = torch.tensor([[1.5, -0.5]]).expand(20_000, 2)
    traj = diffusion.forward_process(x0).sample()
    for t in (1, 10, T):
        q = diffusion.marginal(x0[:1], t)
        torch.testing.assert_close(traj[:, t].mean(0), q.mean[0], atol=0.03, rtol=0)
        torch.testing.assert_close(traj[:, t].var(0), q.variance[0], atol=0.02, rtol=0.05)


def test_reverse_process_is_a_chain_from_noise_to_data(diffusion):
    calls = []

    def model(xt, t):
        calls.append(t)
        return 0.1 * xt

    chain = diffusion.reverse_process(model, (3,))
    traj = chain.sample((4,))
    assert traj.shape == (4, T + 1, 3)
    assert [int(c[0]) for c in calls] == list(range(T, 0, -1))  # x_T first
    calls.clear()
    lp = chain.log_prob(traj)
    assert len(calls) == 1 and calls[0].shape == (T * 4,)  # one network call for all steps
    expected = torch.distributions.Normal(0.0, 1.0).log_prob(traj[:, 0]).sum(-1)
    for k in range(1, T + 1):
        step = diffusion.reverse_step(model, traj[:, k - 1], T + 1 - k)
        expected += step.log_prob(traj[:, k]).sum(-1)
    torch.testing.assert_close(lp, expected, rtol=1e-5, atol=1e-4)


def test_reverse_step_uses_the_t1_variance_convention():
    schedule = NoiseSchedule(BETAS)
    x = torch.randn(2, 3)
    post = schedule.posterior_variances
    small = GaussianDiffusion(schedule, reverse_variance="posterior").reverse_step(zero_model, x, 1)
    large = GaussianDiffusion(schedule, reverse_variance="beta").reverse_step(zero_model, x, 1)
    assert small.variance[0, 0].item() == pytest.approx(post[2].item(), rel=1e-6)
    assert large.variance[0, 0].item() == pytest.approx(BETAS[0].item(), rel=1e-6)
    mid = GaussianDiffusion(schedule, reverse_variance="posterior").reverse_step(zero_model, x, 9)
    assert mid.variance[0, 0].item() == pytest.approx(post[9].item(), rel=1e-6)


def test_discretized_decoder_in_the_reverse_process():
    diffusion = GaussianDiffusion(NoiseSchedule(BETAS), decoder="discretized", grid_points=5)
    chain = diffusion.reverse_process(zero_model, (6,))
    traj = chain.sample((3,))
    assert torch.isin(traj[:, -1], torch.linspace(-1, 1, 5)).all()  # x_0 on the grid
    assert not torch.isin(traj[:, -2], torch.linspace(-1, 1, 5)).all()
    assert torch.isfinite(chain.log_prob(traj)).all()


def test_respace_calls_the_model_with_the_original_timesteps(diffusion):
    seen = []
    short = diffusion.respace(5)
    short.reverse_step(lambda xt, t: seen.append(t) or torch.zeros_like(xt), torch.zeros(2, 1), 5)
    short.reverse_step(lambda xt, t: seen.append(t) or torch.zeros_like(xt), torch.zeros(2, 1), 2)
    assert [int(s[0]) for s in seen] == [T, 6]
    assert short.alpha_bars[2].item() == pytest.approx(diffusion.alpha_bars[6].item())


@pytest.mark.parametrize(
    ("t", "error", "match"),
    [
        (0, ValueError, r"timesteps must lie in 1..T = 1..20, got values from 0 to 0"),
        (T + 1, ValueError, "got values from 21 to 21"),
        (torch.tensor([1, 2, 0]), ValueError, "got values from 0 to 2"),
        (torch.tensor([1.0, 2.0, 3.0]), TypeError, "timesteps must be an int or a long tensor"),
        (torch.tensor([1, 2]), ValueError, r"timesteps must have shape \(batch,\) = \(3,\)"),
    ],
)
def test_bad_timesteps_are_named(diffusion, t, error, match):
    x = torch.zeros(3, 2)
    with pytest.raises(error, match=match):
        diffusion.marginal(x, t)
    with pytest.raises(error, match=match):
        diffusion.posterior(x, x, t)


def test_model_output_shape_is_checked(diffusion):
    x = torch.zeros(3, 2)
    with pytest.raises(ValueError, match=r"returned shape \(3, 4\) .* the shape of xt"):
        diffusion.reverse_step(lambda xt, t: torch.zeros(3, 4), x, 3)
    learned = GaussianDiffusion(NoiseSchedule(BETAS), reverse_variance="learned")
    with pytest.raises(ValueError, match=r"must return \(3, 4\): twice the channels"):
        learned.reverse_step(zero_model, x, 3)
    with pytest.raises(ValueError, match="returned shape"):
        diffusion.elbo(lambda xt, t: xt[:, :1], x)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"parameterization": "score"}, "parameterization must be one of 'eps', 'x0', 'v'"),
        ({"reverse_variance": "small"}, "reverse_variance must be one of"),
        ({"decoder": "bernoulli"}, "decoder must be one of 'gaussian', 'discretized'"),
        ({"grid_points": 1}, "grid_points must be an int >= 2"),
    ],
)
def test_bad_options_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GaussianDiffusion(NoiseSchedule(BETAS), **kwargs)
