import itertools
import math

import pytest
import torch

from sandflow import data, flows
from sandflow.matching import flow_matching_loss, ot_coupling, probability_path


@pytest.mark.parametrize("path", ["linear", "vp"])
def test_path_velocity_is_the_time_derivative(path):
    x0, x1 = torch.randn(6, 3, dtype=torch.float64), torch.randn(6, 3, dtype=torch.float64)
    t, h = torch.rand(6, dtype=torch.float64), 1e-6
    _, ut = probability_path(x0, x1, t, path)
    ahead, behind = (
        probability_path(x0, x1, t + h, path)[0],
        probability_path(x0, x1, t - h, path)[0],
    )
    torch.testing.assert_close(ut, (ahead - behind) / (2 * h))
    ends = probability_path(x0, x1, torch.tensor([0.0, 1.0], dtype=torch.float64).repeat(3), path)
    torch.testing.assert_close(ends[0][0::2], x0[0::2])
    torch.testing.assert_close(ends[0][1::2], x1[1::2])


def test_ot_coupling_is_the_optimal_permutation():
    x0, x1 = torch.randn(6, 2), torch.randn(6, 2)
    paired = ot_coupling(x0, x1)
    cost = (paired - x1).square().sum()
    best = min((x0[list(p)] - x1).square().sum() for p in itertools.permutations(range(6)))
    torch.testing.assert_close(cost, best)
    assert sorted(paired[:, 0].tolist()) == sorted(x0[:, 0].tolist())
    with pytest.raises(ValueError, match="same shape"):
        ot_coupling(x0, x1[:5])


@pytest.mark.parametrize("path", ["linear", "vp"])
def test_loss_is_zero_for_the_exact_field_of_a_point_mass(path):
    """Data at one point c: the marginal velocity is known in closed form, and has zero loss."""
    c = torch.tensor([1.0, -2.0], dtype=torch.float64)

    def exact(x, t):
        t = t[:, None]
        if path == "linear":
            return (c - x) / (1 - t)
        a, b = torch.cos(math.pi * t / 2), torch.sin(math.pi * t / 2)
        x0 = (x - b * c) / a
        return math.pi / 2 * (a * c - b * x0)

    loss = flow_matching_loss(exact, c.expand(256, 2), path=path)
    assert loss < 1e-16
    assert flow_matching_loss(lambda x, t: torch.zeros_like(x), c.expand(256, 2), path=path) > 1


def test_context_reaches_the_field_and_bad_names_are_refused():
    seen = []

    def field(x, t, context):
        seen.append(context)
        return torch.zeros_like(x)

    context = torch.randn(8, 3)
    flow_matching_loss(field, torch.randn(8, 2), context, coupling="ot")
    assert seen[0] is context
    with pytest.raises(ValueError, match="coupling must be"):
        flow_matching_loss(field, torch.randn(8, 2), context, coupling="sinkhorn")
    with pytest.raises(ValueError, match="path must be"):
        flow_matching_loss(field, torch.randn(8, 2), context, path="cosine")


def test_a_few_steps_of_flow_matching_lower_the_loss():
    target = data.toy("eight_gaussians")
    field = flows.cnf(2, hidden=(32, 32)).bijector.vector_field
    optimizer = torch.optim.Adam(field.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        loss = flow_matching_loss(field, target.sample((256,)), coupling="ot")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-10:]) < 0.8 * sum(losses[:10])
