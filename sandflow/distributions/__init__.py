"""Distributions: flows by change of variables, Markov chains, Gaussian helpers."""

from sandflow.distributions.gaussian import (
    DiscretizedNormal,
    discretized_normal_log_prob,
    normal_kl,
)
from sandflow.distributions.markov_chain import MarkovChain
from sandflow.distributions.normal import DiagonalNormal
from sandflow.distributions.transformed import TransformedDistribution

__all__ = [
    "DiagonalNormal",
    "DiscretizedNormal",
    "MarkovChain",
    "TransformedDistribution",
    "discretized_normal_log_prob",
    "normal_kl",
]
