import math

import pyro.distributions as dist
import pytest
import torch

from sandflow.bijectors import Affine, AffineCoupling, Squeeze
from sandflow.distributions import TransformedDistribution
from sandflow.testing import perturb


def test_log_prob_is_the_change_of_variables():
    base = dist.Normal(torch.zeros(3), 1.0).to_event(1)
    d = TransformedDistribution(base, [Affine(1.0, 2.0), Affine(0.0, 3.0)])
    x = torch.randn(4, 3)
    z = (x / 3 - 1) / 2
    torch.testing.assert_close(d.log_prob(x), base.log_prob(z) - 3 * math.log(6.0))


def test_event_shape_follows_forward_shape():
    base = dist.Normal(torch.zeros(2, 4, 4), 1.0).to_event(3)
    d = TransformedDistribution(base, Squeeze())
    assert d.event_shape == (8, 2, 2) and d.batch_shape == ()
    assert d.sample((5,)).shape == (5, 8, 2, 2)


def test_base_batch_dims_become_event_dims():
    d = TransformedDistribution(dist.Normal(torch.zeros(4), 1.0), AffineCoupling(4, hidden=(8,)))
    assert d.event_shape == (4,) and d.batch_shape == ()
    assert d.log_prob(torch.randn(7, 4)).shape == (7,)


def test_scalar_base_for_a_vector_bijector_is_an_error():
    with pytest.raises(ValueError, match="event_dim=1 but the base distribution has shape \\(\\)"):
        TransformedDistribution(dist.Normal(0.0, 1.0), AffineCoupling(4, hidden=(8,)))


def test_elementwise_bijector_on_a_vector_base_sums_the_log_det():
    base = dist.Normal(torch.zeros(3), 1.0).to_event(1)
    d = TransformedDistribution(base, Affine(0.0, 2.0))
    x = torch.randn(5, 3)
    torch.testing.assert_close(d.log_prob(x), base.log_prob(x / 2) - 3 * math.log(2.0))
    _, log_prob = d.rsample_and_log_prob((5,))
    assert log_prob.shape == (5,)


def test_expand_shares_the_bijector():
    layer = perturb(AffineCoupling(2, hidden=(8,)))
    d = TransformedDistribution(dist.Normal(torch.zeros(2), 1.0).to_event(1), layer)
    wide = d.expand((6,))
    assert wide.batch_shape == (6,) and wide.bijector is layer
    x = torch.randn(6, 2)
    torch.testing.assert_close(wide.log_prob(x), d.log_prob(x))


def test_support_and_has_rsample():
    d = TransformedDistribution(dist.Normal(torch.zeros(2), 1.0).to_event(1), Affine(0.0, 2.0))
    assert d.has_rsample and d.support.check(torch.zeros(2))
