"""Bad input into diffusion and MarkovChain: a clear error naming the problem, or NaN out."""

import math

import pyro.distributions as dist
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from sandflow.diffusion import GaussianDiffusion, NoiseSchedule
from sandflow.distributions.gaussian import discretized_normal_log_prob
from sandflow.distributions.markov_chain import MarkovChain
from sandflow.nn.denoisers import MLPDenoiser

T = 8


def diffusion(**kwargs):
    return GaussianDiffusion(NoiseSchedule.linear(T, 1e-3, 0.2), **kwargs)


def zero_model(xt, t):
    return torch.zeros_like(xt)


def constant_model(value):
    return lambda xt, t: torch.full_like(xt, value)


# every entry point that calls the model, as (name, call(diffusion, model, x0))
MODEL_ENTRIES = {
    "elbo": lambda d, m, x: d.elbo(m, x),
    "bits_per_dim": lambda d, m, x: d.bits_per_dim(m, x),
    "loss": lambda d, m, x: d.loss(m, x),
    "loss_elbo": lambda d, m, x: d.loss(m, x, weighting="elbo"),
    "sample": lambda d, m, x: d.sample(m, tuple(x.shape)),
    "sample_ddim": lambda d, m, x: d.sample(m, tuple(x.shape), "ddim", steps=4),
    "reverse_step": lambda d, m, x: d.reverse_step(m, x, 3),
    "reverse_process": lambda d, m, x: d.reverse_process(m, x.shape[1:]).sample((len(x),)),
}
# every entry point that takes data, with or without a model
DATA_ENTRIES = {
    **{k: v for k, v in MODEL_ENTRIES.items() if not k.startswith(("sample", "reverse_p"))},
    "marginal": lambda d, m, x: d.marginal(x, 2),
    "posterior": lambda d, m, x: d.posterior(x, x, 2),
    "forward_process": lambda d, m, x: d.forward_process(x),
}


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("entry", sorted(MODEL_ENTRIES))
def test_non_finite_model_output_is_refused_with_validation(entry, value):
    with pytest.raises(ValueError, match=r"model\(xt, t\) returned NaN or infinite values at t ="):
        MODEL_ENTRIES[entry](
            diffusion(validate_args=True), constant_model(value), torch.zeros(3, 2)
        )


@given(
    n=st.integers(1, 6),
    row=st.integers(0, 5),
    col=st.integers(0, 1),
    value=st.sampled_from([math.nan, math.inf, -math.inf]),
)
def test_without_validation_nan_in_gives_nan_out(dtype, n, row, col, value):
    row = row % n
    d = diffusion(validate_args=False)
    x0 = torch.randn(n, 2, dtype=dtype).clamp(-1, 1)
    x0[row, col] = value

    def model(xt, t):  # a network sees its input: NaN or inf in x_t reaches the output
        return 0.5 * xt

    total = d.elbo(model, x0).total
    assert not torch.isfinite(total[row])
    assert torch.isfinite(total[torch.arange(n) != row]).all()
    for weighting in ("simple", "elbo"):
        assert not torch.isfinite(d.loss(model, x0, weighting))
    # a model that outputs NaN: every objective and every sample is NaN, never a number
    nan_model, finite = constant_model(math.nan), torch.zeros(n, 2, dtype=dtype)
    assert torch.isnan(d.elbo(nan_model, finite).total).all()
    assert torch.isnan(d.loss(nan_model, finite, weighting="elbo"))
    assert torch.isnan(d.sample(nan_model, (n, 2))).all()


@pytest.mark.parametrize(
    ("output", "match"),
    [
        (lambda xt: (xt, xt), r"of shape \(\d+, 2\), got tuple"),
        (lambda xt: [xt], "got list"),
        (lambda xt: None, "got NoneType"),
        (lambda xt: xt.numpy(), "got ndarray"),
    ],
)
@pytest.mark.parametrize("entry", sorted(MODEL_ENTRIES))
def test_model_returning_a_non_tensor_is_a_type_error(entry, output, match):
    with pytest.raises(TypeError, match=rf"model\(xt, t\) must return a tensor .*{match}"):
        MODEL_ENTRIES[entry](diffusion(), lambda xt, t: output(xt), torch.zeros(3, 2))


def test_empty_batches_give_empty_results_and_a_loss_refuses_them():
    d, net = diffusion(), MLPDenoiser(2, hidden=(8,))
    x0 = torch.zeros(0, 2)
    out = d.elbo(net, x0)
    assert out.total.shape == (0,) and out.denoising.shape == (0, T - 1)
    assert d.bits_per_dim(net, x0).shape == (0,)
    assert d.sample(net, (0, 2)).shape == (0, 2)
    assert d.sample(net, (0, 2), trajectory=True).shape == (0, T + 1, 2)
    assert d.marginal(x0, 3).mean.shape == (0, 2)
    traj = d.forward_process(x0).sample()
    assert traj.shape == (0, T + 1, 2) and d.forward_process(x0).log_prob(traj).shape == (0,)
    # a mean over no examples is undefined: the loss says so
    with pytest.raises(ValueError, match=r"loss needs at least one example: x0 has shape \(0, 2\)"):
        d.loss(net, x0)


def test_markov_chain_empty_batches_are_consistent():
    chain = MarkovChain(dist.Normal(torch.zeros(0), 1.0), lambda t, z: dist.Normal(z, 1.0), 3)
    z = chain.sample((2,))
    assert z.shape == (2, 0, 4) and chain.log_prob(z).shape == (2, 0)
    chain = MarkovChain(dist.Normal(0.0, 1.0), lambda t, z: dist.Normal(z, 1.0), 3)
    z = chain.sample((0,))
    assert z.shape == (0, 4) and chain.log_prob(z).shape == (0,)


@pytest.mark.parametrize("returned", [torch.zeros(()), 0.5, None, (dist.Normal(0.0, 1.0),)])
@pytest.mark.parametrize("call", ["sample", "rsample", "log_prob", "log_prob_looped"])
def test_markov_chain_transition_returning_a_non_distribution(returned, call):
    looped = call == "log_prob_looped"
    chain = MarkovChain(dist.Normal(0.0, 1.0), lambda t, z: returned, 3, vectorized=not looped)
    with pytest.raises(
        TypeError, match=r"transition\(t, z_prev\) must return a torch Distribution"
    ):
        if call.startswith("log_prob"):
            chain.log_prob(torch.zeros(2, 4))
        else:
            getattr(chain, call)((2,))
    with pytest.raises(TypeError, match="transition must be a callable"):
        MarkovChain(dist.Normal(0.0, 1.0), returned, 3)


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (
            lambda: NoiseSchedule.cosine(10, offset=-1),
            r"offset must be a finite float in \[0, inf\), got -1",
        ),
        (lambda: NoiseSchedule.cosine(10, offset=math.nan), "offset must be a finite float"),
        (lambda: NoiseSchedule.cosine(10, offset=math.inf), "offset must be a finite float"),
        (lambda: NoiseSchedule.cosine(10, offset="0.1"), "offset must be a finite float"),
        (
            lambda: NoiseSchedule.cosine(10, max_beta=1.0),
            r"max_beta must be a finite float in \(0, 1\)",
        ),
        (lambda: NoiseSchedule.cosine(10, max_beta=0.0), "max_beta must be a finite float"),
        (lambda: NoiseSchedule.cosine(10, max_beta=True), "max_beta must be a finite float"),
        (
            lambda: NoiseSchedule.linear(10, beta_start=-0.1),
            r"beta_start must be a finite float in \(0, 1\)",
        ),
        (
            lambda: NoiseSchedule.linear(10, beta_start=math.nan),
            "beta_start must be a finite float",
        ),
        (lambda: NoiseSchedule.linear(10, beta_end=1.5), "beta_end must be a finite float"),
        (lambda: NoiseSchedule.linear(10, beta_end=math.inf), "beta_end must be a finite float"),
    ],
)
def test_schedule_constructor_arguments_are_named(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_schedule_of_something_else_is_a_type_error():
    with pytest.raises(TypeError, match="betas must be a tensor or a sequence of floats, got str"):
        NoiseSchedule("0.1 0.2")
    with pytest.raises(TypeError, match="schedule must be a NoiseSchedule, got list"):
        GaussianDiffusion([0.1, 0.2])


@given(
    T=st.integers(1, 300),
    offset=st.floats(0.0, 10.0),
    max_beta=st.floats(1e-6, 0.999999, exclude_max=True),
)
def test_every_valid_cosine_schedule_is_finite_and_ordered(T, offset, max_beta):
    s = NoiseSchedule.cosine(T, offset=offset, max_beta=max_beta)
    betas = s.betas[1:]
    assert torch.isfinite(betas).all() and (betas > 0).all() and (betas <= max_beta).all()
    assert (s.alpha_bars[1:] < s.alpha_bars[:-1]).all() and s.alpha_bars[-1] > 0
    torch.testing.assert_close(s.alpha_bars_prev[1:], s.alpha_bars[:-1], rtol=0, atol=0)


@given(
    value=st.floats(1.0, 1e4, exclude_min=True, width=32) | st.sampled_from([math.inf]),
    sign=st.sampled_from([-1.0, 1.0]),
    entry=st.sampled_from(["elbo", "bits_per_dim", "loss", "loss_elbo", "marginal"]),
)
def test_discretized_decoder_refuses_data_outside_minus_one_to_one(value, sign, entry):
    d = diffusion(decoder="discretized", grid_points=17, validate_args=False)
    x0 = torch.linspace(-1, 1, 17).repeat(2, 1)
    DATA_ENTRIES[entry](d, zero_model, x0)  # the grid itself is fine
    x0[1, 3] = sign * value
    with pytest.raises(ValueError, match=r"x0 must lie in \[-1, 1\] for decoder='discretized'"):
        DATA_ENTRIES[entry](d, zero_model, x0)


def test_noised_states_of_a_discretized_diffusion_may_leave_minus_one_to_one():
    d = diffusion(decoder="discretized", grid_points=17)
    assert d.sample(zero_model, (64, 2), trajectory=True).abs().max() > 1
    xt = torch.full((3, 2), 3.0)
    assert d.reverse_step(zero_model, xt, 4).sample().shape == (3, 2)
    assert d.posterior(torch.zeros(3, 2), xt, 4).mean.shape == (3, 2)


def test_grey_levels_instead_of_the_grid_are_refused():
    d = diffusion(decoder="discretized", grid_points=17)
    levels = torch.arange(17.0).repeat(4, 1)  # 0..16, not mapped to [-1, 1]
    with pytest.raises(ValueError, match=r"got values from 0 to 16; map grey levels"):
        d.elbo(zero_model, levels)


@given(
    loc=st.floats(-1e4, 1e4),
    log_scale=st.floats(math.log(1e-4), math.log(1e2)),
    grid_points=st.sampled_from([2, 17, 256]),
)
def test_discretized_decoder_is_a_finite_log_probability_far_in_the_tails(
    dtype, loc, log_scale, grid_points
):
    grid = torch.linspace(-1, 1, grid_points, dtype=dtype)
    loc_ = torch.full_like(grid, loc)
    scale = torch.full_like(grid, math.exp(log_scale))
    lp = discretized_normal_log_prob(grid, loc_, scale, grid_points)
    assert torch.isfinite(lp).all() and (lp <= 0).all()
    # the masses of the grid sum to one where they are representable
    total = torch.logsumexp(lp.double(), 0).exp().item()
    assert total == pytest.approx(1.0, abs=1e-4 if dtype == torch.float32 else 1e-9)


@pytest.mark.parametrize("entry", sorted(set(DATA_ENTRIES) & set(MODEL_ENTRIES)))
def test_float64_data_into_a_float32_model_names_the_dtypes(entry):
    x0 = torch.zeros(3, 2, dtype=torch.float64)
    with pytest.raises(TypeError, match=r"has dtype torch.float64, but the model's parameters"):
        DATA_ENTRIES[entry](diffusion(), MLPDenoiser(2, hidden=(8,)), x0)


@pytest.mark.parametrize("entry", ["sample", "reverse_process"])
def test_sampling_from_a_float64_model_in_the_float32_default_names_the_dtypes(entry):
    net = MLPDenoiser(2, hidden=(8,)).double()
    with pytest.raises(
        TypeError, match=r"x_T \(drawn in the default dtype\) has dtype torch.float32"
    ):
        MODEL_ENTRIES[entry](diffusion(), net, torch.zeros(3, 2))


@pytest.mark.parametrize("entry", sorted(DATA_ENTRIES))
def test_data_on_another_device_names_the_devices(entry):
    x0 = torch.zeros(3, 2, device="meta")  # stands in for another device
    with pytest.raises(ValueError, match=r"is on device meta, but the diffusion's coefficients"):
        DATA_ENTRIES[entry](diffusion(), MLPDenoiser(2, hidden=(8,)), x0)


@pytest.mark.parametrize("entry", ["elbo", "loss", "sample", "reverse_step"])
def test_model_on_another_device_names_the_devices(entry):
    net = MLPDenoiser(2, hidden=(8,)).to("meta")
    with pytest.raises(ValueError, match=r"on device cpu, but the model's parameters are on meta"):
        MODEL_ENTRIES[entry](diffusion(), net, torch.zeros(3, 2))


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda d: d.elbo(zero_model, torch.zeros(2, 1), 1.5),
            TypeError,
            "steps_per_call must be an int",
        ),
        (
            lambda d: d.loss(zero_model, torch.zeros(2, 1), vlb_weight=-1.0),
            ValueError,
            "vlb_weight must be",
        ),
        (
            lambda d: d.loss(zero_model, torch.zeros(2, 1), vlb_weight=math.nan),
            ValueError,
            "vlb_weight must be",
        ),
        (lambda d: d.sample(zero_model, (-1, 2)), ValueError, r"shape must be \(n, \*event\)"),
        (lambda d: d.sample(zero_model, ()), ValueError, r"shape must be \(n, \*event\)"),
        (
            lambda d: d.elbo(zero_model, torch.zeros(3, dtype=torch.long)),
            TypeError,
            "x0 must be a floating-point",
        ),
        (lambda d: d.loss(zero_model, [[0.0, 1.0]]), TypeError, "x0 must be a tensor"),
        (lambda d: d.elbo(zero_model, torch.tensor(0.5)), ValueError, "x0 must have shape"),
        (
            lambda d: GaussianDiffusion(d.schedule, validate_args="yes"),
            TypeError,
            "validate_args must be",
        ),
    ],
)
def test_bad_arguments_of_the_objectives_are_named(call, error, match):
    with pytest.raises(error, match=match):
        call(diffusion())


def test_non_finite_data_is_refused_with_validation():
    x0 = torch.zeros(3, 2)
    x0[1, 0] = math.nan
    for entry in ("elbo", "loss", "marginal"):
        with pytest.raises(ValueError, match=r"x0 contains NaN or infinite values \(1 of 6\)"):
            DATA_ENTRIES[entry](diffusion(validate_args=True), zero_model, x0)
