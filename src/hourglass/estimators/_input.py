"""Turning user data (NumPy, torch, pandas, lists) into validated arrays.

Floating-point and integer data become float32. uint8 data are pixel
intensities: they stay uint8 (four times smaller) and are divided by 255 batch
by batch, on their way into the network (:func:`to_unit_float`), so that every
method sees them in [0, 1].
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Mapping, Set
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
    "as_tensor",
    "is_text",
    "prepare_input",
    "prepare_table",
    "prepare_text",
    "shaped_like_training",
    "to_unit_float",
]

#: uint8 data are pixel intensities: divided by this to land in [0, 1].
UINT8_SCALE = 255.0
#: The largest float32: the networks compute in float32, so larger values cannot be used.
FLOAT32_MAX = float(np.finfo(np.float32).max)


class _UnconvertibleInputError(InvalidInputError, TypeError):
    """X holds values that are not numbers at all (a dict, a list, ...).

    Also a :class:`TypeError`, the type scikit-learn's estimator checks expect for
    such input (``check_dtype_object``); catch :class:`InvalidInputError`.
    """


@dataclass(frozen=True)
class PreparedInput:
    """Validated data: finite, at least one sample, 2 to 4 dimensions."""

    values: NDArray[Any]  # (n, *sample_shape), float32, or uint8 pixel values (0..255)
    family: str = ""  # the model family (arch) the values were prepared for

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


def as_tensor(values: NDArray[Any]) -> torch.Tensor:
    """A tensor of ``values``, sharing their memory when they are contiguous.

    Read-only arrays (memory-mapped files) are accepted without PyTorch's warning:
    hourglass never writes to them.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(np.ascontiguousarray(values))


def to_unit_float(batch: torch.Tensor) -> torch.Tensor:
    """A uint8 batch divided by 255 as float32; any other batch unchanged."""
    if batch.dtype == torch.uint8:
        return batch.to(torch.float32).div_(UINT8_SCALE)
    return batch


def _one_line(message: str) -> str:
    """``message`` with its line breaks and runs of spaces collapsed."""
    return " ".join(message.split())


def _check_float32_range(values: NDArray[Any], what: str, estimator_name: str) -> None:
    """Raise if the finite values of a float array do not fit in float32."""
    if values.dtype.kind != "f" or values.dtype.itemsize <= 4 or values.size == 0:
        return
    finite = np.isfinite(values)
    if not finite.any():
        return  # NaN and infinity get their own message
    low = float(values.min(where=finite, initial=np.inf))
    high = float(values.max(where=finite, initial=-np.inf))
    if max(-low, high) > FLOAT32_MAX:
        raise InvalidInputError(
            f"{what} holds values from {low:.4g} to {high:.4g}, beyond the float32 range "
            f"(about ±{FLOAT32_MAX:.3g}) that {estimator_name} computes in. Rescale the data "
            "(e.g. with sklearn.preprocessing.StandardScaler) or check those values."
        )


def _frame_to_numpy(X: Any, estimator_name: str) -> NDArray[Any]:
    """A numeric pandas DataFrame as a float32 array (missing values become NaN)."""
    from pandas.api.types import is_bool_dtype, is_complex_dtype, is_numeric_dtype

    if len(X) == 0:  # before the dtypes: an empty CSV file's columns all look like text
        raise InvalidInputError(
            f"{estimator_name} needs at least one sample; got a table with 0 rows and the "
            f"columns {list(map(str, X.columns))[:10]}."
        )
    # pandas' own checks, because np.dtype() rejects extension dtypes (category,
    # string, nullable Int64/boolean), pandas 3's default for text columns included.
    non_numeric = [
        str(column)
        for column, dtype in zip(X.columns, X.dtypes, strict=True)
        if not (is_numeric_dtype(dtype) or is_bool_dtype(dtype)) or is_complex_dtype(dtype)
    ]
    if non_numeric:
        shown = ", ".join(repr(c) for c in non_numeric[:5])
        more = f" and {len(non_numeric) - 5} more" if len(non_numeric) > 5 else ""
        raise InvalidInputError(
            f"{estimator_name} needs numeric columns, but column(s) {shown}{more} are "
            "not numeric. Encode categorical columns (e.g. with pandas.get_dummies or "
            "sklearn.preprocessing.OneHotEncoder) or drop them first, or use "
            "arch='tabular' for mixed tables."
        )
    for column, dtype in zip(X.columns, X.dtypes, strict=True):
        if getattr(dtype, "itemsize", 8) > 4 and not is_bool_dtype(dtype):
            values = X[column].to_numpy(dtype=np.float64, na_value=np.nan)
            _check_float32_range(values, f"Column {str(column)!r}", estimator_name)
    # Missing values of nullable columns (pd.NA) become NaN, which check_array rejects.
    values32: NDArray[Any] = X.to_numpy(dtype=np.float32, na_value=np.nan)
    return values32


def _to_numpy(X: Any, estimator_name: str) -> Any:
    """``X`` as a NumPy array; raise a clear error for what cannot become one."""
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu()
        # NumPy has no bfloat16: widen it (exactly) to float32.
        return (X.float() if X.dtype == torch.bfloat16 else X).numpy()
    if hasattr(X, "dtypes") and hasattr(X, "columns"):  # a pandas DataFrame
        return _frame_to_numpy(X, estimator_name)
    if type(X).__module__.startswith("scipy.sparse"):
        # scikit-learn's estimator checks look for "sparse" in the message.
        raise InvalidInputError(
            f"{estimator_name} needs dense data, but X is a sparse {type(X).__name__}. Pass "
            "X.toarray() if it fits in memory."
        )
    if isinstance(X, list | tuple) and not X:
        raise InvalidInputError(
            f"{estimator_name} needs at least one sample; got an empty {type(X).__name__}."
        )
    if X is None or isinstance(X, str | bytes | Mapping | Set):
        raise InvalidInputError(
            f"{estimator_name} needs an array-like X of shape (n_samples, n_features) (a NumPy "
            f"array, a list of rows, a pandas DataFrame or a torch tensor); got "
            f"{type(X).__name__}."
        )
    if is_text(X) or _is_bytes_collection(X):
        raise InvalidInputError(
            f"{estimator_name} needs numeric data here; got texts. Texts need a model fitted "
            "with arch='auto' (or 'transformer', 'sequence') on a list of str (decode bytes "
            "first)."
        )
    if isinstance(X, np.ndarray):
        return X
    try:
        return np.asarray(X)
    except (ValueError, TypeError) as error:
        raise InvalidInputError(
            f"{estimator_name} cannot turn X into an array: {_one_line(str(error))} Pass a "
            "NumPy array or a list of equally long rows of numbers."
        ) from None


def _is_bytes_collection(X: Any) -> bool:
    """Whether ``X`` is a list, tuple or 1-D array of bytes."""
    if isinstance(X, list | tuple):
        return bool(X) and isinstance(X[0], bytes)
    return isinstance(X, np.ndarray) and X.ndim == 1 and X.dtype.kind == "S"


def _as_real_numbers(array: NDArray[Any], estimator_name: str) -> NDArray[Any]:
    """Refuse what cannot be a matrix of real numbers; convert text and objects to float64."""
    kind = array.dtype.kind
    if array.dtype.names is not None:
        raise InvalidInputError(
            f"{estimator_name} needs a plain numeric array; got a structured array with fields "
            f"{list(array.dtype.names)}. Convert it, e.g. with "
            "numpy.lib.recfunctions.structured_to_unstructured(X)."
        )
    if kind == "c":
        # scikit-learn's estimator checks look for this phrase.
        raise InvalidInputError(
            f"Complex data not supported: X has dtype {array.dtype}, and {estimator_name} "
            "needs real numbers. Pass X.real, numpy.abs(X), or the real and imaginary parts as "
            "separate features."
        )
    if kind in "mM":
        raise InvalidInputError(
            f"{estimator_name} needs numbers; X has dtype {array.dtype}. Convert dates and "
            "durations to numbers explicitly first (e.g. seconds since a reference date)."
        )
    if kind in "OUSV":
        if kind == "O":  # None, pd.NA and NaT are missing values, rejected as NaN later
            import pandas as pd

            missing = pd.isna(array)
            if missing.any():
                array = array.copy()
                array[missing] = np.nan
        try:
            return array.astype(np.float64)
        except OverflowError as error:
            raise InvalidInputError(
                f"X holds a number too large for {estimator_name} ({error}); values must lie "
                f"within the float32 range (about ±{FLOAT32_MAX:.3g}). Rescale the data."
            ) from None
        except TypeError as error:
            raise _UnconvertibleInputError(
                f"{estimator_name} needs numbers, but X holds values that are not numbers "
                f"({error}). Pass an array of numbers."
            ) from None
        except ValueError as error:
            raise InvalidInputError(
                f"{estimator_name} needs numbers, but X holds values that are not numbers "
                f"({_one_line(str(error))}). Encode categorical values as numbers (e.g. with "
                "sklearn.preprocessing.OneHotEncoder), use arch='tabular' for a mixed "
                "table, or arch='auto' for texts."
            ) from None
    return array


def _feature_names_error(estimator: BaseEstimator, X: Any, error: Exception) -> InvalidInputError:
    """An InvalidInputError for a feature-name problem found by scikit-learn's validate_data."""
    name = type(estimator).__name__
    message = str(error)
    if isinstance(error, TypeError):  # column names of mixed types, e.g. 0 and "a"
        return InvalidInputError(
            f"{name} needs column names that are all strings (or all non-strings); got "
            f"{list(X.columns)[:10]}. Convert them with X.columns = X.columns.astype(str)."
        )
    if message.startswith("The feature names should match"):
        # scikit-learn's text first (its estimator checks match it), then what to do.
        fitted = [str(c) for c in getattr(estimator, "feature_names_in_", [])]
        return InvalidInputError(
            f"{message.rstrip()}\nPass a DataFrame with the columns {name} was fitted on, in "
            f"the same order ({fitted[:10]}{' ...' if len(fitted) > 10 else ''}), e.g. "
            "X[list(model.feature_names_in_)]."
        )
    return InvalidInputError(_one_line(message))


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
            f"A text model ({name}) takes a list of texts, not a single string; wrap "
            "it in a list: [text]."
        )
    if hasattr(X, "columns") or isinstance(X, Mapping | Set) or getattr(X, "ndim", 1) != 1:
        # Iterating over these would give column names, keys, or rows in no set order.
        if hasattr(X, "columns"):
            what = "a table"
        elif isinstance(X, Mapping | Set):
            what = f"a {type(X).__name__}"
        else:
            what = f"an array of shape {tuple(X.shape)}"
        raise InvalidInputError(
            f"A text model ({name}) needs strings: a list (or 1-D array, or pandas "
            f"Series) of str; got {what}. Pass the texts themselves, e.g. frame['text'] for a "
            "column of a DataFrame."
        )
    try:
        texts = list(X)
    except TypeError:
        raise InvalidInputError(
            f"A text model ({name}) takes a list (or array, or pandas Series) of "
            f"strings; got {type(X).__name__}."
        ) from None
    if not texts:
        raise InvalidInputError(f"{name} needs at least one text; got an empty collection.")
    bad = [i for i, text in enumerate(texts) if not isinstance(text, str)]
    if bad:
        first = texts[bad[0]]
        hint = (
            "Decode bytes first, e.g. text.decode('utf-8', errors='replace')."
            if isinstance(first, bytes)
            else "Convert them to str or drop them first (missing texts can be '')."
        )
        raise InvalidInputError(
            f"A text model ({name}) needs strings, but item {bad[0]} is a "
            f"{type(first).__name__} ({len(bad)} non-string item(s) in all). {hint}"
        )
    return PreparedInput(values=ByteTokenizer(max_length).encode(texts))


def prepare_input(estimator: BaseEstimator, X: Any, *, reset: bool) -> PreparedInput:
    """Validate ``X`` for ``estimator`` and convert it to float32.

    Checks feature names the scikit-learn way (``reset=True`` records them) and
    raises :class:`InvalidInputError`, saying what to do, for what cannot be a
    matrix or batch of images of real numbers: NaN or infinity, values beyond
    the float32 range, complex, date, structured, sparse or text data, ragged
    lists, containers that are not array-like, empty input and unsupported
    dimensions. uint8 input stays uint8 (scaled to [0, 1] batch by batch).
    """
    name = type(estimator).__name__
    _check_names(estimator, X, reset=reset)
    X = _as_real_numbers(_to_numpy(X, name), name)
    was_uint8 = X.dtype == np.uint8
    _check_float32_range(X, "X", name)
    _check_at_least_2d(X, name)
    array = _checked_array(
        estimator, X, dtype=None if was_uint8 else np.float32, allow_nd=True, allow_nan=False
    )
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


def prepare_table(estimator: BaseEstimator, X: Any, *, reset: bool) -> Any:
    """Validate a table for the tabular family: a DataFrame, or a 2-D array as one.

    DataFrames keep their columns and types: at fit their names and count are
    recorded the scikit-learn way (``feature_names_in_``, ``n_features_in_``);
    later, the table schema finds the columns by name (their order and extra
    columns do not matter) and names any that are missing. Arrays must be 2-D;
    numeric ones may hold NaN (missing values) but no infinity, complex or date
    values; object arrays holding strings are mixed tables. An array becomes a
    DataFrame with columns named "0", "1", ...
    """
    import pandas as pd

    name = type(estimator).__name__
    if hasattr(X, "columns") and hasattr(X, "dtypes"):
        if reset:
            _check_names(estimator, X, reset=True, count_columns=True)
        return X
    array = _to_numpy(X, name)
    mixed = array.dtype.kind == "O" and any(isinstance(v, str) for v in array.ravel()[:10_000])
    if not mixed:
        array = _as_real_numbers(array, name)
        _check_float32_range(array, "X", name)
    _check_at_least_2d(array, name)
    if array.ndim > 2:
        raise InvalidInputError(
            f"{name} with arch='tabular' needs a table: a DataFrame or a 2-D array; got an "
            f"array of shape {array.shape}. Use arch='dense' or 'conv' for images."
        )
    if not mixed:
        array = _checked_array(estimator, array, dtype=None, allow_nd=False, allow_nan=True)
    _check_names(estimator, array, reset=reset, count_columns=True)
    return pd.DataFrame(array, columns=[str(i) for i in range(array.shape[1])])


def _check_names(
    estimator: BaseEstimator, X: Any, *, reset: bool, count_columns: bool = False
) -> None:
    """Unique column names; feature names checked (or recorded) the scikit-learn way.

    ``count_columns`` also checks (or records) the number of columns as
    ``n_features_in_``, for 2-D input.
    """
    name = type(estimator).__name__
    if hasattr(X, "columns") and hasattr(X, "dtypes"):
        counts = Counter(X.columns)
        duplicated = sorted(str(c) for c, count in counts.items() if count > 1)
        if duplicated:
            raise InvalidInputError(
                f"{name} needs unique column names; column(s) {duplicated} appear more than "
                "once. Rename or drop the duplicates first."
            )
    try:
        validate_data(estimator, X, reset=reset, skip_check_array=True, ensure_2d=count_columns)
    except (TypeError, ValueError) as error:
        raise _feature_names_error(estimator, X, error) from None


def _check_at_least_2d(X: NDArray[Any], name: str) -> None:
    if X.ndim < 2:
        # scikit-learn's estimator checks look for "Reshape your data".
        got = "scalar" if X.ndim == 0 else f"1D array of shape {X.shape}"
        raise InvalidInputError(
            f"Expected 2D array, got {got} instead: {name} needs one sample per row. "
            "Reshape your data either using X.reshape(-1, 1) if it has a single feature or "
            "X.reshape(1, -1) if it contains a single sample."
        )


def _checked_array(
    estimator: BaseEstimator, X: NDArray[Any], *, dtype: Any, allow_nd: bool, allow_nan: bool
) -> NDArray[Any]:
    """scikit-learn's check_array (non-empty, finite or NaN), with errors saying what to do."""
    name = type(estimator).__name__
    try:
        checked: NDArray[Any] = check_array(
            X,
            dtype=dtype,
            allow_nd=allow_nd,
            ensure_all_finite="allow-nan" if allow_nan else True,
            ensure_min_samples=1,
            ensure_min_features=1,
            estimator=estimator,
            input_name="X",
        )
    except ValueError as error:
        message = _one_line(str(error))
        if "NaN" in message or "infinity" in message:
            # scikit-learn's text recommends its own NaN-tolerant estimators.
            kind = "NaN" if "NaN" in message else "infinity"
            message = (
                f"X contains {kind}, and {name} needs finite values. Impute missing values "
                "(e.g. with sklearn.impute.SimpleImputer) or drop those rows first."
                if kind == "NaN"
                else f"X contains infinity, and {name} needs finite values (NaN marks a "
                "missing value where the model takes them). Replace or drop those values."
            )
        raise InvalidInputError(message) from None
    return checked


def shaped_like_training(
    values: NDArray[Any], input_shape: tuple[int, ...], estimator_name: str
) -> NDArray[Any]:
    """Prepared ``values`` reshaped to the training samples' shape, or a clear error.

    Flat rows of as many values, and images with or without a channel axis of
    size 1, are accepted; images of another shape with as many pixels are not (a
    2x8 image read as 4x4 would be scored silently wrong). Values outside the
    training range are accepted (unlike at fit): they reconstruct badly, which is
    what an outlier score should report.
    """
    sample_shape = tuple(values.shape[1:])
    n_features = int(np.prod(sample_shape))
    expected = int(np.prod(input_shape))
    if n_features != expected:  # tables: their schema has checked the columns
        raise InvalidInputError(
            f"X has {n_features} features, but {estimator_name} is expecting "
            f"{expected} features as input (samples of shape "
            f"{input_shape}; got samples of shape {sample_shape})."
        )

    def squeezed(shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(size for size in shape if size != 1)

    if (
        len(input_shape) > 1
        and len(sample_shape) > 1
        and squeezed(sample_shape) != squeezed(input_shape)
    ):
        raise InvalidInputError(
            f"X has samples of shape {sample_shape}, but {estimator_name} was fitted "
            f"on samples of shape {input_shape}. Pass samples of that shape, or flat "
            f"rows of {expected} values."
        )
    if sample_shape != input_shape:  # flat rows, or a channel axis of size 1
        values = values.reshape(values.shape[0], *input_shape)
    return values
