"""The property harness: check_bijector on every registered bijector, float32 and float64."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from sandflow.testing import check_bijector, perturb, strategies

from .registry import CASES


def _build(name, dtype, device):
    case = CASES[name]
    bijector = case.factory()
    perturb(bijector, scale=case.perturbation)
    if hasattr(bijector, "context"):
        bijector.context = bijector.context.to(dtype=dtype, device=device)
    return case, bijector.to(dtype=dtype, device=device)


@pytest.mark.parametrize("name", sorted(CASES))
def test_check_bijector(name, dtype, device):
    case, bijector = _build(name, dtype, device)

    @given(st.data())
    def run(data):
        x = data.draw(strategies.tensors(case.event_shape, dtype=torch.float64, device=device))
        check_bijector(bijector, case.to_domain(x).to(dtype))

    run()


@given(
    chain=strategies.bijectors(4, dtype=torch.float64),
    x=strategies.tensors((4,), dtype=torch.float64),
)
def test_random_chains(chain, x):
    check_bijector(chain, x)
