"""Helpers shared by the CLI verbs: reading data, loading models, writing outputs."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hourglass._atomic import atomic_file
from hourglass.data.files import read_data
from hourglass.data.stream import STREAM_FORMATS, Stream
from hourglass.exceptions import InvalidInputError, InvalidParameterError

__all__ = [
    "TableWriter",
    "add_data_arguments",
    "add_json_argument",
    "add_model_arguments",
    "at_least",
    "check_table_path",
    "integer_or_auto",
    "positive_seconds",
    "print_json",
    "read_input",
    "read_table",
    "without_columns",
    "write_table",
]


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The saved model every verb that uses one takes, and where to run it."""
    parser.add_argument("model", metavar="MODEL_DIR", help="a model saved by 'hourglass train'")
    parser.add_argument("--device", default=None, help="override the model's device")


def add_json_argument(parser: argparse.ArgumentParser) -> None:
    """``--json``: machine-readable results on standard output instead of a summary."""
    parser.add_argument(
        "--json", action="store_true", help="print the results as JSON on standard output"
    )


def print_json(summary: dict[str, Any], table: pd.DataFrame) -> None:
    """Print ``summary`` with the rows of ``table`` (as records) as one JSON object."""
    import json

    records = json.loads(table.to_json(orient="records"))
    print(json.dumps({**summary, "results": records}))


def add_data_arguments(parser: argparse.ArgumentParser, *, streaming: bool = False) -> None:
    """The options every verb that reads a data file accepts (``--stream`` where it can)."""
    parser.add_argument(
        "--drop-columns",
        metavar="COLS",
        default="",
        help="comma-separated columns to ignore in CSV/Parquet data (e.g. an id or a label)",
    )
    if not streaming:
        parser.set_defaults(stream="never")  # the verb needs every sample in memory
        return
    parser.add_argument(
        "--stream",
        choices=("auto", "always", "never"),
        default="auto",
        help=(
            "read DATA in pieces instead of whole: 'auto' (default) streams directories and "
            f"{'/'.join(STREAM_FORMATS)} files over {STREAM_THRESHOLD_BYTES // 2**20} MiB "
            "($HOURGLASS_STREAM_BYTES overrides)"
        ),
    )


#: Files larger than this are read in pieces (``--stream auto``).
STREAM_THRESHOLD_BYTES = 1024 * 2**20


def _streams(path: Path, mode: str) -> bool:
    """Whether ``--stream mode`` reads ``path`` as a stream."""
    if mode != "auto":
        return mode == "always"
    if path.is_dir():
        return True
    if path.suffix.lower() not in STREAM_FORMATS or not path.is_file():
        return False
    threshold = os.environ.get("HOURGLASS_STREAM_BYTES", "")
    limit = int(threshold) if threshold.strip().isdigit() else STREAM_THRESHOLD_BYTES
    return path.stat().st_size > limit


def read_input(path: str, drop_columns: str = "", stream: str = "auto") -> Any:
    """Read a data file for a model (whole, or as a :class:`Stream`); drop the named columns."""
    names = [name.strip() for name in drop_columns.split(",") if name.strip()]
    if _streams(Path(path), stream):
        return Stream.open(path, drop_columns=names)
    data = read_data(path)
    return without_columns(data, names, path) if names else data


def without_columns(data: Any, names: list[str], path: str) -> Any:
    """``data`` (a pandas or Dask DataFrame read from ``path``) without the columns ``names``."""
    if not hasattr(data, "columns"):
        raise InvalidInputError(
            f"--drop-columns applies to CSV and Parquet files; {path} holds an array."
        )
    missing = [name for name in names if name not in data.columns]
    if missing:
        raise InvalidInputError(
            f"--drop-columns names {missing}, which {path} does not have; its columns are "
            f"{list(map(str, data.columns))}."
        )
    return data.drop(columns=names)


def check_table_path(path: str) -> str:
    """The suffix of ``path``, a table file name (.csv or .parquet); raise for others."""
    suffix = Path(path).suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise InvalidParameterError(f"Cannot write {path}: use a .csv or .parquet file name.")
    return suffix


def write_table(frame: pd.DataFrame, path: str) -> None:
    """Write ``frame`` to ``path`` (.csv or .parquet), atomically."""
    with TableWriter(path) as writer:
        writer.write(frame)


class TableWriter:
    """Write a table to ``path`` (.csv or .parquet) in parts, atomically.

    Use as a context manager; :meth:`write` appends rows. The file appears,
    complete, when the block ends without an error, and not at all otherwise.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.suffix = check_table_path(path)
        self.n_rows = 0
        self._parquet: Any = None

    def __enter__(self) -> TableWriter:
        self._atomic = atomic_file(self.path)
        self._tmp = self._atomic.__enter__()
        return self

    def write(self, frame: pd.DataFrame) -> None:
        """Append the rows of ``frame`` (every part has the same columns)."""
        if self.suffix == ".csv":
            frame.to_csv(self._tmp, index=False, mode="a", header=self.n_rows == 0)
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self._tmp, table.schema)
            self._parquet.write_table(table)
        self.n_rows += len(frame)

    def __exit__(self, *exc_info: Any) -> None:
        if self._parquet is not None:
            self._parquet.close()
        self._atomic.__exit__(*exc_info)


def read_table(path: str) -> pd.DataFrame:
    """A table written by :func:`write_table` or :class:`TableWriter`."""
    return pd.read_csv(path) if check_table_path(path) == ".csv" else pd.read_parquet(path)


def at_least(low: int) -> Callable[[str], int]:
    """An argparse ``type``: an integer of at least ``low``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}; got {text!r}")
        return value

    return parse


def integer_or_auto(what: str) -> Callable[[str], int | str]:
    """An argparse ``type``: "auto" or an integer (``what`` names it in the error)."""

    def parse(text: str) -> int | str:
        if text == "auto":
            return text
        try:
            return int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what} or 'auto'; got {text!r}") from None

    return parse


def positive_seconds(text: str) -> float:
    """An argparse ``type``: a finite positive number of seconds."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds; got {text!r}")
    return value


def write_array(array: np.ndarray[Any, Any], path: str) -> None:
    """Write ``array`` to ``path`` (.npy, .csv or .parquet), atomically."""
    suffix = Path(path).suffix.lower()
    if suffix == ".npy":
        with atomic_file(path) as tmp, open(tmp, "wb") as handle:
            np.save(handle, array, allow_pickle=False)
        return
    columns = [f"z{i}" for i in range(array.shape[1])]
    write_table(pd.DataFrame(array, columns=columns), path)
