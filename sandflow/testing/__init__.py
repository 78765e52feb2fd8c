"""Property-based verification of any ``torch.distributions.Transform``.

``check_bijector(transform, x)`` asserts every property and raises the first
failure; ``inspect_bijector(transform, x)`` returns a :class:`Report` with one
named verdict per property (see :data:`CHECKS`). Both take sandflow's bijectors,
torch's, Pyro's and zuko's transforms. :class:`BijectorSuite` is a pytest base
class that runs each property as its own test; ``sandflow.testing.registry``
holds every sandflow bijector as a factory; ``sandflow.testing.strategies``
(it needs ``hypothesis``) holds strategies for inputs in a transform's domain
and for random chains.
"""

from sandflow.testing.check import (
    CHECKS,
    autograd_log_det,
    check_bijector,
    domain_inputs,
    inspect_bijector,
    perturb,
    tolerances,
)
from sandflow.testing.jacobian import jacobian, log_abs_det_jacobian
from sandflow.testing.report import CheckResult, Report

__all__ = [
    "CHECKS",
    "BijectorSuite",
    "CheckResult",
    "Report",
    "autograd_log_det",
    "check_bijector",
    "domain_inputs",
    "inspect_bijector",
    "jacobian",
    "log_abs_det_jacobian",
    "perturb",
    "registry",
    "strategies",
    "tolerances",
]


def __getattr__(name: str) -> object:
    """``BijectorSuite`` needs pytest, ``strategies`` hypothesis: imported on first use."""
    import importlib

    if name == "BijectorSuite":
        return importlib.import_module("sandflow.testing.suite").BijectorSuite
    if name in ("registry", "strategies"):
        return importlib.import_module(f"sandflow.testing.{name}")
    raise AttributeError(f"module 'sandflow.testing' has no attribute {name!r}")
