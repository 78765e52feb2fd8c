"""sandflow: exact-likelihood generative models on PyTorch and Pyro."""

from sandflow import (
    bijectors,
    data,
    diffusion,
    distributions,
    flows,
    matching,
    nn,
    plot,
    testing,
    train,
)

__all__ = [
    "bijectors",
    "data",
    "diffusion",
    "distributions",
    "flows",
    "matching",
    "nn",
    "plot",
    "testing",
    "train",
]
__version__ = "0.1.0"
