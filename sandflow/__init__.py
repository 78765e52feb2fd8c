"""sandflow: exact-likelihood generative models on PyTorch and Pyro."""

from sandflow import bijectors, data, diffusion, distributions, flows, nn, plot, testing

__all__ = [
    "bijectors",
    "data",
    "diffusion",
    "distributions",
    "flows",
    "nn",
    "plot",
    "testing",
]
__version__ = "0.1.0"
