"""Quality of the flow demo's fits: slow, run with ``make test-slow``."""

import pytest
import torch

from sandflow import data, flows
from sandflow.demo.flows import digits_bits_per_dim, run_digits
from sandflow.demo.training import fit_flow


@pytest.mark.slow
def test_realnvp_on_eight_gaussians_is_within_005_nats_of_the_entropy():
    torch.manual_seed(0)
    target = data.toy("eight_gaussians")
    flow = flows.realnvp(2, layers=8, hidden=(128, 128))
    fit_flow(flow, lambda step: target.sample((1024,)), steps=8000, lr=1e-3)
    with torch.no_grad():
        nll = -flow().log_prob(target.sample((100_000,))).mean().item()
    assert nll - target.entropy().item() < 0.05


@pytest.mark.slow
def test_glow_on_digits_beats_a_diagonal_gaussian_by_half_a_bit(tmp_path):
    rows = {r["model"]: r["value"] for r in run_digits(tmp_path, steps=2500)}
    assert rows["glow"] < rows["diagonal Gaussian"] - 0.5


def test_bits_per_dim_of_the_uniform_density_is_log2_17():
    assert digits_bits_per_dim(torch.zeros(3)) == pytest.approx(4.0875, abs=1e-4)
