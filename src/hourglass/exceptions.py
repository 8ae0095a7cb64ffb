"""Every exception hourglass raises on purpose, in one place.

The tree::

    HourglassError                      base class of everything below
    ├── InvalidInputError(ValueError)   data passed to fit/transform/score is unusable
    │   └── UnsupportedByFamilyError    a family-only method (explain, sample, ...) was
    │                                   called on a model of another family
    ├── InvalidParameterError           a parameter, argument or CLI option has a bad value
    │                                   (also scikit-learn's ``InvalidParameterError``)
    ├── NotFittedError                  a method that needs a fitted model was called too early
    │                                   (also a :class:`sklearn.exceptions.NotFittedError`)
    ├── ModelFileError(ValueError)      a saved model is missing, truncated, tampered with,
    │   └── ModelVersionError           or written by a newer hourglass
    ├── DatasetError(OSError)           a data set could not be found, read or downloaded
    │   └── ChecksumError               a downloaded file does not match its SHA-256
    ├── TrainingError(RuntimeError)     training failed (e.g. the loss became NaN)
    └── NativeBuildError(RuntimeError)  the optional compiled training loop could not be
                                        built (no compiler or ninja)

Invalid *parameters* (``Autoencoder(latent_dim=0)``) raise scikit-learn's
``InvalidParameterError``, a :class:`ValueError`, from ``fit``, as every
scikit-learn estimator does. Bad values that its constraint tables cannot
express (two threshold rules at once, an unknown ``metric=`` of a method, a
``hourglass score`` option) raise :class:`InvalidParameterError`, its subclass,
so that ``except sklearn...InvalidParameterError`` catches every parameter
mistake and ``except InvalidInputError`` every data mistake. The command line
exits with code 2 for the first kind and 1 for the second.

Every message says what was expected, what came, and what to do about it.
"""

from __future__ import annotations

from sklearn.exceptions import NotFittedError as _SklearnNotFittedError
from sklearn.utils._param_validation import InvalidParameterError as _SklearnParameterError

__all__ = [
    "ChecksumError",
    "DatasetError",
    "HourglassError",
    "InvalidInputError",
    "InvalidParameterError",
    "ModelFileError",
    "ModelVersionError",
    "NativeBuildError",
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


class InvalidParameterError(HourglassError, _SklearnParameterError):  # type: ignore[misc]
    """A parameter, a method's argument or a command-line option has a value that cannot work.

    Also a :class:`ValueError` (and, as scikit-learn's, a :class:`TypeError`).
    """


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


class NativeBuildError(HourglassError, RuntimeError):
    """The compiled training loop could not be built (hourglass trains without it)."""
