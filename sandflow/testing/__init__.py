"""Property-based verification of bijectors, for sandflow's own and for users' bijectors.

``check_bijector(bijector, x)`` asserts invertibility and the log-det against
autograd; ``strategies`` holds hypothesis strategies for inputs and chains.
"""

from sandflow.testing import strategies
from sandflow.testing.check import autograd_log_det, check_bijector, perturb, tolerances

__all__ = ["autograd_log_det", "check_bijector", "perturb", "strategies", "tolerances"]
