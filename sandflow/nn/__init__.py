"""Networks: conditioners for coupling and autoregressive layers, denoisers for diffusion."""

from sandflow.nn.conv import ConvNet
from sandflow.nn.denoisers import MLPDenoiser, SinusoidalEmbedding, UNet
from sandflow.nn.made import MADE
from sandflow.nn.mlp import MLP

__all__ = ["MADE", "MLP", "ConvNet", "MLPDenoiser", "SinusoidalEmbedding", "UNet"]
