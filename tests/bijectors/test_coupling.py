import pytest
import torch

from sandflow.bijectors import AdditiveCoupling, AffineCoupling, ShapeError
from sandflow.bijectors.maps import soft_clamp
from sandflow.testing import perturb


def test_starts_as_the_identity():
    layer = AffineCoupling(5, hidden=(8,))
    x = torch.randn(3, 5)
    y, log_det = layer.forward_and_log_det(x)
    assert torch.equal(y, x) and torch.equal(log_det, torch.zeros(3))


@pytest.mark.parametrize("swap", [False, True])
def test_conditioning_half_passes_unchanged(swap):
    layer = perturb(AffineCoupling(5, hidden=(8,), swap=swap))
    x = torch.randn(3, 5)
    y = layer(x)
    kept = slice(3, 5) if swap else slice(0, 2)
    assert torch.equal(y[:, kept], x[:, kept])


def test_scale_is_bounded():
    layer = AffineCoupling(2, hidden=(4,), bound=1.5)
    with torch.no_grad():
        layer.conditioner[-1].bias.fill_(100.0)
    _, log_det = layer.forward_and_log_det(torch.randn(4, 2))
    assert (log_det <= 1.5).all()
    assert soft_clamp(torch.tensor(1e6), 3.0).item() == pytest.approx(3.0)


def test_additive_is_volume_preserving():
    layer = perturb(AdditiveCoupling(4, hidden=(8,)))
    assert torch.equal(layer.forward_and_log_det(torch.randn(6, 4))[1], torch.zeros(6))


def test_image_coupling_with_context():
    layer = perturb(AffineCoupling(4, hidden=8, event_dim=3, context=2))
    out = layer.condition(torch.randn(5, 2))(torch.randn(5, 4, 3, 3))
    assert out.shape == (5, 4, 3, 3)


def test_bad_construction_and_input_are_named():
    with pytest.raises(ValueError, match="at least 2 features"):
        AffineCoupling(1)
    with pytest.raises(ValueError, match="event_dim 1 or 3"):
        AffineCoupling(4, event_dim=2)
    with pytest.raises(ShapeError, match="built for 4 features along dim -1"):
        AffineCoupling(4, hidden=(8,))(torch.randn(2, 3))
