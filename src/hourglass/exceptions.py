"""Every exception hourglass raises on purpose, in one place.

The tree::

    HourglassError                      base class of everything below
    ├── InvalidInputError(ValueError)   data passed to fit/transform/score is unusable
    │   └── UnsupportedByFamilyError    a family-only method (explain, sample, ...) was
    │                                   called on a model of another family
    ├── NotFittedError                  a method that needs a fitted model was called too early
    │                                   (also a :class:`sklearn.exceptions.NotFittedError`)
    ├── ModelFileError(ValueError)      a saved model is missing, truncated, tampered with,
    │   └── ModelVersionError           or written by a newer hourglass
    ├── DatasetError(OSError)           a data set could not be found, read or downloaded
    │   └── ChecksumError               a downloaded file does not match its SHA-256
    └── TrainingError(RuntimeError)     training failed (e.g. the loss became NaN)

Invalid *parameters* (``Autoencoder(latent_dim=0)``) raise scikit-learn's
``InvalidParameterError``, a :class:`ValueError`, from ``fit``, as every
scikit-learn estimator does.

Every message says what was expected, what came, and what to do about it.
"""

from __future__ import annotations

from sklearn.exceptions import NotFittedError as _SklearnNotFittedError

__all__ = [
    "ChecksumError",
    "DatasetError",
    "HourglassError",
    "InvalidInputError",
    "ModelFileError",
    "ModelVersionError",
    "NotFittedError",
    "TrainingError",
    "UnsupportedByFamilyError",
]


class HourglassError(Exception):
    """Base class of all errors hourglass raises deliberately."""


class InvalidInputError(HourglassError, ValueError):
    """The data given to an estimator, loader or CLI verb cannot be used as is."""


class UnsupportedByFamilyError(InvalidInputError):
    """A method only some model families have (``explain``, ``sample``, ...) was called."""


class NotFittedError(HourglassError, _SklearnNotFittedError):  # type: ignore[misc]
    """A method that needs a fitted model was called before ``fit``."""


class ModelFileError(HourglassError, ValueError):
    """A saved model directory is missing, incomplete, corrupted or inconsistent."""


class ModelVersionError(ModelFileError):
    """A saved model was written by a newer, incompatible version of hourglass."""


class DatasetError(HourglassError, OSError):
    """A data set could not be located, read or downloaded."""


class ChecksumError(DatasetError):
    """A downloaded file's SHA-256 digest does not match the expected one."""


class TrainingError(HourglassError, RuntimeError):
    """Training could not produce a usable model (for example, the loss diverged)."""
