import pytest
import torch

from sandflow.bijectors import Permute, Reverse, ShapeError


def test_permute_and_inverse():
    bij = Permute([2, 0, 1])
    x = torch.tensor([[1.0, 2.0, 3.0]])
    assert torch.equal(bij(x), torch.tensor([[3.0, 1.0, 2.0]]))
    assert torch.equal(bij.inv(bij(x)), x)


def test_reverse_channels_of_images():
    x = torch.arange(12.0).view(3, 2, 2)
    assert torch.equal(Reverse(3, event_dim=3)(x), x.flip(0))


def test_random_permutation_is_seeded():
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert torch.equal(
        Permute.random(6, generator=g1).permutation, Permute.random(6, generator=g2).permutation
    )


def test_invalid_permutation_is_named():
    with pytest.raises(ValueError, match="not a permutation"):
        Permute([0, 0, 1])


def test_wrong_length_is_named():
    with pytest.raises(ShapeError, match="built for 3 features along dim -1"):
        Permute([2, 0, 1])(torch.randn(4))
