import io
import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine

from sandflow import flows
from sandflow.bijectors import ActNorm, ShapeError
from sandflow.testing import perturb

BUILDERS = {
    "nice": lambda: flows.nice(4, hidden=(16,)),
    "realnvp": lambda: flows.realnvp(4, layers=4, hidden=(16,)),
    "realnvp_context": lambda: flows.realnvp(4, layers=4, hidden=(16,), context=3),
    "glow": lambda: flows.glow((1, 8, 8), levels=2, steps=2, hidden=8),
}


def _data_and_context(flow, batch=6):
    x = torch.randn(batch, *flow.shape)
    context = torch.randn(batch, flow.context_features) if flow.context_features else None
    return x, context


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_gradients_reach_every_parameter(name):
    flow = perturb(BUILDERS[name](), scale=0.1)
    x, context = _data_and_context(flow)
    flow(context).log_prob(x).mean().backward()
    missing = [n for n, p in flow.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_state_dict_round_trip_gives_identical_log_prob(name):
    torch.manual_seed(1)
    flow = BUILDERS[name]()
    x, context = _data_and_context(flow)
    flow(context).log_prob(x)  # ActNorm initialises on this first density pass
    perturb(flow, scale=0.1)
    expected = flow(context).log_prob(x)
    buffer = io.BytesIO()
    torch.save(flow.state_dict(), buffer)
    buffer.seek(0)
    torch.manual_seed(2)
    fresh = BUILDERS[name]()
    fresh.load_state_dict(torch.load(buffer))
    assert torch.equal(fresh(context).log_prob(x), expected)


def test_loaded_actnorm_is_not_reinitialised():
    flow = flows.glow((1, 4, 4), levels=1, steps=1, hidden=8)
    flow().log_prob(torch.rand(16, 1, 4, 4))
    state = flow.state_dict()
    fresh = flows.glow((1, 4, 4), levels=1, steps=1, hidden=8)
    fresh.load_state_dict(state)
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    fresh().log_prob(10 + torch.randn(16, 1, 4, 4))
    for key, value in fresh.state_dict().items():
        assert torch.equal(value, before[key]), key
    norms = [m for m in fresh.modules() if isinstance(m, ActNorm)]
    assert norms and all(bool(m.initialized) for m in norms)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_to_float64(name):
    flow = perturb(BUILDERS[name](), scale=0.1).to(torch.float64)
    x, context = _data_and_context(flow)
    context = None if context is None else context.double()
    d = flow(context)
    assert d.log_prob(x.double()).dtype == torch.float64
    assert d.sample().dtype == torch.float64


@pytest.mark.parametrize("builder", [flows.nice, flows.realnvp])
def test_density_integrates_to_one(builder):
    torch.manual_seed(3)
    flow = perturb(builder(2, layers=2, hidden=(16,)), scale=0.2).double()
    assert (flow().sample((10000,)).abs() < 10).all()  # the grid holds all the mass
    grid = torch.linspace(-12, 12, 801, dtype=torch.float64)
    xx, yy = torch.meshgrid(grid, grid, indexing="ij")
    points = torch.stack([xx, yy], -1).reshape(-1, 2)
    with torch.no_grad():
        density = flow().log_prob(points).exp()
    cell = (grid[1] - grid[0]) ** 2
    assert density.sum().item() * cell == pytest.approx(1.0, abs=5e-3)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_rsample_and_log_prob_matches_log_prob(name):
    flow = perturb(BUILDERS[name](), scale=0.1).double()
    x, context = _data_and_context(flow)
    d = flow(None if context is None else context.double())
    sample, log_prob = d.rsample_and_log_prob((3,))
    assert sample.shape == (3, *d.batch_shape, *d.event_shape)
    torch.testing.assert_close(log_prob, d.log_prob(sample))


def test_conditional_flow_shapes():
    flow = flows.realnvp(2, layers=2, hidden=(8,), context=3)
    context = torch.randn(5, 3)
    d = flow(context)
    assert d.batch_shape == (5,) and d.event_shape == (2,)
    assert d.sample((7,)).shape == (7, 5, 2)
    assert d.log_prob(torch.randn(7, 5, 2)).shape == (7, 5)


def test_pyro_model_scores_the_flow_log_density():
    flow = perturb(flows.realnvp(2, layers=2, hidden=(8,)), scale=0.3)
    data = torch.randn(10, 2)

    def model(x):
        pyro.module("flow", flow)
        with pyro.plate("data", len(x)):
            pyro.sample("x", flow(), obs=x)

    trace = poutine.trace(model).get_trace(data)
    trace.compute_log_prob()
    torch.testing.assert_close(trace.nodes["x"]["log_prob"], flow().log_prob(data))
    assert "flow$$$bijector.parts.0.conditioner.0.weight" in pyro.get_param_store()


def test_torch_transformed_distribution_agrees():
    flow = perturb(flows.realnvp(3, layers=3, hidden=(8,)), scale=0.3).double()
    x = torch.randn(4, 3, dtype=torch.float64)
    generic = dist.TransformedDistribution(flow.base, [flow.bijector])
    torch.testing.assert_close(generic.log_prob(x), flow().log_prob(x))


def test_standard_normal_at_initialisation():
    x = torch.randn(5, 4)
    expected = dist.Normal(0.0, 1.0).log_prob(x).sum(-1)
    torch.testing.assert_close(flows.realnvp(4)().log_prob(x), expected)
    assert math.isfinite(flows.nice(4)().log_prob(x).sum().item())


# -- bad input -------------------------------------------------------------------------------


def test_wrong_event_shape_is_named():
    flow = flows.realnvp(4, layers=2, hidden=(8,))
    with pytest.raises(ValueError, match="event_shape"):
        flow().log_prob(torch.randn(2, 3))
    with pytest.raises(ShapeError, match="built for 4 features .* got shape \\(2, 3\\)"):
        flow.bijector.inverse_and_log_det(torch.randn(2, 3))


def test_wrong_context_size_is_named():
    flow = flows.realnvp(2, layers=2, hidden=(8,), context=3)
    with pytest.raises(ShapeError, match="context with 3 features"):
        flow(torch.randn(5, 4))
    with pytest.raises(ValueError, match="conditional"):
        flow()
    with pytest.raises(ValueError, match="without context"):
        flows.realnvp(2)(torch.randn(3))


def test_nan_with_validate_args_is_named():
    flow = flows.realnvp(2, layers=2, hidden=(8,))
    x = torch.tensor([[0.0, float("nan")]])
    with pytest.raises(ValueError, match=r"value contains NaN or infinite values \(1 of 2\)"):
        flow().__class__(flow.base, flow.bijector, validate_args=True).log_prob(x)


def test_glow_rejects_odd_sizes():
    with pytest.raises(ValueError, match="divisible by 4"):
        flows.glow((1, 6, 6), levels=2)


@pytest.mark.slow
def test_torch_compile_gives_the_same_log_prob():
    flow = perturb(flows.realnvp(4, layers=4, hidden=(16,)), scale=0.1)
    x = torch.randn(8, 4)
    compiled = torch.compile(lambda data: flow().log_prob(data))
    torch.testing.assert_close(compiled(x), flow().log_prob(x))


def test_temperature_scales_the_base_and_must_be_positive():
    flow = flows.realnvp(2, layers=2, hidden=(8,))
    assert flow(temperature=0.5).sample((4000,)).std().item() == pytest.approx(0.5, rel=0.1)
    with pytest.raises(ValueError, match="temperature must be positive"):
        flow(temperature=0.0)
