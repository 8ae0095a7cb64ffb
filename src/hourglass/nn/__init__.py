"""Pure PyTorch modules: no NumPy, no scikit-learn. One file per model family."""

from hourglass.nn.base import ReconstructionModule
from hourglass.nn.conv import ConvAutoencoder, ConvConfig
from hourglass.nn.dense import DenseAutoencoder, DenseConfig
from hourglass.nn.variational import VariationalAutoencoder

__all__ = [
    "ConvAutoencoder",
    "ConvConfig",
    "DenseAutoencoder",
    "DenseConfig",
    "ReconstructionModule",
    "VariationalAutoencoder",
]
