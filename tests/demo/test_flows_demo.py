"""Quality of the flow demo's fits: slow, run with ``make test-slow``."""

import pytest
import torch

from sandflow.demo.flows import TOYS, digits_bits_per_dim, run_digits, run_toy


@pytest.mark.slow
def test_realnvp_on_eight_gaussians_is_within_005_nats_of_the_entropy(tmp_path):
    rows = run_toy("eight_gaussians", tmp_path, **TOYS["eight_gaussians"])
    gap = next(r["value"] for r in rows if r["metric"] == "KL gap (nats)")
    assert gap < 0.05


@pytest.mark.slow
def test_glow_on_digits_beats_a_diagonal_gaussian_by_half_a_bit(tmp_path):
    rows = {r["model"]: r["value"] for r in run_digits(tmp_path)}
    assert rows["glow"] < rows["diagonal Gaussian"] - 0.5


def test_bits_per_dim_of_the_uniform_density_is_log2_17():
    assert digits_bits_per_dim(torch.zeros(3)) == pytest.approx(4.0875, abs=1e-4)
