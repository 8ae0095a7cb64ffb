"""scikit-learn faces of the models: validate, train, score, save.

The estimators keep the scikit-learn contract (parameters, ``fit``, fitted
attributes ending in ``_``) and delegate what depends on the kind of model to
its family (:mod:`hourglass.families`, ``family_``).
"""

from __future__ import annotations

import os
from typing import Any

from hourglass.estimators.autoencoder import Autoencoder
from hourglass.estimators.clusterer import AutoencoderClusterer
from hourglass.estimators.outlier import AutoencoderOutlierDetector

__all__ = ["Autoencoder", "AutoencoderClusterer", "AutoencoderOutlierDetector", "load"]

_CLASSES: dict[str, Any] = {
    "Autoencoder": Autoencoder,
    "AutoencoderClusterer": AutoencoderClusterer,
    "AutoencoderOutlierDetector": AutoencoderOutlierDetector,
}


def load(path: str | os.PathLike[str], *, device: str | None = None) -> Any:
    """Load any model saved by hourglass, whatever its class.

    Parameters
    ----------
    path : str or path-like
        A directory written by ``save`` (or ``hourglass train``).
    device : str, optional
        Overrides the saved ``device`` parameter.

    Returns
    -------
    Autoencoder, AutoencoderOutlierDetector or AutoencoderClusterer
        The fitted estimator.
    """
    from hourglass import persistence
    from hourglass.exceptions import ModelFileError

    class_name = persistence.model_class_name(path)  # the weights are read once, below
    if class_name not in _CLASSES:
        raise ModelFileError(
            f"{path} holds a model of class {class_name!r}, which this hourglass does not "
            "know; upgrade hourglass to load it."
        )
    return _CLASSES[class_name].load(path, device=device)
