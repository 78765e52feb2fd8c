"""Networks: conditioners for coupling layers and denoisers for diffusion."""

from sandflow.nn.conv import ConvNet
from sandflow.nn.mlp import MLP

__all__ = ["MLP", "ConvNet"]
