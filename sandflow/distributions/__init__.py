"""Distributions: flows by change of variables, Markov chains, Gaussian helpers."""

from sandflow.distributions.transformed import TransformedDistribution

__all__ = ["TransformedDistribution"]
