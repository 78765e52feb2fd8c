"""Composable bijectors: invertible maps with a tractable log-Jacobian determinant."""

from sandflow.bijectors.actnorm import ActNorm
from sandflow.bijectors.base import Bijector, ConditionalBijector, Conditioned, ShapeError
from sandflow.bijectors.compose import Chain, Invert
from sandflow.bijectors.conv1x1 import Conv1x1
from sandflow.bijectors.coupling import AdditiveCoupling, AffineCoupling, Coupling
from sandflow.bijectors.elementwise import Affine, Logit, Sigmoid
from sandflow.bijectors.multiscale import MultiscaleSplit
from sandflow.bijectors.permute import Permute, Reverse
from sandflow.bijectors.squeeze import Squeeze

__all__ = [
    "ActNorm",
    "AdditiveCoupling",
    "Affine",
    "AffineCoupling",
    "Bijector",
    "Chain",
    "ConditionalBijector",
    "Conditioned",
    "Conv1x1",
    "Coupling",
    "Invert",
    "Logit",
    "MultiscaleSplit",
    "Permute",
    "Reverse",
    "ShapeError",
    "Sigmoid",
    "Squeeze",
]
