"""Networks: conditioners for coupling and autoregressive layers, denoisers, vector fields."""

from sandflow.nn.conv import ConvNet
from sandflow.nn.denoisers import MLPDenoiser, SinusoidalEmbedding, UNet
from sandflow.nn.made import MADE
from sandflow.nn.mlp import MLP
from sandflow.nn.vector_field import MLPVectorField

__all__ = ["MADE", "MLP", "ConvNet", "MLPDenoiser", "MLPVectorField", "SinusoidalEmbedding", "UNet"]
