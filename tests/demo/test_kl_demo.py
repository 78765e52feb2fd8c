import math

import pytest

from sandflow.demo import kl


def _values(rows):
    return {(row["model"], row["metric"]): row["value"] for row in rows}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("kl")
    return out, kl.run(out, quick=True)


def test_rows_and_figure(quick_run):
    out, rows = quick_run
    assert len(rows) == 12
    assert all(set(row) == {"model", "data", "metric", "value", "reference"} for row in rows)
    assert all(math.isfinite(row["value"]) for row in rows)
    assert (out / "kl_two_gaussians.png").stat().st_size > 10_000


def test_forward_kl_gaussian_sits_between_the_modes(quick_run):
    values = _values(quick_run[1])
    # moment matching: KL(p || q) = log(2 pi e) + log(4.25 * 0.25) / 2 - H(p) = 0.7236
    assert values["gaussian, forward KL", "KL(p || q) (nats)"] == pytest.approx(0.7236, abs=0.03)
    assert values["gaussian, forward KL", "q mass at x > 0"] == pytest.approx(0.5, abs=0.03)
    # ... and puts its mass where p has none: a large reverse KL
    assert values["gaussian, forward KL", "KL(q || p) (nats)"] > 1.8


def test_reverse_kl_gaussian_sits_on_one_mode(quick_run):
    values = _values(quick_run[1])
    assert values["gaussian, reverse KL", "KL(q || p) (nats)"] == pytest.approx(
        math.log(2), abs=0.01
    )
    mass = values["gaussian, reverse KL", "q mass at x > 0"]
    assert mass > 0.99 or mass < 0.01
    # ... and misses the other mode entirely: a huge forward KL
    assert values["gaussian, reverse KL", "KL(p || q) (nats)"] > 10


@pytest.mark.slow
def test_full_run_flows_fit_both_ways(tmp_path):
    values = _values(kl.run(tmp_path))
    assert values["realnvp, forward KL", "KL(p || q) (nats)"] < 0.05  # measured 0.017
    assert values["realnvp, reverse KL", "KL(q || p) (nats)"] < 0.06  # measured 0.025
    assert values["realnvp, forward KL", "q mass at x > 0"] == pytest.approx(0.5, abs=0.02)
