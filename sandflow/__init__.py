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
from sandflow.compiled import CompiledFlow, compile

__all__ = [
    "CompiledFlow",
    "bijectors",
    "compile",
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
