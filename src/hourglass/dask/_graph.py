"""Building the Dask graphs: scoring tasks over collections, and collections over files.

Imported only once the ``dask`` extra is known to be installed
(:func:`hourglass.dask.require_dependencies`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import dask
import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from hourglass import persistence
from hourglass.dask._worker import (
    COLUMN_DTYPES,
    RESULT_COLUMNS,
    cached_model,
    field,
    record_dtype,
    score_block,
)
from hourglass.data.files import read_data as read_file
from hourglass.estimators import AutoencoderOutlierDetector
from hourglass.exceptions import DatasetError, InvalidInputError, InvalidParameterError
from hourglass.scoring import rule_threshold, threshold_rule

__all__ = ["read_data", "score"]

#: Bytes of a CSV file read by the client to estimate its bytes per line.
CSV_SAMPLE_BYTES = 2**20


def _result_columns(
    detector: AutoencoderOutlierDetector, requested: Sequence[str] | None, *, table: bool
) -> tuple[str, ...]:
    """The result columns to compute: those requested (checked), or the model's defaults."""
    explains = detector.family_.explains
    if requested is None:  # what hourglass score writes
        return detector._default_result_columns(table=table)
    if isinstance(requested, str):
        requested = [requested]
    names = list(requested)
    unknown = [name for name in names if name not in RESULT_COLUMNS]
    if unknown or not names or len(set(names)) < len(names):
        raise InvalidParameterError(
            f"columns must name distinct results among {list(RESULT_COLUMNS)}; got {names}."
        )
    if "p_value" in names and detector.n_calibration_ == 0:
        raise InvalidParameterError(
            "p_value needs a model trained with calibration data (calibration fraction > 0); "
            "this one has none. Leave p_value out of columns."
        )
    if "top_columns" in names and not (explains and table):
        raise InvalidParameterError(
            "top_columns describes the columns of tables scored by a tabular model (a Dask "
            f"DataFrame and arch='tabular'); this model has arch={detector.arch_!r}"
            f"{'' if table else ' and the data are an array'}. Leave top_columns out of columns."
        )
    return tuple(names)


def _threshold(detector: AutoencoderOutlierDetector, threshold: float | None) -> float:
    """``threshold``, checked as the detector checks its own, or the detector's."""
    rule = threshold_rule(
        fpr=None, contamination=None, threshold=threshold, caller="hourglass.dask.score"
    )
    if rule is None:
        return float(detector.threshold_)
    return rule_threshold(rule, threshold=threshold)


def score(
    model_path: str | os.PathLike[str],
    data: Any,
    *,
    columns: Sequence[str] | None,
    threshold: float | None,
    device: str | None,
) -> Any:
    """See :func:`hourglass.dask.score`."""
    if not isinstance(data, da.Array | dd.DataFrame | dd.Series):
        raise InvalidInputError(
            "hourglass.dask.score takes a Dask array, DataFrame or Series; got "
            f"{type(data).__module__}.{type(data).__name__}. Wrap in-memory data with "
            "dask.array.from_array(X, chunks=(rows, ...)) or dask.dataframe.from_pandas(frame, "
            "npartitions=n), or score it in process with the detector's own methods."
        )
    # Workers may run in another directory: they get the absolute path.
    path = str(Path(model_path).resolve())
    digest = persistence.weights_digest(path)
    # The client loads the model too (into the same per-process cache the workers use):
    # it validates the model and says which results apply, before any task runs.
    detector = cached_model(path, digest=digest, device=device)
    flag_above = _threshold(detector, threshold)
    if isinstance(data, da.Array):
        names = _result_columns(detector, columns, table=False)
        _check_array(data, detector)
        dtype = record_dtype(names)
        records = data.map_blocks(
            score_block,
            path,
            digest,
            device,
            names,
            flag_above,
            drop_axis=list(range(1, data.ndim)),  # one record per sample
            dtype=dtype,
            meta=np.empty((0,), dtype=dtype),
        )
        return {
            name: records.map_blocks(
                field, name, dtype=COLUMN_DTYPES[name], meta=np.empty((0,), COLUMN_DTYPES[name])
            )
            for name in names
        }
    names = _result_columns(detector, columns, table=True)
    meta = pd.DataFrame(
        {
            name: pd.Series([], dtype=str)
            if name == "top_columns"
            else np.empty(0, dtype=COLUMN_DTYPES[name])
            for name in names
        },
        index=data._meta.index,
    )
    return data.map_partitions(score_block, path, digest, device, names, flag_above, meta=meta)


def _check_array(data: da.Array, detector: AutoencoderOutlierDetector) -> None:
    """Refuse arrays the model cannot score, before any task runs."""
    kind = detector.family_.input_kind(tuple(detector.input_shape_))
    tabular = kind == "table"
    # A tabular model fitted on a 2-D array scores 2-D arrays of as many columns; one
    # fitted on a DataFrame scores DataFrames with its columns.
    if tabular and (
        hasattr(detector, "feature_names_in_")
        or data.ndim != 2
        or data.shape[1] != detector.n_features_in_
    ):
        raise InvalidInputError(
            "A tabular model scores tables: pass a Dask DataFrame with the training columns "
            "(e.g. dask.dataframe.read_parquet(...)), or, for a model fitted on an array, a "
            f"2-D array of its {detector.n_features_in_} columns; got an array of shape "
            f"{data.shape}."
        )
    split = [axis for axis in range(1, data.ndim) if len(data.chunks[axis]) > 1]
    if split:
        whole = ", ".join(f"{axis}: -1" for axis in split)
        raise InvalidInputError(
            f"The array is chunked along axis {', '.join(map(str, split))} (chunks "
            f"{data.chunksize}); hourglass scores whole samples, so chunk it along axis 0 only: "
            f"data.rechunk({{{whole}}})."
        )
    if tabular:
        return
    text = kind == "texts"
    sample_shape = tuple(int(size) for size in data.shape[1:])
    if text and data.ndim != 1:
        raise InvalidInputError(
            f"A text model scores texts: pass a 1-D array of strings; got an array of shape "
            f"{data.shape}."
        )
    if not text and (data.ndim < 2 or math.prod(sample_shape) != math.prod(detector.input_shape_)):
        raise InvalidInputError(
            f"The array has samples of shape {sample_shape}, but the model expects "
            f"{math.prod(detector.input_shape_)} features (samples of shape "
            f"{detector.input_shape_}). "
            "Pass one sample per row, shaped like the training data."
        )


# ---------------------------------------------------------------- reading files


def _npy_rows(path: str, start: int, stop: int) -> NDArray[Any]:
    """Rows ``start:stop`` of a .npy file, read through a memory map (runs on a worker)."""
    return np.array(np.load(path, mmap_mode="r", allow_pickle=False)[start:stop])


def _row_ranges(n_rows: int, partition_rows: int) -> list[tuple[int, int]]:
    return [
        (start, min(start + partition_rows, n_rows)) for start in range(0, n_rows, partition_rows)
    ]


def _read_npy(path: str, partition_rows: int) -> da.Array:
    # Memory-mapped: checks the header and the file's size, reads no data.
    header = cast("NDArray[Any]", read_file(path))
    if header.ndim == 0 or header.shape[0] == 0:
        raise InvalidInputError(f"{path} holds no samples (an array of shape {header.shape}).")
    blocks = [
        da.from_delayed(
            dask.delayed(_npy_rows, pure=True)(path, start, stop),
            shape=(stop - start, *header.shape[1:]),
            dtype=header.dtype,
            meta=np.empty((0, *header.shape[1:]), dtype=header.dtype),
        )
        for start, stop in _row_ranges(int(header.shape[0]), partition_rows)
    ]
    return da.concatenate(blocks, axis=0)


def _read_parquet(path: str, partition_rows: int) -> dd.DataFrame:
    import pyarrow.parquet as pq

    if not Path(path).is_file():  # a folder of files: Dask's own partitioning
        return dd.read_parquet(path, engine="pyarrow")
    metadata = pq.ParquetFile(path).metadata
    n_rows, n_groups = metadata.num_rows, max(1, metadata.num_row_groups)
    # Whole row groups per partition, as many as make about partition_rows rows.
    groups = max(1, round(partition_rows / max(1.0, n_rows / n_groups)))
    frame = dd.read_parquet(path, engine="pyarrow", split_row_groups=groups)
    wanted = max(1, math.ceil(n_rows / partition_rows))
    if wanted > frame.npartitions:  # few, large row groups: split them for parallelism
        frame = frame.repartition(npartitions=wanted)
    return frame


def _read_csv(path: str, partition_rows: int) -> dd.DataFrame:
    if path.lower().endswith(".gz"):  # gzip streams cannot be split
        return dd.read_csv(path, blocksize=None, assume_missing=True)
    with open(path, "rb") as handle:
        sample = handle.read(CSV_SAMPLE_BYTES)
    bytes_per_row = len(sample) / max(1, sample.count(b"\n"))
    blocksize = max(int(bytes_per_row * partition_rows), 2**16)
    return dd.read_csv(path, blocksize=blocksize, assume_missing=True)


def read_data(path: str | os.PathLike[str], *, partition_rows: int) -> Any:
    """See :func:`hourglass.dask.read_data`."""
    file = Path(path)
    if not file.exists():
        raise DatasetError(f"Data file {file} does not exist. Check the path.")
    name = file.name.lower()
    location = str(file.resolve())  # workers may run in another directory
    if name.endswith(".npy"):
        return _read_npy(location, partition_rows)
    if name.endswith(".parquet"):
        return _read_parquet(location, partition_rows)
    if name.removesuffix(".gz").endswith(".csv"):
        return _read_csv(location, partition_rows)
    values = read_file(location)
    if isinstance(values, pd.DataFrame):  # pragma: no cover - tables are handled above
        return dd.from_pandas(values, chunksize=partition_rows)
    array = np.array(values, dtype=object) if isinstance(values, list) else np.asarray(values)
    return da.from_array(array, chunks=(partition_rows, *array.shape[1:]))
