import pytest
import torch

from sandflow import flows
from sandflow.bijectors import MaskedAutoregressive, Reverse, ShapeError
from sandflow.testing import perturb


def _jacobian(fn, x):
    return torch.autograd.functional.jacobian(fn, x)


@pytest.mark.parametrize("iaf", [False, True])
@pytest.mark.parametrize("transform", ["affine", "spline"])
@pytest.mark.parametrize("inverse", [False, True])
def test_jacobian_is_triangular_in_the_autoregressive_order(iaf, transform, inverse):
    order = torch.tensor([3, 0, 4, 1, 2])
    layer = MaskedAutoregressive(5, hidden=(32, 32), iaf=iaf, transform=transform, order=order)
    layer = perturb(layer, scale=0.3).double()
    x = torch.randn(5, dtype=torch.float64)
    step = layer.inverse_and_log_det if inverse else layer.forward_and_log_det
    jacobian = _jacobian(lambda v: step(v)[0], x)
    in_order = jacobian[order][:, order]  # row i and column i: the i-th feature in the order
    assert in_order.triu(1).abs().max() == 0
    assert in_order.tril(-1).abs().max() > 1e-3  # and it does depend on earlier features
    assert (in_order.diagonal() > 0).all()
    log_det = step(x)[1]
    torch.testing.assert_close(log_det, in_order.diagonal().log().sum())


@pytest.mark.parametrize("iaf", [False, True])
def test_one_pass_in_the_fast_direction_and_d_passes_in_the_other(iaf):
    layer = MaskedAutoregressive(4, hidden=(8,), iaf=iaf)
    calls = []
    layer.made.register_forward_hook(lambda *args: calls.append(1))
    x = torch.randn(3, 4)
    layer.forward_and_log_det(x)
    forward_calls = len(calls)
    calls.clear()
    layer.inverse_and_log_det(x)
    assert (forward_calls, len(calls)) == ((1, 4) if iaf else (4, 1))


def test_sequential_direction_is_exact_with_gradients():
    layer = perturb(MaskedAutoregressive(4, hidden=(16,)), scale=0.5).double()
    u = torch.randn(8, 4, dtype=torch.float64, requires_grad=True)
    x, log_det = layer.forward_and_log_det(u)  # D passes
    u_back, inverse_log_det = layer.inverse_and_log_det(x)  # one pass
    torch.testing.assert_close(u_back, u, rtol=0, atol=1e-12)
    torch.testing.assert_close(inverse_log_det, -log_det, rtol=0, atol=1e-12)
    # gradients through the unrolled passes are those of the exact map
    (grad,) = torch.autograd.grad(x[0].sum(), u)
    expected = _jacobian(lambda v: layer.forward_and_log_det(v)[0], u[0].detach()).sum(0)
    torch.testing.assert_close(grad[0], expected)


def test_starts_as_the_identity():
    x = torch.randn(10, 3)
    for transform in ("affine", "spline"):
        layer = MaskedAutoregressive(3, hidden=(8,), transform=transform)
        y, log_det = layer.forward_and_log_det(x)
        torch.testing.assert_close(y, x)
        assert log_det.abs().max() < 1e-5


def test_affine_log_scale_is_soft_clamped():
    layer = MaskedAutoregressive(2, hidden=(8,), log_scale_bound=2.0, iaf=True)
    with torch.no_grad():
        layer.made[-1].bias.fill_(100.0)  # a huge raw log-scale for both features
    _, log_det = layer.forward_and_log_det(torch.zeros(1, 2))
    assert log_det.item() == pytest.approx(4.0, abs=1e-4)


def test_context_changes_the_map_and_is_checked():
    layer = perturb(MaskedAutoregressive(3, hidden=(16,), context=2), scale=0.3)
    x = torch.randn(5, 3)
    a = layer.inverse_and_log_det(x, torch.zeros(5, 2))[0]
    b = layer.inverse_and_log_det(x, torch.ones(5, 2))[0]
    assert (a - b).abs().max() > 1e-3
    with pytest.raises(ValueError, match="is conditional"):
        layer.inverse_and_log_det(x)
    with pytest.raises(ShapeError, match="context with 2 features"):
        layer.condition(torch.zeros(5, 3))


def test_maf_builder_reverses_between_layers():
    flow = flows.maf(3, layers=3, hidden=(8,))
    kinds = [type(part) for part in flow.bijector.parts]
    assert kinds == [MaskedAutoregressive, Reverse] * 2 + [MaskedAutoregressive]


@pytest.mark.parametrize("iaf", [False, True])
def test_flow_rsample_and_log_prob(iaf):
    flow = perturb(flows.maf(3, layers=2, hidden=(16,), iaf=iaf, context=2), scale=0.2).double()
    d = flow(torch.randn(4, 2, dtype=torch.float64))
    x, log_q = d.rsample_and_log_prob((5,))
    assert x.shape == (5, 4, 3)
    torch.testing.assert_close(log_q, d.log_prob(x))


# -- bad input -------------------------------------------------------------------------------


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="transform must be one of"):
        MaskedAutoregressive(3, transform="quadratic")
    with pytest.raises(ValueError, match="bins >= 1"):
        MaskedAutoregressive(3, transform="spline", bins=0)
    with pytest.raises(ValueError, match="permutation of range\\(3\\)"):
        MaskedAutoregressive(3, order=[0, 0, 1])
    with pytest.raises(ShapeError, match="built for 3 features"):
        MaskedAutoregressive(3, hidden=(8,)).inverse_and_log_det(torch.zeros(2, 4))
