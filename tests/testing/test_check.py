import math

import pytest
import torch
from hypothesis import given

from sandflow.bijectors import Affine, AffineCoupling, Bijector, Sigmoid
from sandflow.testing import autograd_log_det, check_bijector, perturb, strategies, tolerances


class ShiftLogDet(Affine):
    def forward_and_log_det(self, x):
        y, log_det = super().forward_and_log_det(x)
        return y, log_det + 0.1


class WrongInverse(Affine):
    def inverse_and_log_det(self, y):
        x, log_det = super().inverse_and_log_det(y)
        return x + 1e-2, log_det


class WrongJacobian(Bijector):
    """y = 2x, but claims a log-det of log 3 on both sides."""

    def __init__(self):
        super().__init__(event_dim=0)

    def forward_and_log_det(self, x):
        return 2 * x, torch.full_like(x, math.log(3))

    def inverse_and_log_det(self, y):
        return y / 2, torch.full_like(y, -math.log(3))


class SummedOverBatch(Affine):
    def forward_and_log_det(self, x):
        y, log_det = super().forward_and_log_det(x)
        return y, log_det.sum()


@pytest.mark.parametrize(
    ("bijector", "message"),
    [
        (ShiftLogDet(0.0, 2.0, event_dim=1), "inverse log-det == -forward log-det"),
        (WrongInverse(0.0, 2.0, event_dim=1), "inverse\\(forward\\(x\\)\\) == x"),
        (WrongJacobian(), "log-det == log\\|det J\\| \\(autograd\\)"),
        (SummedOverBatch(0.0, 2.0, event_dim=1), "log-det shape \\(\\) is not the batch shape"),
    ],
)
def test_check_bijector_names_what_is_wrong(bijector, message):
    with pytest.raises(AssertionError, match=message):
        check_bijector(bijector, torch.randn(3, 2, dtype=torch.float64))


def test_autograd_log_det_matches_a_known_jacobian():
    bij = Affine(torch.zeros(3), torch.tensor([1.0, 2.0, 4.0]), event_dim=1)
    torch.testing.assert_close(
        autograd_log_det(bij, torch.randn(5, 3)), torch.full((5,), math.log(8))
    )


def test_tolerances_by_dtype():
    assert tolerances(torch.float64) < tolerances(torch.float32) < tolerances(torch.float16)


def test_perturb_moves_every_parameter():
    layer = AffineCoupling(4, hidden=(8,))
    before = [p.clone() for p in layer.parameters()]
    perturb(layer)
    assert all(not torch.equal(a, b) for a, b in zip(before, layer.parameters(), strict=True))


def test_check_uses_codomain_points_for_bounded_codomains():
    check_bijector(Sigmoid(), torch.randn(6, dtype=torch.float64))


@given(strategies.tensors((2, 3), dtype=torch.float64))
def test_tensors_strategy_shapes(x):
    assert x.dtype == torch.float64 and x.shape[-2:] == (2, 3) and x.dim() <= 4


@given(strategies.bijectors(3, max_length=2))
def test_bijectors_strategy_builds_short_chains(chain):
    assert 1 <= len(chain) <= 2 and chain.event_dim == 1
