"""Turning user data (NumPy, torch, pandas, lists) into validated arrays.

Floating-point and integer data become float32. uint8 data are pixel
intensities: they stay uint8 (four times smaller) and are divided by 255 batch
by batch, on their way into the network (:func:`to_unit_float`), so that every
method sees them in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_array, validate_data

from hourglass.exceptions import InvalidInputError

__all__ = [
    "UINT8_SCALE",
    "PreparedInput",
    "is_text",
    "prepare_input",
    "prepare_text",
    "to_unit_float",
]

#: uint8 data are pixel intensities: divided by this to land in [0, 1].
UINT8_SCALE = 255.0


@dataclass(frozen=True)
class PreparedInput:
    """Validated data: finite, at least one sample, 2 to 4 dimensions."""

    values: NDArray[Any]  # (n, *sample_shape), float32, or uint8 pixel values (0..255)
    is_text: bool = False  # values are byte-token ids of texts (int64, (n, max_length))
    is_table: bool = False  # values are packed mixed-type rows (see hourglass.tabular)

    @property
    def was_uint8(self) -> bool:
        """Whether the data are uint8 pixel values, to be divided by 255."""
        return bool(self.values.dtype == np.uint8)

    def value_range(self) -> tuple[float, float]:
        """Smallest and largest value, after the division of uint8 data by 255."""
        low, high = float(self.values.min()), float(self.values.max())
        if self.was_uint8:
            return low / UINT8_SCALE, high / UINT8_SCALE
        return low, high


def to_unit_float(batch: torch.Tensor) -> torch.Tensor:
    """A uint8 batch divided by 255 as float32; any other batch unchanged."""
    if batch.dtype == torch.uint8:
        return batch.to(torch.float32).div_(UINT8_SCALE)
    return batch


def _to_numpy(X: Any, estimator_name: str) -> Any:
    # torch tensors: detach and move to host without importing torch eagerly.
    if type(X).__module__.startswith("torch") and hasattr(X, "detach"):
        return X.detach().cpu().numpy()
    if hasattr(X, "dtypes") and hasattr(X, "columns"):  # a pandas DataFrame
        from pandas.api.types import is_bool_dtype, is_numeric_dtype

        # pandas' own checks, because np.dtype() rejects extension dtypes (category,
        # string, nullable Int64/boolean), pandas 3's default for text columns included.
        non_numeric = [
            str(column)
            for column, dtype in zip(X.columns, X.dtypes, strict=True)
            if not (is_numeric_dtype(dtype) or is_bool_dtype(dtype))
        ]
        if non_numeric:
            shown = ", ".join(repr(c) for c in non_numeric[:5])
            more = f" and {len(non_numeric) - 5} more" if len(non_numeric) > 5 else ""
            raise InvalidInputError(
                f"{estimator_name} needs numeric columns, but column(s) {shown}{more} are "
                "not numeric. Encode categorical columns (e.g. with pandas.get_dummies or "
                "sklearn.preprocessing.OneHotEncoder) or drop them first."
            )
        # Missing values of nullable columns (pd.NA) become NaN, which check_array rejects.
        return X.to_numpy(dtype=np.float32, na_value=np.nan)
    return X


def is_text(X: Any) -> bool:
    """Whether ``X`` is a collection of strings: a list or tuple, a 1-D array or a Series."""
    if isinstance(X, list | tuple):
        return bool(X) and isinstance(X[0], str)
    if hasattr(X, "columns") or getattr(X, "ndim", None) != 1:  # tables, matrices, scalars
        return False
    try:
        kind = np.dtype(getattr(X, "dtype", object)).kind
    except TypeError:  # a pandas extension dtype, e.g. pandas 3's default string dtype
        kind = "O"
    if kind in ("U", "S"):
        return True
    return len(X) > 0 and isinstance(next(iter(X)), str)


def prepare_text(estimator: BaseEstimator, X: Any, *, max_length: int) -> PreparedInput:
    """Validate a collection of texts and turn it into byte-token ids."""
    from hourglass.nn.sequence import ByteTokenizer

    name = type(estimator).__name__
    if isinstance(X, str):
        raise InvalidInputError(
            f"{name} with arch='sequence' takes a list of texts, not a single string; wrap "
            "it in a list: [text]."
        )
    try:
        texts = list(X)
    except TypeError:
        raise InvalidInputError(
            f"{name} with arch='sequence' takes a list (or array, or pandas Series) of "
            f"strings; got {type(X).__name__}."
        ) from None
    if not texts:
        raise InvalidInputError(f"{name} needs at least one text; got an empty collection.")
    bad = [i for i, text in enumerate(texts) if not isinstance(text, str)]
    if bad:
        raise InvalidInputError(
            f"{name} with arch='sequence' needs strings, but item {bad[0]} is a "
            f"{type(texts[bad[0]]).__name__} ({len(bad)} non-string item(s) in all). Convert "
            "or drop them first."
        )
    return PreparedInput(values=ByteTokenizer(max_length).encode(texts), is_text=True)


def prepare_input(estimator: BaseEstimator, X: Any, *, reset: bool) -> PreparedInput:
    """Validate ``X`` for ``estimator`` and convert it to float32.

    Checks feature names the scikit-learn way (``reset=True`` records them),
    rejects NaN/inf, empty input and unsupported dimensions, and scales uint8
    input to [0, 1].
    """
    name = type(estimator).__name__
    validate_data(estimator, X, reset=reset, skip_check_array=True, ensure_2d=False)
    X = _to_numpy(X, name)
    raw_dtype = getattr(X, "dtype", None)
    was_uint8 = raw_dtype is not None and np.dtype(raw_dtype) == np.uint8
    try:
        array = check_array(
            X,
            dtype=None if was_uint8 else np.float32,
            allow_nd=True,
            ensure_all_finite=True,
            ensure_min_samples=1,
            ensure_min_features=1,
            estimator=estimator,
            input_name="X",
        )
    except ValueError as error:
        message = str(error)
        if "NaN" in message or "infinity" in message:
            # scikit-learn's text recommends its own NaN-tolerant estimators.
            kind = "NaN" if "NaN" in message else "infinity"
            message = (
                f"X contains {kind}, and {name} needs finite values. Impute missing values "
                "(e.g. with sklearn.impute.SimpleImputer) or drop those rows first."
            )
        raise InvalidInputError(message) from None
    if array.ndim > 4:
        raise InvalidInputError(
            f"{name} accepts arrays of shape (n, d), (n, h, w) or (n, c, h, w); got an array "
            f"with {array.ndim} dimensions, shape {array.shape}. Reshape it to one of those."
        )
    if array.ndim > 2 and 0 in array.shape[1:]:
        raise InvalidInputError(
            f"{name} needs samples with at least one value; got an array of shape "
            f"{array.shape}, whose samples are empty."
        )
    return PreparedInput(values=np.ascontiguousarray(array))
