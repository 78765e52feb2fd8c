"""Composable bijectors: invertible maps with a tractable log-Jacobian determinant."""

from sandflow.bijectors.actnorm import ActNorm
from sandflow.bijectors.autoregressive import MaskedAutoregressive
from sandflow.bijectors.base import Bijector, ConditionalBijector, Conditioned, ShapeError
from sandflow.bijectors.compose import Chain, Invert
from sandflow.bijectors.conv1x1 import Conv1x1
from sandflow.bijectors.coupling import AdditiveCoupling, AffineCoupling, Coupling
from sandflow.bijectors.elementwise import Affine, Logit, Sigmoid
from sandflow.bijectors.multiscale import MultiscaleSplit
from sandflow.bijectors.permute import Permute, Reverse
from sandflow.bijectors.planar import Planar
from sandflow.bijectors.radial import Radial
from sandflow.bijectors.spline import SplineCoupling, rational_quadratic_spline
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
    "MaskedAutoregressive",
    "MultiscaleSplit",
    "Permute",
    "Planar",
    "Radial",
    "Reverse",
    "ShapeError",
    "Sigmoid",
    "SplineCoupling",
    "Squeeze",
    "rational_quadratic_spline",
]
