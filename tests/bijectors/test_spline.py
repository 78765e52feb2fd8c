import pytest
import torch

from sandflow import flows
from sandflow.bijectors import ShapeError, SplineCoupling, rational_quadratic_spline
from sandflow.testing import CHECKS, check_bijector, perturb


def _params(n, bins, scale=2.0, dtype=torch.float64):
    return scale * torch.randn(n, 3 * bins - 1, dtype=dtype)


@pytest.mark.parametrize("inverse", [False, True])
def test_identity_tails_far_outside_the_interval(dtype, inverse):
    x = torch.tensor([-50.0, -5.0001, 5.0001, 50.0, -1e6, 1e6], dtype=dtype)
    y, log_det = rational_quadratic_spline(x, _params(6, 8, dtype=dtype), inverse=inverse)
    assert torch.equal(y, x)
    assert torch.equal(log_det, torch.zeros_like(x))


def test_tails_have_finite_gradients():
    # out-of-range values must not leak NaN through the unused spline branch
    x = torch.tensor([-50.0, -7.0, 7.0, 50.0], dtype=torch.float64, requires_grad=True)
    params = _params(4, 6).requires_grad_()
    for inverse in (False, True):
        y, log_det = rational_quadratic_spline(x, params, inverse=inverse)
        grad_x, grad_p = torch.autograd.grad((y + log_det).sum(), (x, params))
        assert torch.equal(grad_x, torch.ones_like(x))
        assert torch.equal(grad_p, torch.zeros_like(params))


def test_coupling_is_exactly_invertible_at_50(dtype):
    layer = perturb(SplineCoupling(4, bins=5, hidden=(16,)), scale=0.1).to(dtype)
    x = torch.randn(64, 4, dtype=dtype)
    x[:, 2:] = 50 * x[:, 2:].sign()  # the transformed half, far outside [-5, 5]
    x[:, :2] *= 50
    y, log_det = layer.forward_and_log_det(x)
    assert torch.equal(y, x) and torch.equal(log_det, torch.zeros(64, dtype=dtype))
    assert torch.equal(layer.inverse_and_log_det(y)[0], x)


def test_maps_the_interval_onto_itself_monotonically():
    bound = 3.0
    x = torch.linspace(-bound, bound, 2001, dtype=torch.float64)
    y, log_det = rational_quadratic_spline(x, _params(1, 7), bound=bound)
    assert y[0].item() == pytest.approx(-bound, abs=1e-12)
    assert y[-1].item() == pytest.approx(bound, abs=1e-12)
    assert (y.diff() > 0).all()
    # the slope is 1 at the ends, where the identity tails take over
    assert log_det[[0, -1]].abs().max() < 1e-9


def test_log_det_is_the_log_derivative():
    x = torch.linspace(-6, 6, 999, dtype=torch.float64, requires_grad=True)
    params = _params(999, 6)
    y, log_det = rational_quadratic_spline(x, params)
    (slope,) = torch.autograd.grad(y.sum(), x)
    torch.testing.assert_close(log_det, slope.log(), rtol=0, atol=1e-10)


@pytest.mark.parametrize("bins", [1, 2, 8, 32])
def test_inverse_round_trip(bins):
    x = 4.9 * (2 * torch.rand(5000, dtype=torch.float64) - 1)
    params = _params(5000, bins, scale=3.0)
    y, log_det = rational_quadratic_spline(x, params)
    x_back, inverse_log_det = rational_quadratic_spline(y, params, inverse=True)
    assert (x_back - x).abs().max() < 1e-9
    assert (inverse_log_det + log_det).abs().max() < 1e-9


def test_knots_and_bounds_give_no_nan_in_float32():
    # values at the knots and at the interval ends, where the discriminant rounds to ~0
    params = _params(1, 4, scale=5.0, dtype=torch.float32).expand(2001, -1)
    x = torch.linspace(-5, 5, 2001)
    y, _ = rational_quadratic_spline(x, params)
    for value in (y, torch.full((2001,), -5.0), torch.full((2001,), 5.0)):
        x_back, log_det = rational_quadratic_spline(value, params, inverse=True)
        assert torch.isfinite(x_back).all() and torch.isfinite(log_det).all()
        assert (x_back.abs() <= 5).all()


def test_zero_params_and_one_bin_are_the_identity():
    x = torch.randn(100, dtype=torch.float64) * 3
    y, log_det = rational_quadratic_spline(x, torch.zeros(100, 3 * 8 - 1, dtype=torch.float64))
    torch.testing.assert_close(y, x, rtol=0, atol=1e-12)
    assert log_det.abs().max() < 1e-12
    # with one bin, widths and heights are both the whole interval whatever the params
    y, log_det = rational_quadratic_spline(x, _params(100, 1, scale=10.0))
    torch.testing.assert_close(y, x, rtol=0, atol=1e-12)
    assert log_det.abs().max() < 1e-12


def test_one_bin_coupling_passes_the_checks():
    layer = perturb(SplineCoupling(3, bins=1, hidden=(8,)), scale=1.0).double()
    assert layer.params_per_feature == 2
    # one bin is the identity whatever the conditioner says: its weights get no gradient
    maps = [c for c in CHECKS if c not in ("gradients", "pyro_module")]
    check_bijector(layer, torch.randn(10, 3, dtype=torch.float64), checks=maps)


def test_new_coupling_is_the_identity():
    x = torch.randn(20, 5)
    y, log_det = SplineCoupling(5, hidden=(16,)).forward_and_log_det(x)
    torch.testing.assert_close(y, x)
    assert log_det.abs().max() < 1e-5


def test_params_broadcast_against_inputs():
    params = _params(1, 4)[0]  # one spline for every entry
    x = torch.randn(3, 5, dtype=torch.float64)
    y, log_det = rational_quadratic_spline(x, params)
    expected, _ = rational_quadratic_spline(x.flatten(), params.expand(15, -1))
    assert y.shape == log_det.shape == (3, 5)
    torch.testing.assert_close(y.flatten(), expected)


def test_nsf_flow_density_and_context():
    flow = perturb(flows.nsf(2, layers=2, hidden=(8,), bins=4, context=3), scale=0.1).double()
    context = torch.randn(6, 3, dtype=torch.float64)
    d = flow(context)
    x, log_q = d.rsample_and_log_prob((4,))
    assert x.shape == (4, 6, 2)
    torch.testing.assert_close(log_q, d.log_prob(x))


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize("bins", [0, -2, 2.5])
def test_bad_bins(bins):
    with pytest.raises(ValueError, match="bins >= 1"):
        SplineCoupling(4, bins=bins)


def test_bad_bound():
    with pytest.raises(ValueError, match="bound > 0"):
        SplineCoupling(4, bound=0.0)


@pytest.mark.parametrize("width", [1, 3, 4, 6])
def test_params_of_the_wrong_size(width):
    with pytest.raises(ValueError, match="3K - 1"):
        rational_quadratic_spline(torch.zeros(3), torch.zeros(3, width))


def test_too_many_bins():
    with pytest.raises(ValueError, match="too many bins"):
        rational_quadratic_spline(torch.zeros(1), torch.zeros(1, 3 * 1000 - 1))


def test_wrong_feature_count_is_named():
    with pytest.raises(ShapeError, match="built for 4 features"):
        SplineCoupling(4, hidden=(8,)).forward_and_log_det(torch.zeros(2, 5))
