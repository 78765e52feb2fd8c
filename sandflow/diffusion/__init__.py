"""Gaussian diffusion: noise schedules, the forward and reverse Markov chains, ELBO and samplers."""

from sandflow.diffusion.elbo import ELBO
from sandflow.diffusion.gaussian_diffusion import GaussianDiffusion
from sandflow.diffusion.schedule import NoiseSchedule

__all__ = ["ELBO", "GaussianDiffusion", "NoiseSchedule"]
