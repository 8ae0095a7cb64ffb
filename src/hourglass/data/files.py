"""Read a data file whatever its format: NumPy, CSV, Parquet or IDX."""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from hourglass.data.idx import read_idx
from hourglass.exceptions import DatasetError, InvalidInputError

__all__ = ["SUPPORTED_FORMATS", "read_data"]

SUPPORTED_FORMATS = (
    ".npy (one array)",
    ".npz (the array 'X', or its only array)",
    ".csv or .csv.gz (a table)",
    ".parquet (a table)",
    "IDX (.idx, .idx1, .idx3, ..., *-ubyte; raw or .gz)",
    ".txt (UTF-8 text, one text per line)",
)
# Names IDX files go by: t10k-images-idx3-ubyte, train-images.idx3-ubyte, x.idx, x.idx3.
_IDX_NAME = re.compile(r"(ubyte|\.idx\d*)$", re.IGNORECASE)


def _supported() -> str:
    return "Supported formats: " + "; ".join(SUPPORTED_FORMATS) + "."


def _read_npz(path: Path) -> npt.NDArray[Any]:
    with np.load(path, allow_pickle=False) as archive:
        keys = list(archive.files)
        if "X" in keys:
            return np.asarray(archive["X"])
        if len(keys) == 1:
            return np.asarray(archive[keys[0]])
    raise InvalidInputError(
        f"{path} holds the arrays {keys or '(none)'}, and hourglass cannot tell which one is "
        "the data. Expected an array named 'X' or a single array; save it with "
        "numpy.savez(path, X=data)."
    )


def read_data(path: str | os.PathLike[str]) -> npt.NDArray[Any] | pd.DataFrame | list[str]:
    """Read a data matrix or table from a file, choosing the reader by the file name.

    Parameters
    ----------
    path : str or path-like
        The file. Its name picks the format:

        - ``.npy``: a NumPy array, memory-mapped read-only (no pickles);
        - ``.npz``: the array named ``X``, or the archive's only array (no pickles);
        - ``.csv``, ``.csv.gz``: a :class:`pandas.DataFrame`;
        - ``.parquet``: a :class:`pandas.DataFrame` (read with pyarrow);
        - IDX (``.idx``, ``.idx1``, ``.idx3``, ..., ``*-ubyte``), raw or gzipped,
          and any other ``.gz`` file, which is read as gzipped IDX;
        - ``.txt``: UTF-8 text, one text per line (for sequence models); bytes
          that are not valid UTF-8 are replaced, never fatal.

    Returns
    -------
    numpy.ndarray, pandas.DataFrame or list of str
        An array for NumPy and IDX files, a data frame for CSV and Parquet, the
        lines for text.

    Raises
    ------
    DatasetError
        If the file does not exist or cannot be read.
    InvalidInputError
        If the format is not supported, or the file is malformed for its format.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from hourglass.data import read_data
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     np.save(f"{folder}/x.npy", np.eye(2))
    ...     read_data(f"{folder}/x.npy")
    memmap([[1., 0.],
            [0., 1.]])
    """
    file = Path(path)
    if not file.exists():
        raise DatasetError(f"Data file {file} does not exist. Check the path. {_supported()}")
    if file.is_dir():
        raise InvalidInputError(f"{file} is a folder; pass a data file. {_supported()}")
    name = file.name.lower()
    inner = name.removesuffix(".gz")
    try:
        if name.endswith(".npy"):
            array: npt.NDArray[Any] = np.load(file, mmap_mode="r", allow_pickle=False)
            return array
        if name.endswith(".npz"):
            return _read_npz(file)
        if inner.endswith(".csv"):
            return pd.read_csv(file)
        if name.endswith(".parquet"):
            return pd.read_parquet(file, engine="pyarrow")
        if name.endswith(".txt"):
            return file.read_text(encoding="utf-8", errors="replace").splitlines()
        if name.endswith(".gz") or _IDX_NAME.search(name):
            return read_idx(file)
    except (InvalidInputError, DatasetError):
        raise
    except PermissionError as exc:
        raise DatasetError(f"Cannot read {file}: {exc}. Check its permissions.") from exc
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        # ValueError covers pickled .npy/.npz content, pandas' ParserError, EmptyDataError and
        # UnicodeDecodeError, and pyarrow's ArrowInvalid.
        raise InvalidInputError(
            f"Cannot read {file} as {file.suffix or 'its'} data: {exc}. "
            f"Check that the file is complete and in the format its name says. {_supported()}"
        ) from exc
    raise InvalidInputError(
        f"Cannot read {file}: unknown file type {file.suffix or '(no suffix)'!r}. "
        f"{_supported()} Rename the file or convert it to one of these."
    )
