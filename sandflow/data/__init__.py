"""Data: toy 2-D densities with known log-density and entropy, and the 8x8 digits images."""

from sandflow.data._discrete import (
    dequantize,
    dequantized_bits_per_dim,
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
    "dequantize",
    "dequantized_bits_per_dim",
    "digits",
    "quantize",
    "to_symmetric",
    "to_unit_interval",
    "toy",
]
