import math

import pytest

from sandflow.demo import diffusion as demo


def check_figures(out):
    for name in ("diffusion_elbo_terms.png", "diffusion_reverse_chain.png"):
        png = (out / name).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000, name


def rows_by_metric(rows, data):
    return {r["metric"].split(" (")[0].split(",")[0]: r for r in rows if r["data"] == data}


def test_quick_demo_returns_rows_and_writes_figures(tmp_path, one_thread):
    rows = demo.run(tmp_path, quick=True)
    assert {r["data"] for r in rows} == {"eight_gaussians", "digits"}
    for row in rows:
        assert set(row) == {"model", "data", "metric", "value", "reference"}
        assert math.isfinite(row["value"]) and math.isfinite(row["reference"])
    toy = rows_by_metric(rows, "eight_gaussians")
    entropy = toy["test NLL bound"]["reference"]
    assert entropy == pytest.approx(1.6981, abs=1e-3)
    assert toy["KL gap bound"]["value"] == pytest.approx(toy["test NLL bound"]["value"] - entropy)
    digits = rows_by_metric(rows, "digits")["test bits/dim"]
    assert 0 < digits["value"] < 20 and digits["reference"] == pytest.approx(2.42, abs=0.01)
    check_figures(tmp_path)


@pytest.mark.slow
def test_full_demo_quality(tmp_path):
    rows = demo.run(tmp_path)
    toy = rows_by_metric(rows, "eight_gaussians")
    # the exact all-steps ELBO bounds the test NLL within 0.25 nats of the true entropy
    assert 0 < toy["KL gap bound"]["value"] < 0.25
    cross = toy["samples' cross-entropy under the true density"]
    assert cross["value"] == pytest.approx(cross["reference"], abs=0.3)
    digits = rows_by_metric(rows, "digits")["test bits/dim"]
    # better than independent pixels (2.42 bits/dim) and far from uniform (log2 17 = 4.09)
    assert digits["value"] < digits["reference"]
    check_figures(tmp_path)
