"""Turning user data (NumPy, torch, pandas, lists) into validated float32 arrays."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_array, validate_data

from hourglass.exceptions import InvalidInputError

__all__ = ["PreparedInput", "prepare_input"]

#: uint8 data are pixel intensities: divided by this to land in [0, 1].
UINT8_SCALE = 255.0


@dataclass(frozen=True)
class PreparedInput:
    """Validated data: float32, finite, at least one sample, 2 to 4 dimensions."""

    values: NDArray[np.float32]  # (n, *sample_shape)
    was_uint8: bool  # whether the raw input was uint8 and was divided by 255


def _to_numpy(X: Any, estimator_name: str) -> Any:
    # torch tensors: detach and move to host without importing torch eagerly.
    if type(X).__module__.startswith("torch") and hasattr(X, "detach"):
        return X.detach().cpu().numpy()
    if hasattr(X, "dtypes") and hasattr(X, "columns"):  # a pandas DataFrame
        non_numeric = [
            str(column)
            for column, dtype in zip(X.columns, X.dtypes, strict=True)
            if not (np.issubdtype(np.dtype(dtype), np.number) or np.dtype(dtype) == np.bool_)
        ]
        if non_numeric:
            shown = ", ".join(repr(c) for c in non_numeric[:5])
            more = f" and {len(non_numeric) - 5} more" if len(non_numeric) > 5 else ""
            raise InvalidInputError(
                f"{estimator_name} needs numeric columns, but column(s) {shown}{more} are "
                "not numeric. Encode categorical columns (e.g. with pandas.get_dummies or "
                "sklearn.preprocessing.OneHotEncoder) or drop them first."
            )
        return X.to_numpy(dtype=np.float32)
    return X


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
        raise InvalidInputError(str(error)) from None
    if array.ndim > 4:
        raise InvalidInputError(
            f"{name} accepts arrays of shape (n, d), (n, h, w) or (n, c, h, w); got an array "
            f"with {array.ndim} dimensions, shape {array.shape}. Reshape it to one of those."
        )
    if was_uint8:
        array = array.astype(np.float32) / np.float32(UINT8_SCALE)
    return PreparedInput(values=np.ascontiguousarray(array, dtype=np.float32), was_uint8=was_uint8)
