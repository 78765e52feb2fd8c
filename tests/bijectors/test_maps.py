import pytest
import torch

from sandflow import flows
from sandflow.bijectors import (
    AffineCoupling,
    Coupling,
    MaskedAutoregressive,
    RationalQuadraticSpline,
    Shift,
    SoftClampedAffine,
    soft_clamp,
)
from sandflow.testing import perturb

MAPS = [SoftClampedAffine(2.0), Shift(), RationalQuadraticSpline(bins=4, bound=3.0)]


@pytest.mark.parametrize("transform", MAPS, ids=lambda m: type(m).__name__)
def test_map_round_trip_and_log_det(transform, dtype):
    x = 4 * torch.randn(50, dtype=dtype)
    params = torch.randn(50, transform.params_per_feature, dtype=dtype)
    tol = {"atol": 1e-4, "rtol": 1e-4} if dtype == torch.float32 else {}  # random spline bins
    y, log_det = transform.forward(x, params)
    x_back, inverse_log_det = transform.inverse(y, params)
    torch.testing.assert_close(x_back, x, **tol)
    if log_det is None:
        assert inverse_log_det is None
        return
    torch.testing.assert_close(inverse_log_det, -log_det, **tol)
    slope = torch.func.vmap(torch.func.grad(lambda v, p: transform.forward(v, p)[0]))(x, params)
    torch.testing.assert_close(log_det, slope.abs().log(), **tol)


def test_soft_clamp_bounds_the_log_scale():
    assert soft_clamp(torch.tensor(1e6), 3.0).item() == pytest.approx(3.0)
    _, log_det = SoftClampedAffine(1.5).forward(torch.ones(3), torch.full((3, 2), 100.0))
    assert torch.all(log_det <= 1.5)


@pytest.mark.parametrize("transform", MAPS, ids=lambda m: type(m).__name__)
def test_one_map_object_serves_coupling_and_autoregressive(transform):
    coupling = perturb(Coupling(4, transform, hidden=(8,)))
    autoregressive = perturb(MaskedAutoregressive(4, hidden=(8,), transform=transform))
    x = torch.randn(5, 4)
    for layer in (coupling, autoregressive):
        y, log_det = layer.forward_and_log_det(x)
        x_back, inverse_log_det = layer.inverse_and_log_det(y)
        torch.testing.assert_close(x_back, x, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(inverse_log_det, -log_det, atol=1e-5, rtol=1e-5)


def test_bad_maps_are_named():
    with pytest.raises(TypeError, match="transform must be an ElementwiseMap"):
        Coupling(4, "affine")
    with pytest.raises(ValueError, match="bound > 0"):
        SoftClampedAffine(0.0)
    with pytest.raises(ValueError, match="bins >= 1"):
        RationalQuadraticSpline(bins=0)


# -- what defines the map travels with the checkpoint ----------------------------------------


def test_mismatched_direction_is_refused_on_load():
    state = flows.maf(3, layers=2, hidden=(8,)).state_dict()
    with pytest.raises(ValueError, match="iaf=False in the checkpoint but True here"):
        flows.maf(3, layers=2, hidden=(8,), iaf=True).load_state_dict(state)


def test_mismatched_spline_bound_is_refused_on_load():
    state = flows.nsf(3, layers=2, hidden=(8,), bound=3.0).state_dict()
    with pytest.raises(ValueError, match="bound=3.0 in the checkpoint but 5.0 here"):
        flows.nsf(3, layers=2, hidden=(8,), bound=5.0).load_state_dict(state)


def test_matching_checkpoint_loads_with_weights_only(tmp_path):
    layer = perturb(AffineCoupling(4, hidden=(8,), bound=2.0))
    torch.save(layer.state_dict(), tmp_path / "layer.pt")
    fresh = AffineCoupling(4, hidden=(8,), bound=2.0)
    fresh.load_state_dict(torch.load(tmp_path / "layer.pt", weights_only=True))
    x = torch.randn(3, 4)
    assert torch.equal(fresh(x), layer(x))
    with pytest.raises(ValueError, match="bound=2.0 in the checkpoint but 3.0 here"):
        AffineCoupling(4, hidden=(8,)).load_state_dict(layer.state_dict())
