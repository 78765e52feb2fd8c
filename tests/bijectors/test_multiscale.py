import torch

from sandflow.bijectors import ActNorm, MultiscaleSplit
from sandflow.testing import perturb


def test_prior_starts_standard_normal():
    split = MultiscaleSplit(4, hidden=8)
    z = torch.randn(3, 4, 2, 2)
    y, log_det = split.forward_and_log_det(z)
    assert torch.equal(y, z) and torch.equal(log_det, torch.zeros(3))


def test_factored_half_is_gaussian_given_kept_half():
    split = perturb(MultiscaleSplit(4, hidden=8)).double()
    z = torch.randn(2, 4, 2, 2, dtype=torch.float64)
    y, log_det = split.forward_and_log_det(z)
    raw_log_sigma, mean = split.conditioner(y[:, :2]).chunk(2, dim=1)  # blocks: parameter p
    bound = split.transform.bound
    log_sigma = bound * torch.tanh(raw_log_sigma / bound)
    torch.testing.assert_close(log_det, log_sigma.sum((1, 2, 3)))
    torch.testing.assert_close(y[:, 2:], mean + log_sigma.exp() * z[:, 2:])


def test_inner_runs_on_the_kept_half():
    inner = perturb(ActNorm(2))
    split = MultiscaleSplit(4, inner, hidden=8)
    z = torch.randn(3, 4, 2, 2)
    y = split(z)
    torch.testing.assert_close(y[:, :2], inner(z[:, :2]))
