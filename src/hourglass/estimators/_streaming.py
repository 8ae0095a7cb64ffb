"""Estimators on :class:`~hourglass.data.stream.Stream` data: the scan before fit, and
scoring piece by piece.

Fitting on a stream takes one validating pass (:func:`scan_stream`: every piece
goes through the same checks as in-memory data, and the per-feature range is
gathered), then trains from a :class:`~hourglass.data.stream.StreamSource`.
Every scoring method goes through the stream piece by piece
(:func:`piecewise`); pieces are scored exactly as the same rows in memory
would be, since a sample's score never depends on its batch.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from tqdm.auto import tqdm

from hourglass import distributed
from hourglass.data.stream import Stream, release_free_memory
from hourglass.estimators._input import UINT8_SCALE, prepare_input
from hourglass.exceptions import InvalidInputError

__all__ = ["StreamInput", "piecewise", "scan_stream", "scan_table_stream", "takes_frames"]

Method = TypeVar("Method", bound=Callable[..., Any])


@dataclass(frozen=True)
class StreamInput:
    """A validated stream, with what fitting needs to know before training."""

    stream: Stream
    sample_shape: tuple[int, ...]
    n_samples: int
    was_uint8: bool
    feature_min: NDArray[np.float32]  # per feature, scaled to [0, 1] for uint8 data
    feature_max: NDArray[np.float32]
    family: str = ""  # the model family (arch) the stream was checked for
    # Tables and texts: packs a DataFrame piece into the model's layout (TableSchema.encode,
    # or texts' byte ids).
    encode: Callable[[pd.DataFrame], NDArray[Any]] | None = None
    # Tables: encoded rows of the sample the schema was fitted on.
    sample: NDArray[np.float32] | None = None

    def value_range(self) -> tuple[float, float]:
        """Smallest and largest value, after the division of uint8 data by 255."""
        return float(self.feature_min.min()), float(self.feature_max.max())


def _named(stream: Stream) -> bool:
    """Whether pieces go to the estimator as DataFrames (so column names are checked)."""
    return stream.is_table and stream.list_column is None


def scan_stream(estimator: Any, stream: Stream, *, reset: bool = True) -> StreamInput:
    """Validate every piece of ``stream`` for ``estimator`` and gather the feature range.

    With ``reset``, the first piece records the feature names (as ``fit`` on a
    DataFrame does); every piece is checked like in-memory data (finite
    numbers within the float32 range, one sample shape).
    """
    if not stream.is_numeric:
        raise InvalidInputError(stream._non_numeric_message())
    return _scan(estimator, stream, reset=reset, encode=None)


def scan_table_stream(
    estimator: Any, stream: Stream, encode: Callable[[pd.DataFrame], NDArray[np.float32]]
) -> StreamInput:
    """Encode every piece of a table ``stream`` (or of ``.npy`` rows) with ``encode``."""
    if stream.list_column is not None or len(stream.sample_shape) != 1:
        raise InvalidInputError(
            f"arch='tabular' needs a table (Parquet or CSV columns, or .npy rows); {stream!r} "
            "holds arrays."
        )
    return _scan(estimator, stream, reset=False, encode=encode)


def _scan(
    estimator: Any,
    stream: Stream,
    *,
    reset: bool,
    encode: Callable[[pd.DataFrame], NDArray[np.float32]] | None,
) -> StreamInput:
    low: NDArray[Any] | None = None
    high: NDArray[Any] | None = None
    n = 0
    was_uint8 = False

    def checked(piece: Any, first: bool) -> NDArray[Any]:
        if encode is not None:
            return encode(piece)
        return prepare_input(estimator, piece, reset=reset and first).values

    # In data-parallel training each process checks its own blocks; the ranges are merged.
    parallel = distributed.world_size() > 1
    part = stream.shard(distributed.rank(), distributed.world_size()) if parallel else stream
    pieces = _progress(estimator, part, "checking", as_frame=_named(stream))
    for index, piece in enumerate(pieces):
        values = checked(piece, index == 0)
        was_uint8 = values.dtype == np.uint8
        flat = values.reshape(values.shape[0], -1)
        piece_low, piece_high = flat.min(axis=0), flat.max(axis=0)
        low = piece_low if low is None else np.minimum(low, piece_low)
        high = piece_high if high is None else np.maximum(high, piece_high)
        n += values.shape[0]
        del piece, values, flat
        release_free_memory()
    if parallel:
        if low is None or high is None:  # no block here: names and shape from one row
            values = checked(stream.head(1, as_frame=_named(stream)), True)
            was_uint8 = values.dtype == np.uint8
            width = int(np.prod(values.shape[1:]))
            low, high = np.full(width, np.inf), np.full(width, -np.inf)
        low, high, n = distributed.reduce_range(low, high, n)
    if low is None or high is None or n == 0:
        raise InvalidInputError(f"{stream!r} holds no rows to fit on.")
    scale = np.float32(1.0 / UINT8_SCALE if was_uint8 else 1.0)
    return StreamInput(
        stream=stream,
        sample_shape=tuple(int(size) for size in low.shape) if encode else stream.sample_shape,
        n_samples=n,
        was_uint8=was_uint8,
        feature_min=low.astype(np.float32) * scale,
        feature_max=high.astype(np.float32) * scale,
        encode=encode,
    )


def _progress(estimator: Any, stream: Stream, description: str, *, as_frame: bool) -> Any:
    quiet = not getattr(estimator, "verbose", 0) or not sys.stderr.isatty()
    n_pieces = stream.n_pieces()
    return tqdm(
        stream.pieces(as_frame=as_frame),
        total=n_pieces,
        desc=description,
        unit="piece",
        disable=quiet or n_pieces < 2,
        leave=False,
    )


def takes_frames(estimator: Any, stream: Stream) -> bool:
    """Whether ``stream``'s pieces go to ``estimator`` as DataFrames rather than arrays.

    Tables do, for an estimator fitted with column names or on a table (or not
    fitted yet), so that their columns are checked; arrays, and tables for a
    model fitted on arrays, go as arrays.
    """
    fitted = hasattr(estimator, "n_features_in_")
    return _named(stream) and (
        not fitted or hasattr(estimator, "feature_names_in_") or hasattr(estimator, "table_schema_")
    )


def _combine(results: list[Any]) -> Any:
    first = results[0]
    if isinstance(first, tuple):
        return tuple(_combine(list(parts)) for parts in zip(*results, strict=True))
    if isinstance(first, pd.DataFrame):
        return pd.concat(results, ignore_index=True)
    if isinstance(first, list):
        return [item for result in results for item in result]
    return np.concatenate(results)


def piecewise(method: Method) -> Method:
    """Let ``method(self, X, ...)`` take a :class:`Stream`: run it piece by piece, join results."""

    @functools.wraps(method)
    def wrapper(self: Any, X: Any, *args: Any, **kwargs: Any) -> Any:
        if not isinstance(X, Stream):
            return method(self, X, *args, **kwargs)
        self._check_fitted()
        results = []
        for piece in _progress(self, X, method.__name__, as_frame=takes_frames(self, X)):
            results.append(method(self, piece, *args, **kwargs))
            del piece
            release_free_memory()
        if not results:
            raise InvalidInputError(f"{X!r} holds no rows.")
        return _combine(results)

    return cast(Method, wrapper)
