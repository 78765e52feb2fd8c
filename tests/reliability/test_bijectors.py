"""Bad input and numerical edges of every bijector: a clear error, NaN out, or a right number."""

import math
import re
import warnings

import mpmath
import pyro.distributions as dist
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from sandflow.bijectors import (
    ActNorm,
    Affine,
    AffineCoupling,
    Chain,
    Conv1x1,
    Logit,
    MaskedAutoregressive,
    Planar,
    Radial,
    Reverse,
    ShapeError,
    Sigmoid,
    SplineCoupling,
)
from sandflow.bijectors.checks import reference_tensor
from sandflow.bijectors.spline import rational_quadratic_spline
from sandflow.distributions import TransformedDistribution
from sandflow.testing import domain_inputs
from sandflow.testing.registry import REGISTRY

mpmath.mp.dps = 50


def _build(name, dtype=torch.float64):
    entry = REGISTRY[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ActNorm's first batch may be degenerate here
        return entry.build(dtype=dtype), entry.event_shape


def _inputs(bijector, event_shape, dtype=torch.float64):
    return domain_inputs(bijector, event_shape, batch_shape=(3,), dtype=dtype)


# -- §3: with validation off, NaN in gives NaN out ---------------------------------------------


# an adaptive ODE solver shrinks its step to 0 on a NaN state and fails in torchdiffeq
ADAPTIVE = {"continuous_flow_context": "torchdiffeq: 'underflow in dt 0.0' on a NaN state"}


def _points(bijector, event_shape, direction):
    x = _inputs(bijector, event_shape)
    return bijector(x).detach() if direction == "inverse" else x


@pytest.mark.parametrize("name", sorted(REGISTRY))
@pytest.mark.parametrize("direction", ["forward", "inverse"])
def test_nan_event_gives_nan_out_and_leaves_the_others_alone(name, direction):
    if name in ADAPTIVE:
        pytest.xfail(ADAPTIVE[name])
    bijector, event_shape = _build(name)
    call = getattr(bijector, f"{direction}_and_log_det")
    x = _points(bijector, event_shape, direction)
    _, clean_log_det = call(x)
    other_log_det = call(_points(bijector, event_shape, direction))[1]
    x[1] = math.nan
    y, log_det = call(x)
    assert torch.isnan(y[1]).any()
    assert torch.isfinite(y[[0, 2]]).all()
    torch.testing.assert_close(log_det[[0, 2]], clean_log_det[[0, 2]])
    # a log-det that depends on the input is NaN for a NaN input; a constant one (Affine,
    # ActNorm, Conv1x1, permutations, additive couplings) keeps its exact value
    if not torch.allclose(other_log_det[0], clean_log_det[0]):
        assert torch.isnan(log_det[1])


def test_spline_propagates_nan_into_both_outputs():
    params = torch.randn(4, 11)
    x = torch.tensor([math.nan, 0.3, 50.0, -math.inf])
    for inverse in (False, True):
        y, log_det = rational_quadratic_spline(x, params, inverse=inverse)
        assert torch.isnan(y[0]) and torch.isnan(log_det[0])
        assert y[2] == 50.0 and log_det[2] == 0.0  # the identity tails
        assert y[3] == -math.inf and log_det[3] == 0.0
    layer = SplineCoupling(4, hidden=(8,))
    _, log_det = layer.inverse_and_log_det(torch.full((2, 4), math.nan))
    assert torch.isnan(log_det).all()


# -- §4: Sigmoid and Logit at the edges of (0, 1) ----------------------------------------------


def _sigmoid_log_det_reference(x):
    x = mpmath.mpf(x)
    return float(-mpmath.log1p(mpmath.exp(-x)) - mpmath.log1p(mpmath.exp(x)))


@given(x=st.floats(-1e4, 1e4))
def test_sigmoid_stays_inside_the_open_interval_and_inverts_where_it_can(dtype, x):
    info = torch.finfo(dtype)
    x = torch.tensor([x], dtype=dtype)
    y, log_det = Sigmoid().forward_and_log_det(x)
    assert 0 < y.item() < 1
    reference = _sigmoid_log_det_reference(x.item())
    assert abs(log_det.item() - reference) <= 4 * info.eps * (1 + abs(reference))
    x_back, inverse_log_det = Sigmoid().inverse_and_log_det(y)
    assert math.isfinite(x_back.item()) and math.isfinite(inverse_log_det.item())
    # below log(tiny) the sigmoid is not a normal number: the output is the clamp, tiny
    if x.item() < math.log(info.tiny):
        assert y.item() == info.tiny
        return
    # the round trip is as good as the map's conditioning: an ulp of y over sigmoid'(x)
    xd = x.item()
    slope = math.exp(-abs(xd)) / (1 + math.exp(-abs(xd))) ** 2
    ulp = info.eps * max(y.item(), 1 - y.item() if xd < 0 else 1.0)
    bound = 4 * info.eps * (1 + abs(xd)) + (2 * ulp / slope if slope > 0 else math.inf)
    assert abs(x_back.item() - xd) <= bound


@given(u=st.floats(0.0, 1.0))
def test_logit_sigmoid_round_trip_from_tiny_to_one_minus_eps(dtype, u):
    info = torch.finfo(dtype)
    low, high = math.log(info.tiny), math.log1p(-info.eps)
    y = torch.tensor([math.exp(low + u * (high - low))], dtype=dtype).clamp(info.tiny, 1 - info.eps)
    edges = torch.tensor([info.tiny, 1 - info.eps], dtype=dtype)
    y = torch.cat([y, 1 - y.clamp_min(info.eps), edges])
    x, log_det = Logit().forward_and_log_det(y)
    assert torch.isfinite(x).all() and torch.isfinite(log_det).all()
    y_back, inverse_log_det = Logit().inverse_and_log_det(x)
    # logit then sigmoid: relative error in y of a few eps, times 1 + |x| (1 - y)
    bound = 8 * info.eps * y * (1 + x.abs() * (1 - y))
    assert ((y_back - y).abs() <= bound).all()
    reference = torch.tensor(
        [-float(mpmath.log(v) + mpmath.log1p(-v)) for v in y.tolist()], dtype=torch.float64
    )
    assert ((log_det.double() - reference).abs() <= 4 * info.eps * (1 + reference.abs())).all()
    assert torch.isfinite(inverse_log_det).all()


def test_sigmoid_samples_are_scored():
    base = torch.distributions.Normal(torch.zeros(1), 30.0)
    d = TransformedDistribution(base, Sigmoid(), validate_args=True)
    samples = d.sample((2000,))
    assert ((samples > 0) & (samples < 1)).all()
    assert torch.isfinite(d.log_prob(samples)).all()


# -- §5: Planar and Radial over their whole range ------------------------------------------------


def _planar_with(wu, b, dtype):
    layer = Planar(2).to(dtype)
    w = torch.tensor([0.8, -0.6], dtype=dtype)
    with torch.no_grad():
        layer.w.copy_(w)
        layer.u.copy_(wu * w + 0.5 * torch.tensor([0.6, 0.8], dtype=dtype))
        layer.b.fill_(b)
    return layer


def _planar_log_det_reference(layer, x):
    """log(1 + m sech^2 t) with m = softplus(w u) - 1, at 50 digits, and its slope in t."""
    w, u = (list(map(mpmath.mpf, p.tolist())) for p in (layer.w, layer.u))
    wu = sum(a * c for a, c in zip(w, u, strict=True))
    m = mpmath.log1p(mpmath.exp(wu)) - 1

    def log_det(t):
        return mpmath.log(1 + m * mpmath.sech(t) ** 2)

    t = sum(a * mpmath.mpf(c) for a, c in zip(w, x, strict=True)) + mpmath.mpf(layer.b.item())
    return float(log_det(t)), float(mpmath.diff(log_det, t)), float(abs(t))


@given(
    wu=st.floats(-60.0, 10.0),
    b=st.floats(-3.0, 3.0),
    x=st.lists(st.floats(-1e4, 1e4), min_size=2, max_size=2),
)
def test_planar_log_det_is_finite_and_accurate(dtype, wu, b, x):
    eps = torch.finfo(dtype).eps
    layer = _planar_with(wu, b, dtype)
    points = torch.tensor([x, [-b * 0.8, b * 0.6], [0.0, 0.0]], dtype=dtype)  # w x + b = 0 at [1]
    y, log_det = layer.forward_and_log_det(points)
    assert torch.isfinite(y).all() and torch.isfinite(log_det).all()
    for point, value in zip(points.tolist(), log_det.tolist(), strict=True):
        reference, slope, size = _planar_log_det_reference(layer, point)
        # t = w x + b rounds by eps (|w| |x| + |b|); the log-det moves by its slope in t
        scale = 2 + sum(abs(v) for v in point) + abs(b)
        assert abs(value - reference) <= 16 * eps * (1 + abs(reference) + abs(slope) * scale)
    x_back, inverse_log_det = layer.inverse_and_log_det(y)
    assert torch.isfinite(x_back).all() and torch.isfinite(inverse_log_det).all()


def _radial_with(alpha_raw, beta_raw, dtype):
    layer = Radial(3).to(dtype)
    with torch.no_grad():
        layer.alpha_raw.fill_(alpha_raw)
        layer.beta_raw.fill_(beta_raw)
        layer.center.copy_(torch.tensor([0.3, -0.2, 0.1]))
    return layer


def _radial_reference(layer, x):
    """The log-det at 50 digits (in alpha and beta, as the paper writes it) and d/dr of it."""
    a = mpmath.log1p(mpmath.exp(mpmath.mpf(layer.alpha_raw.item())))
    beta = mpmath.log1p(mpmath.exp(mpmath.mpf(layer.beta_raw.item()))) - a
    offset = [mpmath.mpf(v) - mpmath.mpf(c) for v, c in zip(x, layer.center.tolist(), strict=True)]
    r = mpmath.sqrt(sum(v * v for v in offset))

    def log_det(r):
        return 2 * mpmath.log1p(beta / (a + r)) + mpmath.log1p(a * beta / (a + r) ** 2)

    return float(log_det(r)), float(mpmath.diff(log_det, r))


@given(
    alpha_raw=st.floats(-5.0, 5.0),
    gap=st.floats(-30.0, 5.0),  # beta_raw: softplus(beta_raw) = alpha + beta, down to 1e-13
    radius=st.floats(0.0, 1e4),
)
def test_radial_is_accurate_up_to_its_limit(dtype, alpha_raw, gap, radius):
    eps = torch.finfo(dtype).eps
    layer = _radial_with(alpha_raw, gap, dtype)
    direction = torch.tensor([0.48, 0.6, -0.64], dtype=dtype)
    x = layer.center.detach() + radius * direction
    x = torch.stack([x, layer.center.detach()])
    y, log_det = layer.forward_and_log_det(x)
    x_back, inverse_log_det = layer.inverse_and_log_det(y)
    for values in (y, log_det, x_back, inverse_log_det):
        assert torch.isfinite(values).all()
    # the inverse stretches rounding errors of y by (alpha + r) / (g + r) at most
    alpha, g = (v.item() for v in layer._alpha_gap())
    r = (x - layer.center).norm(dim=-1)
    radial = (alpha + r) ** 2 / (r * (2 * alpha + r) + alpha * g)
    stretch = torch.maximum((alpha + r) / (g + r), radial)
    scale = x.abs().amax(-1) + stretch * (y.abs().amax(-1) + layer.center.abs().max())
    assert ((x_back - x).abs().amax(-1) <= 32 * eps * scale).all()
    # the log-dets are as accurate as the radius they are computed from: |d log-det / dr| dr
    pairs = zip(x.tolist(), log_det.tolist(), inverse_log_det.tolist(), scale.tolist(), strict=True)
    for point, forward, inverse, spread in pairs:
        reference, slope = _radial_reference(layer, point)
        radius = math.dist(point, layer.center.tolist())
        assert abs(forward - reference) <= 16 * eps * (1 + abs(reference) + abs(slope) * radius)
        assert abs(inverse + reference) <= 16 * eps * (1 + abs(reference)) + 32 * eps * abs(
            slope
        ) * (radius + spread)


def test_radial_near_its_limit_in_float32_matches_float64():
    # beta -> -alpha: the old alpha + beta lost 4% here in float32
    layer = _radial_with(2.0, -12.0, torch.float32)
    x = layer.center.detach() + torch.tensor([[1e-4, 0.0, 0.0], [0.01, 0.0, 0.0], [1.0, 0.0, 0.0]])
    log_det32 = layer.forward_and_log_det(x)[1]
    log_det64 = layer.double().forward_and_log_det(x.double())[1]
    torch.testing.assert_close(log_det32.double(), log_det64, rtol=1e-6, atol=1e-6)


# -- §7: Conv1x1 over log|s| in [-8, 8], and past what the dtype holds ------------------------


@given(log_s=st.lists(st.floats(-8.0, 8.0), min_size=3, max_size=3))
def test_conv1x1_log_det_and_inverse_follow_the_conditioning(dtype, log_s):
    eps = torch.finfo(dtype).eps
    conv = Conv1x1(3, event_dim=1).to(dtype)
    with torch.no_grad():
        conv.log_diagonal.copy_(torch.tensor(log_s))
    w = conv.matrix().detach().double()
    x = torch.randn(5, 3, dtype=dtype)
    y, log_det = conv.forward_and_log_det(x)
    # W = P L U rounds to eps of its dtype: its log|det| moves by up to eps cond(W)
    reference = torch.linalg.slogdet(w)[1]
    cond = torch.linalg.cond(w).item()
    tolerance = 8 * eps * (1 + sum(abs(v) for v in log_s) + cond)
    assert abs(log_det[0].item() - reference.item()) <= tolerance
    x_back, inverse_log_det = conv.inverse_and_log_det(y)
    error = (x_back - x).double().norm(dim=-1)
    assert (error <= 16 * eps * cond * x.double().norm(dim=-1)).all()
    torch.testing.assert_close(inverse_log_det, -log_det)


@pytest.mark.parametrize("log_s", [-120.0, 120.0])
def test_conv1x1_diagonal_beyond_the_dtype_keeps_map_and_log_det_consistent(log_s):
    conv = Conv1x1(3, event_dim=1)
    with torch.no_grad():
        conv.log_diagonal[0] = log_s
    y, log_det = conv.inverse_and_log_det(torch.randn(4, 3) * 1e-3)
    assert torch.isfinite(y).all() and torch.isfinite(log_det).all()
    # the log-det is that of the matrix actually applied
    reference = -torch.linalg.slogdet(conv.matrix().detach().double())[1]
    assert abs(log_det[0].item() - reference.item()) < 1e-3


# -- §6 and §7: wrong shapes and bad constructor arguments are named ---------------------------


@pytest.mark.parametrize("direction", ["forward", "inverse"])
@pytest.mark.parametrize(
    ("layer", "x", "match"),
    [
        (lambda: ActNorm(3, event_dim=1), torch.randn(4, 5), r"ActNorm was built for 3 features"),
        (lambda: ActNorm(3), torch.randn(2, 5, 4, 4), r"ActNorm was built for 3 features"),
        (lambda: Conv1x1(3), torch.randn(2, 5, 4, 4), r"Conv1x1 was built for 3 features"),
        (lambda: Planar(3), torch.randn(2, 4), r"Planar was built for 3 features"),
        (lambda: Radial(3), torch.randn(2, 4), r"Radial was built for 3 features"),
        (
            lambda: Affine(torch.zeros(3), torch.ones(3), event_dim=1),
            torch.randn(2, 4),
            r"Affine was built for 3 features",
        ),
    ],
)
def test_wrong_channel_count_is_a_shape_error(layer, x, match, direction):
    bijector = layer()
    with pytest.raises(ShapeError, match=match + ".*got shape " + re.escape(str(tuple(x.shape)))):
        getattr(bijector, f"{direction}_and_log_det")(x)
    if isinstance(bijector, ActNorm):
        assert not bijector.initialized  # refused before any statistics were taken


@pytest.mark.parametrize(
    "layer",
    [
        lambda: AffineCoupling(4, hidden=(8,), context=2),
        lambda: SplineCoupling(4, bins=3, hidden=(8,), context=2),
        lambda: MaskedAutoregressive(4, hidden=(8,), context=2),
        lambda: MaskedAutoregressive(4, hidden=(8,), context=2, iaf=True),
    ],
)
@pytest.mark.parametrize("direction", ["forward", "inverse"])
def test_wrong_context_width_in_a_direct_call_is_named(layer, direction):
    call = getattr(layer(), f"{direction}_and_log_det")
    with pytest.raises(
        ShapeError, match=r"expects a context with 2 features .* got shape \(5, 3\)"
    ):
        call(torch.randn(5, 4), torch.randn(5, 3))
    with pytest.raises(ValueError, match="is conditional"):
        call(torch.randn(5, 4))


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: Planar(-1), "Planar: features must be an int >= 1, got -1"),
        (lambda: Planar(2.5), "Planar: features must be an int >= 1, got 2.5"),
        (lambda: Radial(0), "Radial: features must be an int >= 1, got 0"),
        (lambda: Radial(True), "Radial: features must be an int >= 1, got True"),
        (lambda: Conv1x1(-1), "Conv1x1: channels must be an int >= 1, got -1"),
        (lambda: Conv1x1(2.5), "Conv1x1: channels must be an int >= 1, got 2.5"),
        (lambda: Conv1x1(3, event_dim=0), "Conv1x1: event_dim must be an int >= 1, got 0"),
        (lambda: Sigmoid(event_dim=-1), "event_dim must be an int >= 0, got -1"),
        (lambda: Logit(event_dim=1.5), "event_dim must be an int >= 0, got 1.5"),
        (lambda: Affine(0.0, math.inf), "Affine scale must be finite and non-zero"),
        (lambda: ActNorm(0), "ActNorm: channels must be an int >= 1, got 0"),
        (lambda: ActNorm(2.5), "ActNorm: channels must be an int >= 1, got 2.5"),
        (lambda: Reverse(-1), "Reverse: features must be an int >= 1, got -1"),
        (lambda: AffineCoupling(4, hidden=0), "AffineCoupling: hidden must be an int >= 1, got 0"),
        (
            lambda: SplineCoupling(4, hidden=(8, -3)),
            "SplineCoupling: hidden must be an int >= 1, got -3",
        ),
        (
            lambda: MaskedAutoregressive(3, hidden=(0,)),
            "MaskedAutoregressive: hidden must be an int >= 1, got 0",
        ),
    ],
)
def test_bad_constructor_arguments_are_named(build, match):
    with pytest.raises(ValueError, match=re.escape(match)):
        build()


# -- §6: one dtype and device check per public entry point ------------------------------------


def _base(event_shape, dtype):
    return dist.Normal(torch.zeros(event_shape, dtype=dtype), 1.0).to_event(len(event_shape))


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_entry_point_refuses_float64_into_float32_and_meta_into_cpu(name):
    bijector, event_shape = _build(name, torch.float32)
    x = _inputs(bijector, event_shape, torch.float32)
    y = bijector(x).detach()
    d = TransformedDistribution(_base(event_shape, torch.float32), bijector)
    wide = TransformedDistribution(_base(event_shape, torch.float64), bijector)
    if reference_tensor(bijector) is None:  # nothing of its own to disagree with
        out, log_det = bijector.forward_and_log_det(x.double())
        assert out.dtype == log_det.dtype == torch.float64
        assert d.log_prob(y.double()).dtype == torch.float64
        return
    chain = Chain([bijector])
    dtype = r"has dtype torch.float64, but the bijector's parameters have dtype torch.float32"
    device = r"is on device meta, but the bijector's parameters are on cpu"
    with pytest.raises(TypeError, match="the Chain's input " + dtype):
        chain.forward_and_log_det(x.double())
    with pytest.raises(ValueError, match="the Chain's input " + device):
        chain.inverse_and_log_det(y.to("meta"))
    with pytest.raises(TypeError, match="value " + dtype):
        d.log_prob(y.double())
    with pytest.raises(ValueError, match="value " + device):
        d.log_prob(y.to("meta"))
    for sampler in (wide.sample, wide.rsample, wide.rsample_and_log_prob):
        with pytest.raises(TypeError, match="the base distribution's sample " + dtype):
            sampler((2,))
