import pyro.distributions as dist
import pytest
import torch

from sandflow.distributions import DiagonalNormal


@pytest.mark.parametrize("event_dim", [0, 1, 3])
def test_matches_an_independent_normal(event_dim, dtype):
    shape = (2, 3, 4, 5)[: max(event_dim, 1) + 1]
    loc = torch.randn(shape, dtype=dtype)
    scale = torch.rand(shape, dtype=dtype) + 0.5
    ours = DiagonalNormal(loc, scale, event_dim)
    reference = dist.Normal(loc, scale).to_event(event_dim)
    value = torch.randn((7, *shape), dtype=dtype)
    assert ours.batch_shape == reference.batch_shape
    assert ours.event_shape == reference.event_shape
    torch.testing.assert_close(ours.log_prob(value), reference.log_prob(value))
    torch.testing.assert_close(ours.entropy(), reference.entropy())
    expanded = ours.expand((6, *ours.batch_shape))
    torch.testing.assert_close(
        expanded.log_prob(value[:6]), reference.expand((6, *ours.batch_shape)).log_prob(value[:6])
    )


def test_samples_have_the_law_and_carry_gradients():
    loc = torch.tensor([1.0, -2.0], requires_grad=True)
    scale = torch.tensor([0.5, 2.0])
    samples = DiagonalNormal(loc, scale, 1).rsample((20000,))
    torch.testing.assert_close(samples.mean(0), loc.detach(), atol=0.05, rtol=0)
    torch.testing.assert_close(samples.std(0), scale, atol=0.05, rtol=0)
    samples.sum().backward()
    assert loc.grad is not None


def test_mismatched_parameters_are_refused():
    with pytest.raises(ValueError, match="loc and scale of one shape"):
        DiagonalNormal(torch.zeros(3), torch.ones(2), 1)
