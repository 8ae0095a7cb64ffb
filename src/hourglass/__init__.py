"""hourglass: autoencoders for outlier detection, embeddings, clustering and denoising."""

from hourglass._version import __version__
from hourglass.estimators import Autoencoder, AutoencoderOutlierDetector, load

__all__ = ["Autoencoder", "AutoencoderOutlierDetector", "__version__", "load"]
