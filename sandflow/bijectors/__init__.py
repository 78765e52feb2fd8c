"""Composable bijectors: invertible maps with a tractable log-Jacobian determinant."""

from sandflow.bijectors.actnorm import ActNorm
from sandflow.bijectors.autoregressive import MaskedAutoregressive
from sandflow.bijectors.base import Bijector, CheckedSettings, Conditioned
from sandflow.bijectors.checks import ShapeError
from sandflow.bijectors.compose import Chain, Invert
from sandflow.bijectors.continuous import ContinuousFlow
from sandflow.bijectors.conv1x1 import Conv1x1
from sandflow.bijectors.coupling import AdditiveCoupling, AffineCoupling, Coupling, SplineCoupling
from sandflow.bijectors.elementwise import Affine, Logit, Sigmoid
from sandflow.bijectors.maps import ElementwiseMap, Shift, SoftClampedAffine, soft_clamp
from sandflow.bijectors.multiscale import MultiscaleSplit
from sandflow.bijectors.permute import Permute, Reverse
from sandflow.bijectors.planar import Planar
from sandflow.bijectors.radial import Radial
from sandflow.bijectors.spline import RationalQuadraticSpline, rational_quadratic_spline
from sandflow.bijectors.squeeze import Squeeze

__all__ = [
    "ActNorm",
    "AdditiveCoupling",
    "Affine",
    "AffineCoupling",
    "Bijector",
    "Chain",
    "CheckedSettings",
    "Conditioned",
    "ContinuousFlow",
    "Conv1x1",
    "ElementwiseMap",
    "Coupling",
    "Invert",
    "Logit",
    "MaskedAutoregressive",
    "MultiscaleSplit",
    "Permute",
    "Planar",
    "Radial",
    "RationalQuadraticSpline",
    "Reverse",
    "ShapeError",
    "Shift",
    "Sigmoid",
    "SoftClampedAffine",
    "SplineCoupling",
    "Squeeze",
    "rational_quadratic_spline",
    "soft_clamp",
]
