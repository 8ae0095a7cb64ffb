"""hourglass: autoencoders for outlier detection, embeddings, clustering and denoising."""

from hourglass._version import __version__
from hourglass.estimators import (
    Autoencoder,
    AutoencoderClusterer,
    AutoencoderOutlierDetector,
    load,
)

__all__ = [
    "Autoencoder",
    "AutoencoderClusterer",
    "AutoencoderOutlierDetector",
    "__version__",
    "load",
]
