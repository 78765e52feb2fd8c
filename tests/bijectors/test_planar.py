import functools

import pytest
import torch

from sandflow.bijectors import Planar, ShapeError
from sandflow.bijectors.planar import _solve_monotone
from sandflow.testing import check_bijector, perturb


def _planar(features=3, scale=0.3, dtype=torch.float64):
    return perturb(Planar(features), scale=scale).to(dtype)


def test_invertibility_constraint_holds_for_any_u_and_w():
    layer = Planar(2).double()
    with torch.no_grad():
        layer.w.copy_(torch.tensor([1.0, 0.5]))
        layer.u.copy_(torch.tensor([-6.0, 3.0]))  # w^T u = -4.5: plain u is not invertible
    u_hat, gap = layer._u_hat_and_gap()
    assert gap.item() > 0
    torch.testing.assert_close(layer.w @ u_hat, gap - 1)
    # monotone along w: the map is a bijection, and the checks pass
    t = torch.linspace(-10, 10, 1001, dtype=torch.float64)
    line = t[:, None] * layer.w / layer.w.square().sum()
    assert ((layer(line) @ layer.w).diff() > 0).all()
    check_bijector(layer, 3 * torch.randn(50, 2, dtype=torch.float64))


def test_inverse_is_exact_far_outside_the_data_range():
    torch.manual_seed(1)
    layer = _planar(4)
    x = 50 * torch.randn(2000, 4, dtype=torch.float64)
    y, log_det = layer.forward_and_log_det(x)
    x_back, inverse_log_det = layer.inverse_and_log_det(y)
    assert ((x_back - x).abs() / (1 + x.abs())).max() < 1e-12
    assert (inverse_log_det + log_det).abs().max() < 1e-12


def test_root_solver_reaches_a_few_ulps(dtype):
    t = torch.cat([50 * torch.randn(2000), torch.linspace(-3, 3, 2001)]).to(dtype)
    for c in (-0.999999, -0.5, 0.0, 0.7, 30.0):
        c, b = torch.tensor(c, dtype=dtype), torch.tensor(0.3, dtype=dtype)
        a = _solve_monotone(t, c + 1, b)
        # the root is within a few ulps: the residual over the slope (Newton's step) is tiny
        residual = a + c * torch.tanh(a + b) - t
        slope = 1 + c * (1 - torch.tanh(a + b).square())
        eps = torch.finfo(dtype).eps
        assert ((residual / slope).abs() <= 8 * eps * (1 + t.abs()) / slope.clamp_max(1)).all()


def test_float32_inverse_agrees_with_float64_within_float32_precision():
    layer = _planar(3)
    x = 50 * torch.randn(1000, 3, dtype=torch.float64)
    y = layer(x).float()
    reference = layer.inv(y.double())
    x32 = layer.float().inv(y).double()
    eps = torch.finfo(torch.float32).eps
    assert ((x32 - reference).abs() / (1 + reference.abs())).max() < 64 * eps


def test_flat_direction_falls_back_to_bisection():
    # w^T u_hat close to -1: the slope vanishes where w^T z + b = 0 and Newton steps blow up
    layer = Planar(2).double()
    with torch.no_grad():
        layer.w.copy_(torch.tensor([1.0, 0.0]))
        layer.u.copy_(torch.tensor([-30.0, 0.0]))
        layer.b.fill_(0.0)
    x = torch.tensor([[0.0, 1.0], [1e-3, 2.0], [-2e-2, 0.0], [40.0, -1.0]], dtype=torch.float64)
    x_back = layer.inv(layer(x))
    assert (x_back - x).abs().max() < 1e-4  # a cubic flat point: the map loses digits there
    assert torch.isfinite(layer.inverse_and_log_det(layer(x))[1]).all()


def test_inverse_gradients_are_the_implicit_ones():
    layer = _planar(2)
    names = ("u", "w", "b")
    inputs = [torch.randn(3, 2, dtype=torch.float64)]
    inputs += [getattr(layer, name).detach().clone() for name in names]
    for name in names:
        delattr(layer, name)  # parameters become plain tensors that gradcheck varies

    def inverse(y, *params, output):
        for name, value in zip(names, params, strict=True):
            setattr(layer, name, value)
        return layer.inverse_and_log_det(y)[output]

    inputs = tuple(v.requires_grad_() for v in inputs)
    for output in (0, 1):
        assert torch.autograd.gradcheck(functools.partial(inverse, output=output), inputs)


def test_one_feature():
    check_bijector(_planar(1), 50 * torch.randn(20, 1, dtype=torch.float64))


def test_bad_input():
    with pytest.raises(ValueError, match="features must be an int >= 1, got 0"):
        Planar(0)
    with pytest.raises(ShapeError, match="built for 3 features"):
        Planar(3).inverse_and_log_det(torch.zeros(2, 2))
    with pytest.raises(ShapeError, match="event_dim=1"):
        Planar(3)(torch.tensor(1.0))
