"""Data: toy 2-D densities with known log-density and entropy, and the 8x8 digits images."""

from sandflow.data._discrete import (
    bits_per_dim,
    dequantize,
    quantize,
    to_symmetric,
    to_unit_interval,
)
from sandflow.data.digits import Digits, digits
from sandflow.data.toy import TOY_NAMES, ToyDensity, toy

__all__ = [
    "TOY_NAMES",
    "Digits",
    "ToyDensity",
    "bits_per_dim",
    "dequantize",
    "digits",
    "quantize",
    "to_symmetric",
    "to_unit_interval",
    "toy",
]
