import pytest
import torch

from sandflow.nn.made import MADE
from sandflow.testing import perturb


def _connectivity(made):
    """Which inputs can reach which outputs: the product of the binary masks."""
    path = made.masks()[0]
    for mask in made.masks()[1:]:
        path = (mask @ path).clamp_max(1)
    return path


@pytest.mark.parametrize("order", [None, [2, 4, 0, 3, 1]])
@pytest.mark.parametrize("hidden", [(7,), (32, 16), (3, 3, 3)])
def test_outputs_see_only_earlier_inputs(order, hidden):
    made = perturb(MADE(5, params=3, hidden=hidden, order=order), scale=0.5).double()
    rank = torch.arange(5) if order is None else torch.tensor(order).argsort()
    x = torch.randn(5, dtype=torch.float64)
    jacobian = torch.autograd.functional.jacobian(made, x).unflatten(0, (3, 5))
    allowed = rank[None, :] < rank[:, None]  # [output feature, input feature]
    assert (jacobian[:, ~allowed] == 0).all()
    assert (_connectivity(made).unflatten(0, (3, 5))[:, ~allowed] == 0).all()


def test_enough_hidden_units_connect_every_allowed_pair():
    made = MADE(4, params=2, hidden=(16, 16))
    allowed = torch.arange(4)[None, :] < torch.arange(4)[:, None]
    assert (_connectivity(made).unflatten(0, (2, 4))[:, allowed] == 1).all()


def test_context_reaches_every_output():
    made = perturb(MADE(3, params=2, hidden=(8,), context=2), scale=0.5)
    x = torch.randn(3)
    a = made(torch.cat([x, torch.zeros(2)]))
    b = made(torch.cat([x, torch.ones(2)]))
    assert ((a - b).abs() > 0).all()


def test_one_feature_depends_on_context_only():
    made = perturb(MADE(1, params=2, hidden=(8,), context=1), scale=0.5)
    a = made(torch.tensor([0.0, 1.0]))
    torch.testing.assert_close(made(torch.tensor([5.0, 1.0])), a)
    assert (made(torch.tensor([0.0, -1.0])) - a).abs().max() > 0


def test_zero_last_and_state_dict():
    made = MADE(3, params=2, hidden=(8,), zero_last=True)
    assert torch.equal(made(torch.randn(4, 3)), torch.zeros(4, 6))
    assert {"mask0", "mask1", "degrees"} <= set(made.state_dict())
    assert made.double().mask0.dtype == torch.float64


def test_bad_arguments():
    with pytest.raises(ValueError, match="features >= 1"):
        MADE(0, params=2)
    with pytest.raises(ValueError, match="permutation of range\\(3\\)"):
        MADE(3, params=2, order=[0, 1, 3])
