import math

import pytest
import torch

from sandflow.bijectors import Affine, Logit, ShapeError, Sigmoid


def test_affine_log_det_counts_broadcast_entries():
    bij = Affine(torch.zeros(3, 1, 1), torch.full((3, 1, 1), 2.0), event_dim=3)
    _, log_det = bij.forward_and_log_det(torch.randn(5, 3, 4, 4))
    torch.testing.assert_close(log_det, torch.full((5,), 48 * math.log(2.0)))


def test_affine_negative_scale():
    bij = Affine(1.0, -2.0)
    y, log_det = bij.forward_and_log_det(torch.tensor([1.0]))
    assert y.item() == -1.0 and log_det.item() == pytest.approx(math.log(2.0))


def test_affine_learnable_parameters():
    bij = Affine(torch.zeros(2), torch.ones(2), event_dim=1, learnable=True)
    assert {n for n, _ in bij.named_parameters()} == {"loc", "log_scale"}


def test_affine_rejects_zero_scale_and_batch_parameters():
    with pytest.raises(ValueError, match="non-zero"):
        Affine(0.0, 0.0)
    with pytest.raises(ValueError, match="at most event_dim=0"):
        Affine(torch.zeros(3), 1.0)


def test_affine_shape_mismatch_is_named():
    with pytest.raises(ShapeError, match=r"Affine was built for 3 features .* got shape \(2, 4\)"):
        Affine(torch.zeros(3), torch.ones(3), event_dim=1)(torch.randn(2, 4))
    with pytest.raises(ShapeError, match=r"do not broadcast to the event shape \(2, 4\)"):
        Affine(torch.zeros(1, 3), torch.ones(1, 3), event_dim=2)(torch.randn(2, 4))


def test_sigmoid_log_det_is_stable_far_out():
    _, log_det = Sigmoid().forward_and_log_det(torch.tensor([-200.0, 0.0, 200.0]))
    torch.testing.assert_close(log_det, torch.tensor([-200.0, math.log(0.25), -200.0]))


@pytest.mark.parametrize("value", [0.0, 1.0, 1.5, -0.1, float("inf")])
def test_logit_rejects_out_of_support_values(value):
    with pytest.raises(ValueError, match="strictly inside \\(0, 1\\); got out-of-support"):
        Logit()(torch.tensor([0.5, value]))


def test_sigmoid_inverse_rejects_out_of_support_values():
    with pytest.raises(ValueError, match="Sigmoid.inverse needs values strictly inside"):
        Sigmoid().inv(torch.tensor([2.0]))
