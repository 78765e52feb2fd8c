"""Continuous time: CNF log_prob against zuko, flow-matching steps against torchcfm.

* **log_prob.** ``sandflow.flows.cnf`` (torchdiffeq dopri5, exact trace)
  against zuko's free-form Jacobian transform (its own Dormand-Prince
  solver, exact trace) integrating **the same field** (one
  ``MLPVectorField`` 2 -> 3x64 -> 2, trained for a few hundred flow-matching
  steps on eight Gaussians) at the same tolerances, on 1,024 points, no
  gradients. Accuracy: mean absolute error of ``log_prob`` against a float64
  solve at ``atol = rtol = 1e-10``. Target: at least as fast, same accuracy.
* **Flow-matching step.** One training step (path sample, forward, backward,
  Adam) of ``sandflow.matching.flow_matching_loss`` against torchcfm's
  ``ConditionalFlowMatcher`` (independent pairs) and
  ``ExactOptimalTransportConditionalFlowMatcher`` (minibatch OT, POT's exact
  solver; ours is scipy's ``linear_sum_assignment``), same network, batch 256.
  Target: at least as fast.

One torch thread; candidates timed interleaved in round-robin blocks on the
process's CPU time (``benchmarks.timing``). ``python -m benchmarks.continuous``
writes ``benchmarks/results_continuous.md`` and its section of
``benchmarks/results.md``; ``python -m benchmarks.run`` includes it.
"""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import torch

from benchmarks.timing import interleaved, load_average
from sandflow import data, flows
from sandflow.matching import flow_matching_loss
from sandflow.train import fit

HERE = Path(__file__).parent
HEADING = "## Continuous time"
TOL = 1e-5
POINTS = 1024
BATCH = 256


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _trained_cnf() -> flows.Flow:
    torch.manual_seed(0)
    target = data.toy("eight_gaussians")
    flow = flows.cnf(2, hidden=(64, 64, 64), atol=TOL, rtol=TOL)
    fit(
        flow.bijector.vector_field,
        lambda field, x: flow_matching_loss(field, x),
        lambda step: target.sample((512,)),
        steps=400,
        lr=2e-3,
        progress=False,
    )
    return flow


def _zuko_log_prob(flow: flows.Flow):
    """zuko's FFJ transform over the same field, data (t = 1) to noise (t = 0), as zuko runs it."""
    from zuko.transforms import FreeFormJacobianTransform

    field = flow.bijector.vector_field
    transform = FreeFormJacobianTransform(
        f=lambda t, x: field(x, t), t0=1.0, t1=0.0, phi=(), atol=TOL, rtol=TOL, exact=True
    )
    base = torch.distributions.Normal(0.0, 1.0)

    def log_prob(x: torch.Tensor) -> torch.Tensor:
        z, ladj = transform.call_and_ladj(x)
        return base.log_prob(z).sum(-1) + ladj

    return log_prob


def log_prob_rows() -> list[str]:
    flow = _trained_cnf()
    x = data.toy("eight_gaussians").sample((POINTS,))
    sandflow_log_prob = flow().log_prob
    zuko_log_prob = _zuko_log_prob(flow)
    with torch.no_grad():
        reference_flow = flows.cnf(2, hidden=(64, 64, 64), atol=1e-10, rtol=1e-10).double()
        reference_flow.load_state_dict(flow.state_dict())
        reference = reference_flow().log_prob(x.double())
        errors = {
            "sandflow": (sandflow_log_prob(x).double() - reference).abs().mean().item(),
            "zuko": (zuko_log_prob(x).double() - reference).abs().mean().item(),
        }
        timings = interleaved(
            {
                "log_prob": {
                    "sandflow": lambda: sandflow_log_prob(x),
                    "zuko": lambda: zuko_log_prob(x),
                }
            }
        )
    ours, theirs = (timings.median(name, "log_prob") for name in ("sandflow", "zuko"))
    ratio = timings.ratio("sandflow", "zuko", "log_prob")
    return [
        f"| cnf log_prob, {POINTS} points, dopri5 atol=rtol={TOL:g}, exact trace, vs zuko "
        f"{_version('zuko')} FFJ transform (same field) | {ours:.3f} s | {theirs:.3f} s "
        f"| **{ratio:.2f}x** | >= 1.0x | {errors['sandflow']:.1e} / {errors['zuko']:.1e} |"
    ]


def matching_rows() -> list[str]:
    from torchcfm.conditional_flow_matching import (
        ConditionalFlowMatcher,
        ExactOptimalTransportConditionalFlowMatcher,
    )

    torch.manual_seed(0)
    field = flows.cnf(2, hidden=(64, 64, 64)).bijector.vector_field
    optimizer = torch.optim.Adam(field.parameters(), lr=1e-3)
    x1 = data.toy("eight_gaussians").sample((BATCH,))

    def step(loss: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def torchcfm_step(matcher: ConditionalFlowMatcher) -> None:
        t, xt, ut = matcher.sample_location_and_conditional_flow(torch.randn_like(x1), x1)
        step((field(xt, t) - ut).square().mean())

    independent, ot = (
        ConditionalFlowMatcher(sigma=0.0),
        ExactOptimalTransportConditionalFlowMatcher(),
    )
    work = {
        "independent": {
            "sandflow": lambda: step(flow_matching_loss(field, x1)),
            "torchcfm": lambda: torchcfm_step(independent),
        },
        "ot": {
            "sandflow": lambda: step(flow_matching_loss(field, x1, coupling="ot")),
            "torchcfm": lambda: torchcfm_step(ot),
        },
    }
    timings = interleaved(work)
    version = _version("torchcfm")
    names = {
        "independent": f"ConditionalFlowMatcher (torchcfm {version})",
        "ot": f"ExactOptimalTransportConditionalFlowMatcher (torchcfm {version}, POT)",
    }
    rows = []
    for op, name in names.items():
        ours, theirs = (1e3 * timings.median(who, op) for who in ("sandflow", "torchcfm"))
        rows.append(
            f"| flow-matching step, {op} coupling, MLP 3x64 on 2-D, batch {BATCH}, vs {name} "
            f"| {ours:.2f} ms | {theirs:.2f} ms "
            f"| **{timings.ratio('sandflow', 'torchcfm', op):.2f}x** | >= 1.0x | - |"
        )
    return rows


def main() -> str:
    """Run both cases; return the markdown section."""
    torch.set_num_threads(1)
    rows = log_prob_rows() + matching_rows()
    lines = [
        HEADING,
        "",
        f"* 1 torch thread; load average {load_average()}; torchdiffeq "
        f"{_version('torchdiffeq')}, zuko {_version('zuko')}, torchcfm {_version('torchcfm')}, "
        f"POT {_version('pot')}, scipy {_version('scipy')}",
        "* Ratio: reference time / sandflow time (above 1: sandflow faster), median of "
        "per-round ratios. Error: mean |log_prob - float64 solve at 1e-10|, sandflow / peer.",
        "",
        "| benchmark | sandflow | peer | ratio | target | log_prob error |",
        "|---|---:|---:|---:|---:|---:|",
        *rows,
    ]
    section = "\n".join(lines) + "\n"
    (HERE / "results_continuous.md").write_text(section)
    return section


def _splice(section: str) -> None:
    """Replace this benchmark's section of ``results.md`` (or append it), leaving the others."""
    path = HERE / "results.md"
    text = path.read_text() if path.exists() else "# sandflow benchmarks\n"
    pattern = re.compile(rf"^{re.escape(HEADING)}\n.*?(?=^#+ |\Z)", re.M | re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


if __name__ == "__main__":
    _splice(main())
    print((HERE / "results_continuous.md").read_text())
