import pyro.distributions as dist
import pytest
import torch

from sandflow.bijectors import Affine, AffineCoupling, Chain, Sigmoid
from sandflow.distributions import TransformedDistribution
from sandflow.testing import perturb


class Counting(Affine):
    calls = 0

    def forward_and_log_det(self, x, context=None):
        Counting.calls += 1
        return super().forward_and_log_det(x, context)


def test_cache_size_one_reuses_the_log_det_of_a_pass():
    bij = Counting(1.0, 2.0).with_cache(1)
    x = torch.randn(3)
    Counting.calls = 0
    y = bij(x)
    assert bij.log_abs_det_jacobian(x, y) is bij._cached_log_det
    assert Counting.calls == 1


def test_cache_size_zero_recomputes():
    bij = Counting(1.0, 2.0)
    x = torch.randn(3)
    Counting.calls = 0
    bij.log_abs_det_jacobian(x, bij(x))
    assert Counting.calls == 2


def test_inverse_call_caches_the_negated_log_det():
    bij = Affine(0.0, 3.0, event_dim=1).with_cache(1)
    y = torch.randn(2, 4)
    x = bij.inv(y)
    torch.testing.assert_close(
        bij.log_abs_det_jacobian(x, y), torch.full((2,), 4 * torch.log(torch.tensor(3.0)))
    )


def test_with_cache_rejects_other_sizes():
    with pytest.raises(ValueError, match="cache_size must be 0 or 1"):
        Sigmoid().with_cache(2)


def test_torch_transform_interface():
    bij = Affine(1.0, 2.0)
    x = torch.tensor([0.5])
    assert torch.equal(bij.inv(bij(x)), x)
    assert bij.inv.inv is bij
    assert bij.bijective and bij.event_dim == 0


def test_unconditional_bijector_ignores_context():
    bij = Sigmoid()
    assert bij.condition(torch.randn(3)) is bij


def test_conditional_bijector_needs_context():
    layer = AffineCoupling(2, hidden=(4,), context=3)
    with pytest.raises(ValueError, match="call .condition\\(context\\) first"):
        layer(torch.randn(2))


def test_context_batch_must_fit_the_input_batch():
    layer = AffineCoupling(2, hidden=(4,), context=3).condition(torch.randn(5, 3))
    with pytest.raises(ValueError, match="context batch shape \\(5,\\)"):
        layer(torch.randn(4, 2))


def test_too_few_dims_is_named():
    with pytest.raises(ValueError, match="event_dim=1 but got a tensor of shape \\(\\)"):
        AffineCoupling(2, hidden=(4,))(torch.tensor(1.0))


def test_log_prob_of_a_cached_sample_needs_no_inverse_pass():
    from sandflow import flows

    flow = flows.realnvp(2, layers=2, hidden=(8,))
    flow.bijector.with_cache(1)
    d = flow()
    x = d.rsample((5,))
    calls = []
    original = flow.bijector.inverse_and_log_det
    flow.bijector.inverse_and_log_det = lambda y, context=None: calls.append(1) or original(y)
    log_prob = d.log_prob(x)
    assert not calls
    flow.bijector.inverse_and_log_det = original
    torch.testing.assert_close(log_prob, flow().log_prob(x.clone()))


# -- the Pyro conditional API ------------------------------------------------------------------


def test_pyro_conditional_transformed_distribution_hands_the_context_over():
    layer = perturb(AffineCoupling(4, hidden=(8,), context=3))
    base = dist.Normal(torch.zeros(4), 1.0).to_event(1)
    context, x = torch.randn(5, 3), torch.randn(5, 4)
    expected = TransformedDistribution(base, layer.condition(context)).log_prob(x)
    pyro_dist = dist.ConditionalTransformedDistribution(base, [layer]).condition(context)
    torch.testing.assert_close(pyro_dist.log_prob(x), expected)


def test_inverse_of_a_conditional_bijector_can_be_conditioned():
    layer = perturb(AffineCoupling(4, hidden=(8,), context=3))
    context, x = torch.randn(5, 3), torch.randn(5, 4)
    y = layer.condition(context)(x)
    torch.testing.assert_close(layer.inv.condition(context)(y), x)
    assert layer.inv.inv is layer


def test_pyro_conditional_compose_transform_module():
    parts = [perturb(AffineCoupling(4, hidden=(8,), context=2, swap=s)) for s in (False, True)]
    stack = dist.conditional.ConditionalComposeTransformModule(parts)
    context, x = torch.randn(6, 2), torch.randn(6, 4)
    expected = Chain(parts).forward_and_log_det(x, context)[0]
    torch.testing.assert_close(stack.condition(context)(x), expected)


def test_conditioned_context_moves_with_the_module():
    layer = AffineCoupling(4, hidden=(8,), context=3).condition(torch.randn(3))
    assert "context" in dict(layer.named_buffers())
    assert layer.double().context.dtype == torch.float64
    assert "context" not in layer.state_dict()


def test_context_argument_of_the_primitives():
    layer = perturb(AffineCoupling(4, hidden=(8,), context=3))
    context, x = torch.randn(5, 3), torch.randn(5, 4)
    y, log_det = layer.forward_and_log_det(x, context)
    y_bound, log_det_bound = layer.condition(context).forward_and_log_det(x)
    torch.testing.assert_close((y, log_det), (y_bound, log_det_bound))
    unconditional = perturb(AffineCoupling(4, hidden=(8,)))
    assert torch.equal(unconditional.forward_and_log_det(x, context)[0], unconditional(x))
