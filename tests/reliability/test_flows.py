"""Bad input into flows and their distributions: dtype, device, NaN, empty batches, NaN weights."""

import math
import warnings

import pyro
import pyro.distributions as dist
import pytest
import torch

from sandflow import flows
from sandflow.bijectors import Affine, Chain, ShapeError
from sandflow.distributions import TransformedDistribution
from sandflow.testing import perturb
from tests.builders import FLOWS

# an adaptive ODE solve is slow and fails inside torchdiffeq on a NaN state
DISCRETE = sorted(set(FLOWS) - {"cnf"})


def _flow(name):
    flow = perturb(FLOWS[name](), scale=0.1)  # marks ActNorm initialised
    return flow


def _data(flow, n=4, dtype=torch.float32):
    return torch.rand(n, *flow.shape, dtype=dtype) - 0.5


def _dist(flow, n=4, context_dtype=torch.float32, device="cpu"):
    if not flow.context_features:
        return flow()
    return flow(torch.randn(n, flow.context_features, dtype=context_dtype, device=device))


# -- §6: dtype and device, once per public entry point -----------------------------------------


@pytest.mark.parametrize("name", sorted(FLOWS))
def test_float64_data_into_a_float32_flow_names_the_dtypes(name):
    flow = _flow(name)
    with pytest.raises(
        TypeError, match=r"value has dtype torch.float64, but the bijector's parameters have dtype"
    ):
        _dist(flow).log_prob(_data(flow, dtype=torch.float64))
    if isinstance(flow.bijector, Chain):
        with pytest.raises(TypeError, match=r"the Chain's input has dtype torch.float64"):
            flow.bijector.inverse_and_log_det(_data(flow, dtype=torch.float64))


@pytest.mark.parametrize("name", sorted(FLOWS))
def test_data_on_another_device_names_the_devices(name):
    flow = _flow(name)
    x = _data(flow).to("meta")  # stands in for another device
    with pytest.raises(ValueError, match=r"value is on device meta, but the bijector's .* on cpu"):
        _dist(flow).log_prob(x)
    if isinstance(flow.bijector, Chain):
        with pytest.raises(ValueError, match=r"the Chain's input is on device meta"):
            flow.bijector.forward_and_log_det(x)


@pytest.mark.parametrize("name", [n for n in sorted(FLOWS) if n.endswith("context")])
def test_a_context_in_another_dtype_or_on_another_device_is_named(name):
    flow = _flow(name)
    with pytest.raises(TypeError, match=r"context has dtype torch.float64, but the flow's"):
        _dist(flow, context_dtype=torch.float64)
    with pytest.raises(ValueError, match=r"context is on device meta, but the flow's .* on cpu"):
        _dist(flow, device="meta")
    with pytest.raises(TypeError, match=r"context has dtype torch.float64, but the bijector's"):
        flow.bijector.forward_and_log_det(_data(flow), torch.zeros(4, 2, dtype=torch.float64))
    with pytest.raises(TypeError, match=r"context must be a floating-point tensor, got dtype"):
        flow(torch.zeros(4, 2, dtype=torch.long))
    with pytest.raises(ShapeError, match=r"^Chain expects a context with 2 features .* \(4, 5\)"):
        flow.bijector.inverse_and_log_det(_data(flow), torch.zeros(4, 5))


SAMPLERS = {
    "sample": lambda d: d.sample((2,)),
    "rsample": lambda d: d.rsample((2,)),
    "rsample_and_log_prob": lambda d: d.rsample_and_log_prob((2,)),
    "sample_and_log_prob": lambda d: d.sample_and_log_prob((2,)),
}


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_a_base_in_another_dtype_or_device_is_named_by_every_sampler(sampler):
    bijector = flows.realnvp(3, layers=2, hidden=(8,)).bijector.double()
    base = dist.Normal(torch.zeros(3), 1.0).to_event(1)
    with pytest.raises(
        TypeError, match=r"the base distribution's sample has dtype torch.float32, but the bij"
    ):
        SAMPLERS[sampler](TransformedDistribution(base, bijector))
    base = dist.Normal(torch.zeros(3, device="meta"), 1.0, validate_args=False).to_event(1)
    with pytest.raises(ValueError, match=r"the base distribution's sample is on device meta"):
        SAMPLERS[sampler](TransformedDistribution(base, bijector.float()))


# -- §3: non-finite values and contexts ---------------------------------------------------------


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("name", DISCRETE)
def test_non_finite_values_are_refused_with_validation(name, value):
    flow = _flow(name)
    x = _data(flow)
    x.view(4, -1)[2, 1] = value
    with pyro.validation_enabled(True):
        with pytest.raises(ValueError, match=r"value contains NaN or infinite values \(1 of"):
            _dist(flow).log_prob(x)
        if flow.context_features:
            context = torch.zeros(4, flow.context_features)
            context[1, 0] = value
            with pytest.raises(ValueError, match=r"context contains NaN or infinite values"):
                flow(context)


@pytest.mark.parametrize("name", DISCRETE)
def test_without_validation_nan_in_gives_nan_out_row_by_row(name):
    flow = _flow(name)
    x = _data(flow)
    x.view(4, -1)[2, 1] = math.nan
    with pyro.validation_enabled(False):
        log_prob = _dist(flow).log_prob(x)
        assert torch.isnan(log_prob[2]) and torch.isfinite(log_prob[[0, 1, 3]]).all()
        if flow.context_features:
            context = torch.zeros(4, flow.context_features)
            context[1, 0] = math.nan
            log_prob = flow(context).log_prob(_data(flow))
            assert torch.isnan(log_prob[1]) and torch.isfinite(log_prob[[0, 2, 3]]).all()


# -- §2: a flow with NaN weights never looks like a normal result -------------------------------


@pytest.mark.parametrize("name", DISCRETE)
def test_nan_parameters_are_named_with_validation_and_nan_without(name):
    flow = _flow(name)
    with torch.no_grad():
        next(p for p in flow.parameters() if p.dim() > 1).view(-1)[0] = math.nan
    with pyro.validation_enabled(True):
        d = _dist(flow)
        message = r"is NaN or infinite for \d+ of \d+ entries from finite input: 1 of the bij"
        with pytest.raises(ValueError, match="log_prob " + message):
            d.log_prob(_data(flow))
        with pytest.raises(ValueError, match="the sample " + message):
            d.rsample_and_log_prob((4,) if not flow.context_features else ())
        with pytest.raises(ValueError, match="lower the learning rate or clip the gradients"):
            d.sample()
    with pyro.validation_enabled(False):
        assert torch.isnan(_dist(flow).log_prob(_data(flow))).any()


def test_an_overflowing_map_with_finite_parameters_says_so():
    base = dist.Normal(torch.zeros(2), 1.0).to_event(1)
    d = TransformedDistribution(base, Affine(0.0, 1e-30), validate_args=True)
    with pytest.raises(ValueError, match=r"the parameters are finite, so the map overflowed"):
        d.log_prob(torch.full((3, 2), 1e10))


# -- §6: empty batches give empty results --------------------------------------------------------


@pytest.mark.parametrize("validate", [True, False])
@pytest.mark.parametrize("name", sorted(FLOWS))
def test_empty_batches_give_empty_results(name, validate):
    flow = _flow(name)
    with pyro.validation_enabled(validate):
        d = _dist(flow, n=0)
        assert d.log_prob(_data(flow, n=0)).shape == (0,)
        shape = () if flow.context_features else (0,)
        sample, log_prob = d.rsample_and_log_prob(shape)
        assert sample.shape == (0, *flow.shape) and log_prob.shape == (0,)
        assert d.sample(shape).shape == (0, *flow.shape)


def test_an_uninitialised_glow_refuses_an_empty_first_batch():
    flow = FLOWS["glow"]()
    with pytest.raises(ValueError, match="ActNorm cannot initialise from an empty batch"):
        flow().log_prob(torch.zeros(0, 1, 4, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degenerate channels of a small first batch
        flow().log_prob(torch.rand(8, 1, 4, 4))
    assert flow().log_prob(torch.zeros(0, 1, 4, 4)).shape == (0,)
