"""What runs on the Dask workers: the per-process model cache and the scoring of one block.

Nothing here imports Dask: the tasks of a scoring graph reference these
functions by name (``hourglass.dask._worker.score_block``), so a worker needs
hourglass installed, and unpickling a task is cheap. The model travels as its
path and the SHA-256 digest of its weights, never as an object: each worker
process loads it from the path on its first task and reuses it for every
later one.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from hourglass import persistence
from hourglass.estimators import AutoencoderOutlierDetector
from hourglass.exceptions import ModelFileError
from hourglass.scoring import RESULT_COLUMNS, TOP_COLUMNS
from hourglass.scoring import RESULT_DTYPES as COLUMN_DTYPES

__all__ = [
    "COLUMN_DTYPES",
    "MAX_CACHED_MODELS",
    "RESULT_COLUMNS",
    "TOP_COLUMNS",
    "CacheInfo",
    "cache_info",
    "cached_model",
    "clear_cache",
    "field",
    "record_dtype",
    "score_block",
]

# RESULT_COLUMNS, TOP_COLUMNS and COLUMN_DTYPES (imported above) are hourglass.scoring's:
# every result column, the columns named per flagged row in top_columns, and the dtypes of
# the numeric results, as ``hourglass score`` writes them.
#: Models kept loaded per process; the least recently used one is dropped beyond this.
MAX_CACHED_MODELS = 4


class CacheInfo(NamedTuple):
    """What the model cache of one process holds.

    Attributes
    ----------
    loads : int
        Models loaded from disk by this process since it started (or since
        :func:`clear_cache`): one per model and worker when the cache works.
    models : int
        Models held now.
    """

    loads: int
    models: int


_Key = tuple[str, str, str | None]
_lock = threading.Lock()
_models: OrderedDict[_Key, AutoencoderOutlierDetector] = OrderedDict()
_loads = 0


def cached_model(
    path: str | Path, *, digest: str | None = None, device: str | None = None
) -> AutoencoderOutlierDetector:
    """The outlier detector saved at ``path``, loaded once per process.

    Parameters
    ----------
    path : str or path-like
        A model directory (``save`` or ``hourglass train``).
    digest : str, optional
        The SHA-256 digest of the weights the caller expects (as
        :func:`hourglass.persistence.weights_digest` reads it). The model is
        refused if the directory holds another one, e.g. a worker that sees a
        different file system, or a model re-saved while scoring ran.
    device : str, optional
        Overrides the model's saved device.

    Returns
    -------
    AutoencoderOutlierDetector
        Shared by every caller in this process: use it, do not modify it.

    Raises
    ------
    ModelFileError
        If the directory is missing, invalid, holds another class of model, or
        does not hold the model with ``digest``.
    """
    global _loads
    resolved = str(Path(path).resolve())
    with _lock:  # one load per model, even when several tasks miss at once
        # With a digest, a hit touches no file: the cached model is the one expected.
        found = digest if digest is not None else persistence.weights_digest(resolved)
        key = (resolved, found, device)
        model = _models.get(key)
        if model is not None:
            _models.move_to_end(key)
            return model
        _check_digest(resolved, found, persistence.weights_digest(resolved))
        model = AutoencoderOutlierDetector.load(resolved, device=device)
        # The directory may have been replaced while it was read (saves are atomic swaps).
        _check_digest(resolved, found, persistence.weights_digest(resolved))
        _models[key] = model
        _loads += 1
        while len(_models) > MAX_CACHED_MODELS:
            _models.popitem(last=False)
        return model


def _check_digest(path: str, expected: str, found: str) -> None:
    if found != expected:
        raise ModelFileError(
            f"The model in {path} has weights with SHA-256 {found[:12]}..., not the "
            f"{expected[:12]}... the scoring started with: the directory was replaced, or this "
            "process sees another file system than the client. Make the same model directory "
            "readable at the same path by the client and every worker, and do not re-save it "
            "while scoring runs."
        )


def cache_info() -> CacheInfo:
    """How many models this process has loaded, and how many it holds.

    Run it on every worker with ``client.run(hourglass.dask.cache_info)``.
    """
    with _lock:
        return CacheInfo(loads=_loads, models=len(_models))


def clear_cache() -> None:
    """Forget the models this process holds, and reset its load count."""
    global _loads
    with _lock:
        _models.clear()
        _loads = 0


def record_dtype(columns: Sequence[str]) -> np.dtype[Any]:
    """The structured dtype of a block of array results with these numeric ``columns``."""
    return np.dtype([(name, COLUMN_DTYPES[name]) for name in columns])


def _results(
    detector: AutoencoderOutlierDetector, data: Any, columns: Sequence[str], threshold: float
) -> dict[str, Any]:
    """The result columns for ``data``, as ``hourglass score`` computes them."""
    if len(data) == 0:  # an empty partition: the estimators refuse 0 samples
        errors = scores = np.empty(0, dtype=np.float64)
    else:
        errors, scores = detector.errors_and_scores(data)  # scores: what thresholds are about
    return detector._result_columns(data, errors, scores, threshold=threshold, columns=columns)


def score_block(
    data: Any,
    model_path: str,
    digest: str,
    device: str | None,
    columns: tuple[str, ...],
    threshold: float,
) -> Any:
    """Score one block of a Dask collection with the cached model.

    Parameters
    ----------
    data : ndarray, pandas.DataFrame or pandas.Series
        One chunk (rows along axis 0) or partition.
    model_path, digest, device
        Where the model is, the digest of its weights, the device to load it on.
    columns : tuple of str
        The result columns to compute (see :data:`hourglass.dask.RESULT_COLUMNS`).
    threshold : float
        Outlier scores above it are flagged.

    Returns
    -------
    ndarray or pandas.DataFrame
        For an array chunk, a structured array of shape ``(n_rows,)`` with
        :func:`record_dtype` fields; for a partition, a DataFrame with the
        partition's index.
    """
    detector = cached_model(model_path, digest=digest, device=device)
    results = _results(detector, data, columns, threshold)
    if isinstance(data, pd.DataFrame | pd.Series):
        frame = pd.DataFrame(
            {
                name: pd.Series(values, index=data.index, dtype=str)
                if name == "top_columns"
                else np.asarray(values, dtype=COLUMN_DTYPES[name])
                for name, values in results.items()
            },
            index=data.index,
        )
        return frame
    records = np.empty(len(data), dtype=record_dtype(columns))
    for name in columns:
        records[name] = results[name]
    return records


def field(records: NDArray[Any], name: str) -> NDArray[Any]:
    """One field of a block of structured results, as a plain array."""
    return np.asarray(records[name])
