import pytest
import torch

from sandflow.bijectors import ActNorm


def test_first_inverse_pass_standardises_per_channel():
    norm = ActNorm(3)
    y = torch.randn(64, 3, 4, 4) * torch.tensor([1.0, 5.0, 0.1]).view(3, 1, 1) + 7
    x = norm.inv(y).detach()
    torch.testing.assert_close(x.mean((0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(x.std((0, 2, 3), correction=0), torch.ones(3), atol=1e-4, rtol=0)


def test_initialises_once():
    norm = ActNorm(2, event_dim=1)
    norm.inv(torch.randn(10, 2))
    state = {k: v.clone() for k, v in norm.state_dict().items()}
    norm.inv(torch.randn(10, 2) * 100)
    for key, value in norm.state_dict().items():
        assert torch.equal(value, state[key])


def test_forward_before_initialisation_is_the_identity():
    norm = ActNorm(2, event_dim=1)
    x = torch.randn(4, 2)
    assert torch.equal(norm(x), x) and not bool(norm.initialized)


def test_single_example_batch_gives_finite_parameters():
    norm = ActNorm(2, event_dim=1)
    with pytest.warns(UserWarning, match=r"ActNorm: channel\(s\) \[0, 1\].*batch shape \(1,\)"):
        x = norm.inv(torch.ones(1, 2))
    assert torch.isfinite(x).all() and torch.isfinite(norm.log_scale).all()
    assert torch.equal(norm.log_scale, torch.zeros(2))  # a safe scale of 1, not 1e-6


def test_log_det_counts_positions():
    norm = ActNorm(2)
    norm.inv(torch.randn(8, 2, 3, 3))
    _, log_det = norm.forward_and_log_det(torch.randn(5, 2, 3, 3))
    torch.testing.assert_close(log_det, (9 * norm.log_scale.sum()).expand(5))
