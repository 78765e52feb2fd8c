import pytest
import torch

from sandflow.bijectors import (
    Affine,
    AffineCoupling,
    Chain,
    Invert,
    Logit,
    ShapeError,
    Sigmoid,
    Squeeze,
)


def test_chain_applies_parts_in_list_order():
    chain = Chain([Affine(1.0, 1.0), Affine(0.0, 2.0)])
    assert chain(torch.tensor([0.0])).item() == 2.0  # (0 + 1) * 2, not 0 * 2 + 1


def test_chain_sums_log_dets_over_mixed_event_dims():
    chain = Chain([Affine(0.0, 2.0), Affine(0.0, torch.tensor([3.0, 5.0]), event_dim=1)])
    _, log_det = chain.forward_and_log_det(torch.zeros(4, 2))
    expected = 2 * torch.log(torch.tensor(2.0)) + torch.log(torch.tensor(15.0))
    torch.testing.assert_close(log_det, expected.expand(4))


def test_chain_domain_and_codomain_follow_the_ends():
    chain = Chain([Affine(0.0, 2.0), Sigmoid()])
    assert chain.codomain.check(torch.tensor(0.5))
    assert not chain.codomain.check(torch.tensor(1.5))


def test_chain_shape_mismatch_names_the_part_and_the_fix():
    chain = Chain([Squeeze(), AffineCoupling(2, hidden=8, event_dim=3)])
    with pytest.raises(ShapeError) as info:
        chain(torch.randn(1, 2, 4, 4))
    message = str(info.value)
    assert "part 1 (AffineCoupling" in message
    assert "from part 0 (Squeeze" in message
    assert "(1, 8, 2, 2)" in message
    assert "built for 2 features" in message


def test_chain_rejects_non_bijectors():
    with pytest.raises(TypeError, match="not a sandflow Bijector"):
        Chain([torch.distributions.ExpTransform()])


def test_chain_rejects_mixed_context_sizes():
    with pytest.raises(ValueError, match="different context sizes"):
        Chain([AffineCoupling(2, context=1), AffineCoupling(2, context=2)])


def test_empty_chain_is_the_identity():
    y, log_det = Chain([]).forward_and_log_det(torch.ones(3))
    assert torch.equal(y, torch.ones(3)) and torch.equal(log_det, torch.zeros(3))


def test_invert_swaps_directions_and_constraints():
    inverse = Invert(Sigmoid())
    assert torch.allclose(inverse(torch.tensor([0.5])), torch.tensor([0.0]))
    assert not inverse.domain.check(torch.tensor(2.0))
    assert Invert(Squeeze()).forward_shape((8, 2, 2)) == (2, 4, 4)


def test_invert_owns_the_parameters():
    layer = AffineCoupling(2, hidden=(4,))
    assert set(Invert(layer).parameters()) == set(layer.parameters())


def test_logit_is_sigmoids_inverse():
    x = torch.rand(5) * 0.98 + 0.01
    torch.testing.assert_close(Logit()(x), Sigmoid().inv(x))
