"""Helpers shared by the CLI verbs: reading data, loading models, writing outputs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hourglass._atomic import atomic_file
from hourglass.data.files import read_data
from hourglass.exceptions import InvalidInputError

__all__ = [
    "add_data_arguments",
    "add_json_argument",
    "add_model_arguments",
    "check_table_path",
    "print_json",
    "read_input",
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


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every verb that reads a data file accepts."""
    parser.add_argument(
        "--drop-columns",
        metavar="COLS",
        default="",
        help="comma-separated columns to ignore in CSV/Parquet data (e.g. an id or a label)",
    )


def read_input(path: str, drop_columns: str = "") -> Any:
    """Read a data file for a model; drop the named columns of a table."""
    data = read_data(path)
    names = [name.strip() for name in drop_columns.split(",") if name.strip()]
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
        raise InvalidInputError(f"Cannot write {path}: use a .csv or .parquet file name.")
    return suffix


def write_table(frame: pd.DataFrame, path: str) -> None:
    """Write ``frame`` to ``path`` (.csv or .parquet), atomically."""
    suffix = check_table_path(path)
    with atomic_file(path) as tmp:
        if suffix == ".csv":
            frame.to_csv(tmp, index=False)
        else:
            frame.to_parquet(tmp, index=False)


def write_array(array: np.ndarray[Any, Any], path: str) -> None:
    """Write ``array`` to ``path`` (.npy, .csv or .parquet), atomically."""
    suffix = Path(path).suffix.lower()
    if suffix == ".npy":
        with atomic_file(path) as tmp, open(tmp, "wb") as handle:
            np.save(handle, array, allow_pickle=False)
        return
    columns = [f"z{i}" for i in range(array.shape[1])]
    write_table(pd.DataFrame(array, columns=columns), path)
