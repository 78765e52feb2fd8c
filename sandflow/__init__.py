"""sandflow: exact-likelihood generative models on PyTorch and Pyro."""

from sandflow import bijectors, distributions, flows

__all__ = ["bijectors", "distributions", "flows"]
__version__ = "0.1.0"
