"""Property-based verification of bijectors, for sandflow's own and for users' bijectors.

``check_bijector(bijector, x)`` asserts invertibility and the log-det against
autograd. ``sandflow.testing.strategies`` (it needs ``hypothesis``) holds
hypothesis strategies for inputs and for random chains.
"""

from sandflow.testing.check import autograd_log_det, check_bijector, perturb, tolerances

__all__ = ["autograd_log_det", "check_bijector", "perturb", "strategies", "tolerances"]
