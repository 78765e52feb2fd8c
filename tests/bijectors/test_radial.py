import pytest
import torch

from sandflow.bijectors import Radial, ShapeError
from sandflow.testing import check_bijector, perturb


def _radial(features=3, scale=0.3, dtype=torch.float64):
    return perturb(Radial(features), scale=scale).to(dtype)


@pytest.mark.parametrize("beta_raw", [-40.0, -3.0, 0.0, 4.0])
def test_beta_stays_above_minus_alpha(beta_raw):
    layer = Radial(2).double()
    with torch.no_grad():
        layer.beta_raw.fill_(beta_raw)  # the most contracting maps come from very negative raws
    alpha, gap = layer._alpha_gap()
    assert gap.item() > 0  # beta = gap - alpha > -alpha
    x = torch.cat([torch.randn(50, 2), 30 * torch.randn(50, 2)]).double() + layer.center
    check_bijector(layer, x.detach())


@pytest.mark.parametrize("scale", [1e-3, 1.0, 50.0, 1e4])
def test_inverse_is_exact_near_and_far_from_the_centre(dtype, scale):
    layer = _radial(4, dtype=dtype)
    x = scale * torch.randn(2000, 4, dtype=dtype) + layer.center.detach()
    y, log_det = layer.forward_and_log_det(x)
    x_back, inverse_log_det = layer.inverse_and_log_det(y)
    eps = torch.finfo(dtype).eps
    assert ((x_back - x).abs() / (scale + x.abs())).max() < 16 * eps
    assert (inverse_log_det + log_det).abs().max() < 16 * eps * (1 + log_det.abs().max())


def test_both_roots_of_the_quadratic():
    # q = alpha + beta - s is positive near the centre and negative far away
    layer = _radial(2)
    alpha, gap = layer._alpha_gap()
    radii = torch.tensor([0.0, 1e-8, 0.1, 1.0, 10.0, 1e6], dtype=torch.float64)
    direction = torch.tensor([0.6, 0.8], dtype=torch.float64)
    x = layer.center.detach() + radii[:, None] * direction
    y = layer(x)
    s = (y - layer.center).norm(dim=-1)
    q = gap - s
    assert (q > 0).any() and (q < 0).any()
    torch.testing.assert_close(layer.inv(y), x, rtol=1e-14, atol=1e-14)


def test_centre_maps_to_itself():
    layer = _radial(3)
    y, log_det = layer.forward_and_log_det(layer.center.detach().clone())
    torch.testing.assert_close(y, layer.center.detach())
    assert torch.isfinite(log_det)
    x, inverse_log_det = layer.inverse_and_log_det(y)
    torch.testing.assert_close(x, y)
    torch.testing.assert_close(inverse_log_det, -log_det)


def test_inverse_gradients():
    layer = _radial(2)
    y = (3 * torch.randn(4, 2, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(lambda v: layer.inverse_and_log_det(v)[0], (y,))
    x = layer.inv(y)
    (grad,) = torch.autograd.grad(layer.inverse_and_log_det(y)[1].sum(), layer.beta_raw)
    assert torch.isfinite(grad) and x.shape == y.shape


def test_one_feature():
    check_bijector(_radial(1), 50 * torch.randn(20, 1, dtype=torch.float64))


def test_bad_input():
    with pytest.raises(ValueError, match="features must be an int >= 1, got 0"):
        Radial(0)
    with pytest.raises(ShapeError, match="built for 2 features"):
        Radial(2).forward_and_log_det(torch.zeros(5, 3))
