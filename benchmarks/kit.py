"""The verification kit on every transform that torch, Pyro and zuko export.

Each transform is built with small, reasonable sizes (3 features, 3x4x4
images, 3x3 matrices), its parameters perturbed by 0.1, and checked by
``sandflow.testing.inspect_bijector`` in float64 on a batch of 4 inputs drawn
from its own domain; transforms that declare ``bijective = False`` or ship no
inverse are also checked forward-only. Writes ``benchmarks/results_kit.md``
(transform | checks passed | failures with measured errors | time); what each
failure means is in ``docs/kit_findings.rst``.

Usage: ``python -m benchmarks.kit`` (part of ``make bench``).
"""

from __future__ import annotations

import time
from pathlib import Path

import pyro.distributions.transforms as P
import torch
from torch import nn
from torch.distributions import Normal
from torch.distributions import transforms as T

from sandflow.testing import domain_inputs, inspect_bijector, perturb

HERE = Path(__file__).parent
F64 = torch.float64


def _r(*shape):
    return torch.randn(*shape, dtype=F64)


def _positive_definite():
    a = _r(4, 3, 3)
    return a @ a.mT + 3 * torch.eye(3, dtype=F64)


def _torch_cases():
    return {
        "AbsTransform": (T.AbsTransform, (3,)),
        "AffineTransform": (lambda: T.AffineTransform(_r(3), _r(3).exp()), (3,)),
        "CatTransform": (
            lambda: T.CatTransform([T.ExpTransform(), T.AffineTransform(1.0, 2.0)], -1, [2, 1]),
            (3,),
        ),
        "ComposeTransform": (
            lambda: T.ComposeTransform([T.AffineTransform(0.5, 2.0), T.SigmoidTransform()]),
            (3,),
        ),
        "CorrCholeskyTransform": (T.CorrCholeskyTransform, (3,)),
        "CumulativeDistributionTransform": (
            lambda: T.CumulativeDistributionTransform(Normal(_r(3), _r(3).exp())),
            (3,),
        ),
        "ExpTransform": (T.ExpTransform, (3,)),
        "IndependentTransform": (lambda: T.IndependentTransform(T.TanhTransform(), 1), (3,)),
        "LowerCholeskyTransform": (T.LowerCholeskyTransform, (3, 3)),
        "PositiveDefiniteTransform": (T.PositiveDefiniteTransform, (3, 3)),
        "PowerTransform": (lambda: T.PowerTransform(torch.tensor(1.7, dtype=F64)), (3,)),
        "ReshapeTransform": (lambda: T.ReshapeTransform((6,), (2, 3)), (6,)),
        "SigmoidTransform": (T.SigmoidTransform, (3,)),
        "SoftplusTransform": (T.SoftplusTransform, (3,)),
        "TanhTransform": (T.TanhTransform, (3,)),
        "SoftmaxTransform": (T.SoftmaxTransform, (3,)),
        "StackTransform": (
            lambda: T.StackTransform([T.ExpTransform(), T.TanhTransform()], dim=-1),
            (2,),
        ),
        "StickBreakingTransform": (T.StickBreakingTransform, (3,)),
        "identity_transform": (lambda: T.identity_transform, (3,)),
    }


def _pyro_cases():
    c = 2  # context features of the conditional ones
    return {
        "AffineAutoregressive": (lambda: P.affine_autoregressive(3), (3,)),
        "AffineCoupling": (lambda: P.affine_coupling(3), (3,)),
        "BatchNorm": (lambda: P.batchnorm(3), (3,)),
        "BlockAutoregressive": (lambda: P.block_autoregressive(3), (3,)),
        "CholeskyTransform": (P.CholeskyTransform, (3, 3), _positive_definite),
        "ComposeTransformModule": (
            lambda: P.ComposeTransformModule([P.affine_coupling(3), P.permute(3)]),
            (3,),
        ),
        "CorrLCholeskyTransform": (P.CorrLCholeskyTransform, (3,)),
        "CorrMatrixCholeskyTransform": (P.CorrMatrixCholeskyTransform, (3, 3)),
        "DiscreteCosineTransform": (P.DiscreteCosineTransform, (4,)),
        "ELUTransform": (P.ELUTransform, (3,)),
        "GeneralizedChannelPermute": (lambda: P.generalized_channel_permute(channels=3), (3, 4, 4)),
        "HaarTransform": (P.HaarTransform, (4,)),
        "Householder": (lambda: P.householder(3, count_transforms=2), (3,)),
        "LeakyReLUTransform": (P.LeakyReLUTransform, (3,)),
        "LowerCholeskyAffine": (
            lambda: P.LowerCholeskyAffine(_r(3), torch.eye(3, dtype=F64) + _r(3, 3).tril(-1)),
            (3,),
        ),
        "MatrixExponential": (lambda: P.matrix_exponential(3), (3,)),
        "NeuralAutoregressive": (lambda: P.neural_autoregressive(3), (3,)),
        "Normalize": (P.Normalize, (3,)),
        "OrderedTransform": (P.OrderedTransform, (3,)),
        "Permute": (lambda: P.permute(3, torch.tensor([2, 0, 1])), (3,)),
        "Planar": (lambda: P.planar(3), (3,)),
        "Polynomial": (lambda: P.polynomial(3), (3,)),
        "PositivePowerTransform": (
            lambda: P.PositivePowerTransform(torch.tensor(1.7, dtype=F64)),
            (3,),
        ),
        "Radial": (lambda: P.radial(3), (3,)),
        "SimplexToOrderedTransform": (P.SimplexToOrderedTransform, (3,)),
        "SoftplusLowerCholeskyTransform": (P.SoftplusLowerCholeskyTransform, (3, 3)),
        "SoftplusTransform": (P.SoftplusTransform, (3,)),
        "Spline": (lambda: P.spline(3), (3,)),
        "SplineAutoregressive": (lambda: P.spline_autoregressive(3), (3,)),
        "SplineCoupling": (lambda: P.spline_coupling(3), (3,)),
        "Sylvester": (lambda: P.sylvester(3), (3,)),
        "ConditionalAffineAutoregressive": (
            lambda: P.conditional_affine_autoregressive(3, c),
            (3,),
        ),
        "ConditionalAffineCoupling": (lambda: P.conditional_affine_coupling(3, c), (3,)),
        "ConditionalGeneralizedChannelPermute": (
            lambda: P.conditional_generalized_channel_permute(c, 3),
            (3, 4, 4),
        ),
        "ConditionalHouseholder": (lambda: P.conditional_householder(3, c), (3,)),
        "ConditionalMatrixExponential": (lambda: P.conditional_matrix_exponential(3, c), (3,)),
        "ConditionalNeuralAutoregressive": (
            lambda: P.conditional_neural_autoregressive(3, c),
            (3,),
        ),
        "ConditionalPlanar": (lambda: P.conditional_planar(3, c), (3,)),
        "ConditionalRadial": (lambda: P.conditional_radial(3, c), (3,)),
        "ConditionalSpline": (lambda: P.conditional_spline(3, c), (3,)),
        "ConditionalSplineAutoregressive": (
            lambda: P.conditional_spline_autoregressive(3, c),
            (3,),
        ),
    }


def _zuko_cases():
    import zuko
    from zuko import transforms as Z

    k = 5  # bins, knots, polynomial degrees
    return {
        "AdditiveTransform": (lambda: Z.AdditiveTransform(_r(3)), (3,)),
        "AutoregressiveTransform (MAF)": (
            lambda: zuko.flows.MAF(3, transforms=1, hidden_features=(16,)).transform.double(),
            (3,),
        ),
        "BernsteinTransform": (lambda: Z.BernsteinTransform(_r(3, k)), (3,)),
        "BoundedBernsteinTransform": (lambda: Z.BoundedBernsteinTransform(_r(3, k)), (3,)),
        "CircularShiftTransform": (lambda: Z.CircularShiftTransform(bound=3.0), (3,)),
        "ComposedTransform": (
            lambda: Z.ComposedTransform(
                Z.MonotonicAffineTransform(_r(3), _r(3)), T.TanhTransform()
            ),
            (3,),
        ),
        "CosTransform": (Z.CosTransform, (3,)),
        "CouplingTransform (RealNVP)": (
            lambda: zuko.flows.RealNVP(3, transforms=1, hidden_features=(16,)).transform.double(),
            (3,),
        ),
        "DependentTransform": (
            lambda: Z.DependentTransform(Z.SignedPowerTransform(_r(3)), 1),
            (3,),
        ),
        "FreeFormJacobianTransform (CNF)": (
            lambda: zuko.flows.CNF(3, hidden_features=(16,)).transform.double(),
            (3,),
        ),
        "GaussianizationTransform": (
            lambda: Z.GaussianizationTransform(_r(3, k), _r(3, k)),
            (3,),
        ),
        "IdentityTransform": (Z.IdentityTransform, (3,)),
        "LULinearTransform": (lambda: Z.LULinearTransform(_r(3, 3)), (3,)),
        "MonotonicAffineTransform": (lambda: Z.MonotonicAffineTransform(_r(3), _r(3)), (3,)),
        "MonotonicRQSTransform": (
            lambda: Z.MonotonicRQSTransform(_r(3, k), _r(3, k), _r(3, k - 1)),
            (3,),
        ),
        "MonotonicTransform": (
            lambda: Z.MonotonicTransform(lambda x: x + 0.3 * torch.tanh(x)),
            (3,),
        ),
        "PermutationTransform": (lambda: Z.PermutationTransform(torch.tensor([2, 0, 1])), (3,)),
        "RotationTransform": (lambda: Z.RotationTransform(_r(3, 3)), (3,)),
        "SOSPolynomialTransform": (lambda: Z.SOSPolynomialTransform(_r(3, 2, 3)), (3,)),
        "SignedPowerTransform": (lambda: Z.SignedPowerTransform(_r(3)), (3,)),
        "SinTransform": (Z.SinTransform, (3,)),
        "SoftclipTransform": (lambda: Z.SoftclipTransform(bound=3.0), (3,)),
        "UnconstrainedMonotonicTransform": (
            lambda: Z.UnconstrainedMonotonicTransform(lambda x: torch.exp(-(x**2)) + 0.5),
            (3,),
        ),
    }


def _failures(report) -> str:
    parts = []
    for r in report.failures:
        numbers = f" {r.error:.1e} > {r.tolerance:.1e}" if r.error is not None else ""
        detail = " ".join(r.detail.split())[:90]
        parts.append(f"{r.name}{numbers}: {detail}".replace("|", "\\|"))
    return "<br>".join(parts) or "—"


def _check(library, name, build, event_shape, inputs=None):
    torch.manual_seed(0)
    transform = build()
    if isinstance(transform, nn.Module):
        transform = perturb(transform.double(), scale=0.1)
    context = None
    if hasattr(transform, "condition") and not isinstance(transform, T.Transform):
        context = torch.randn(4, 2, dtype=F64)
    domain = getattr(transform, "domain", None)
    if domain is None:  # conditional Pyro module or a zuko lazy transform: real inputs
        domain = torch.distributions.constraints.real
    x = (
        domain_inputs(domain, event_shape, batch_shape=(4,), dtype=F64)
        if inputs is None
        else inputs()
    )
    bijective = getattr(transform, "bijective", True)
    report = inspect_bijector(transform, x, context=context, inverse=bijective)
    row = {
        "library": library,
        "transform": name,
        "passed": f"{report.count('passed')}/{report.count('passed') + report.count('failed')}",
        "failures": _failures(report),
        "seconds": report.seconds,
        "forward_only": "",
    }
    if not report.passed and bijective and report["round_trip_x"].status == "failed":
        forward = inspect_bijector(transform, x, context=context, inverse=False)
        row["forward_only"] = (
            "passes" if forward.passed else ", ".join(r.name for r in forward.failures)
        )
    return row


def main() -> str:
    torch.set_num_threads(1)
    libraries = {"torch": _torch_cases, "pyro": _pyro_cases}
    try:
        import zuko  # noqa: F401

        libraries["zuko"] = _zuko_cases
    except ImportError:
        print("zuko is not installed: its transforms are skipped (pip install zuko)")
    rows = []
    for library, cases in libraries.items():
        for name, case in cases().items():
            start = time.perf_counter()
            try:
                rows.append(_check(library, name, *case))
            except Exception as error:  # noqa: BLE001 - a row per transform, whatever happens
                rows.append(
                    {
                        "library": library,
                        "transform": name,
                        "passed": "—",
                        "failures": f"kit could not run: {type(error).__name__}: {error}"[:200],
                        "seconds": time.perf_counter() - start,
                        "forward_only": "",
                    }
                )
            print(f"{library:6s} {name:40s} {rows[-1]['passed']:6s} {rows[-1]['seconds']:.2f} s")
    clean = sum(r["failures"] == "—" for r in rows)
    lines = [
        "## The verification kit on torch, Pyro and zuko transforms",
        "",
        f"torch {torch.__version__}, pyro {__import__('pyro').__version__}"
        + (f", zuko {__import__('zuko').__version__}" if "zuko" in libraries else "")
        + f"; float64, batch 4, parameters perturbed by 0.1. {clean} of {len(rows)} transforms "
        "pass every applicable check; each failure is explained in docs/kit_findings.rst.",
        "",
        "| library | transform | checks passed | failures (error > tolerance: detail) "
        "| forward-only | time (s) |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['library']} | {r['transform']} | {r['passed']} | {r['failures']} "
        f"| {r['forward_only']} | {r['seconds']:.2f} |"
        for r in rows
    ]
    text = "\n".join(lines) + "\n"
    (HERE / "results_kit.md").write_text(text)
    return text


if __name__ == "__main__":
    main()
