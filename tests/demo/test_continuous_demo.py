import math

import pytest

from sandflow.demo import continuous as demo


def test_quick_demo_returns_rows_and_writes_the_figure(tmp_path, one_thread):
    rows = demo.run(tmp_path, quick=True)
    assert {r["data"] for r in rows} == {"eight_gaussians", "digits"}
    for row in rows:
        assert {"model", "data", "metric", "value"} <= set(row)
        assert math.isfinite(row["value"])
    toy = {r["metric"]: r["value"] for r in rows if r["data"] == "eight_gaussians"}
    assert toy["KL gap (nats)"] == pytest.approx(toy["test NLL (nats)"] - 1.6981, abs=1e-3)
    (digits,) = [r for r in rows if r["data"] == "digits"]
    assert 0 < digits["value"] < 10 and 0 < digits["reference"] < 10
    png = (tmp_path / "cnf_eight_gaussians.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_flow_matching_cnf_reaches_the_entropy_of_eight_gaussians(tmp_path):
    """About two minutes on two CPU cores: KL gap within 0.05 nats of the true entropy."""
    rows = demo.run_toy("eight_gaussians", tmp_path, **demo.TOY)
    gap = {r["metric"]: r["value"] for r in rows}["KL gap (nats)"]
    assert 0 < gap < 0.05
