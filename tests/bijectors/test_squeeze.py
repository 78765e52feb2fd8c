import pytest
import torch

from sandflow.bijectors import ShapeError, Squeeze


def test_space_to_depth_layout():
    x = torch.arange(16.0).view(1, 4, 4)
    y = Squeeze()(x)
    assert torch.equal(y[:, 0, 0], torch.tensor([0.0, 1.0, 4.0, 5.0]))


def test_shapes():
    assert Squeeze().forward_shape((7, 3, 4, 6)) == (7, 12, 2, 3)
    assert Squeeze().inverse_shape((12, 2, 3)) == (3, 4, 6)


def test_odd_sizes_are_named():
    with pytest.raises(ShapeError, match="even height and width"):
        Squeeze()(torch.randn(1, 3, 4))
    with pytest.raises(ShapeError, match="divisible by 4"):
        Squeeze().inv(torch.randn(3, 2, 2))
