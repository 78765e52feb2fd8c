import pytest
import torch

from benchmarks import flows, libraries, plain, report, timing
from sandflow import flows as sandflow_flows
from sandflow.testing import perturb


def test_plain_realnvp_computes_what_sandflow_computes():
    flow = perturb(sandflow_flows.realnvp(4, layers=3, hidden=(8, 8)))
    twin = plain.RealNVP(4, 3, (8, 8))
    with torch.no_grad():
        for ours, theirs in zip(flow.parameters(), twin.parameters(), strict=True):
            theirs.copy_(ours)
    x = torch.randn(5, 4)
    torch.testing.assert_close(twin.log_prob(x), flow().log_prob(x))


def test_interleaved_times_every_candidate_every_round_and_ratios_are_per_round():
    work = {"op": {"a": lambda: sum(range(100)), "b": lambda: sum(range(1000))}}
    timings = timing.interleaved(work, rounds=3, block_seconds=0.002, warmup=1, min_calls=1)
    assert len(timings.measured["a", "op"]) == len(timings.wall["b", "op"]) == 3
    ratios = timings.ratios("a", "b", "op")
    assert [round(r, 9) for r in ratios] == [
        round(b / a, 9)
        for a, b in zip(timings.measured["a", "op"], timings.measured["b", "op"], strict=True)
    ]
    assert timings.ratio("a", "b", "op") > 1  # a does a tenth of b's work
    assert timings.ratio("a", "missing", "op") is None


def test_a_recompilation_inside_the_timed_rounds_is_an_error(monkeypatch):
    torch._dynamo.reset()
    double = torch.compile(lambda x: 2 * x, backend="eager", fullgraph=True)
    size, calibrate_once = [1], timing.calibrate  # warm-up on one shape, timed rounds on another

    def calibrate(*args, **kwargs):
        iters = calibrate_once(*args, **kwargs)
        size[0] = 2
        return iters

    monkeypatch.setattr(timing, "calibrate", calibrate)
    work = {"op": {"a": lambda: double(torch.ones(size[0], 3))}}
    with pytest.raises(Exception, match="[Rr]ecompil"):
        timing.interleaved(work, rounds=2, block_seconds=0.0, warmup=1, min_calls=1)


def test_a_case_runs_end_to_end_and_reports_ratios(monkeypatch):
    monkeypatch.setattr(flows, "BLOCK_SECONDS", 0.002)
    case = flows.Case(
        title="RealNVP D=4 (tiny)",
        batch=8,
        data=flows._vector_data(4),
        builders={
            "sandflow": lambda device: libraries.realnvp_sandflow(4, (8,), 2, device=device),
            "plain torch": lambda device: libraries.realnvp_plain(4, (8,), 2, device=device),
        },
        columns=("sandflow", "plain torch", "zuko"),
    )
    flows.run_case(case, torch.device("cpu"), rounds=2)
    text = flows.case_table(case)
    assert "| training step (samples/s) |" in text
    row = next(line for line in text.splitlines() if line.startswith("| log_prob latency"))
    assert row.count("x)") == 1 and row.endswith("| n/a |")  # the reference has no ratio
    lines = flows.verdicts([case]).splitlines()
    assert len(lines) == 3 and lines[1].startswith("* **Not measured**")


def test_report_cells_and_verdicts():
    assert report.cell(12345.6, 1.234) == "12,346 (1.23x)"
    assert report.cell(12.34, None) == "12.3"
    assert report.cell(None, None, "not installed (zuko)") == "not installed (zuko)"
    assert report.verdict("fast", []) == "* **Met**: fast."
    assert report.verdict("fast", ["A at 0.90x"]) == "* **Missed**: fast; short on A at 0.90x."
    assert report.table(["", "a"], [["x", "1"]]).splitlines()[1] == "|---|---:|"
