"""Pure PyTorch modules: no NumPy, no scikit-learn. One file per model family."""

from hourglass.nn.dense import DenseAutoencoder, DenseConfig

__all__ = ["DenseAutoencoder", "DenseConfig"]
