"""Read a data file whatever its format: NumPy, CSV, Parquet or IDX."""

from __future__ import annotations

import codecs
import gzip
import os
import re
import warnings
import zipfile
import zlib
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
    ".txt or .txt.gz (UTF-8 text, one text per line)",
)
# Names IDX files go by: t10k-images-idx3-ubyte, train-images.idx3-ubyte, x.idx, x.idx3.
_IDX_NAME = re.compile(r"(ubyte|\.idx\d*)$", re.IGNORECASE)


def _supported() -> str:
    return "Supported formats: " + "; ".join(SUPPORTED_FORMATS) + "."


_NPY_MAGIC = b"\x93NUMPY"
# Byte-order marks and the codecs of the text after them, longest mark first: a UTF-32
# LE mark starts like a UTF-16 LE one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def _read_npy(path: Path) -> npt.NDArray[Any]:
    """A .npy file, memory-mapped read-only; refuses files with missing or extra bytes."""
    with open(path, "rb") as handle:
        magic = handle.read(len(_NPY_MAGIC))
    if magic != _NPY_MAGIC:
        raise InvalidInputError(
            f"{path} is not a .npy file: it does not start with the NumPy magic bytes "
            f"(got {magic!r}). It is truncated or in another format; save the array with "
            "numpy.save(path, array)."
        )
    try:
        array: npt.NDArray[Any] = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as error:
        if "mmap length" not in str(error):
            raise
        raise InvalidInputError(  # "mmap length is greater than file size"
            f"{path} is truncated: its header describes more data than the file holds. Save "
            "the array again with numpy.save."
        ) from None
    offset = getattr(array, "offset", None)
    size = path.stat().st_size
    if offset is not None and offset + array.nbytes != size:
        raise InvalidInputError(
            f"{path} is malformed: its header describes a {array.dtype} array of shape "
            f"{array.shape} ({array.nbytes} bytes after the {offset}-byte header), but the file "
            f"holds {size - offset} bytes there. Save the array again with numpy.save."
        )
    return array


def _read_npz(path: Path) -> npt.NDArray[Any]:
    with np.load(path, allow_pickle=False) as archive:
        keys = list(archive.files)
        key = "X" if "X" in keys else keys[0] if len(keys) == 1 else None
        if key is not None:
            value = archive[key]
            if not isinstance(value, np.ndarray):  # a member that is not a .npy file
                raise InvalidInputError(
                    f"{path} holds a member {key!r} that is not a NumPy array. Save the "
                    "archive again with numpy.savez(path, X=data)."
                )
            return value
    raise InvalidInputError(
        f"{path} holds the arrays {keys or '(none)'}, and hourglass cannot tell which one is "
        "the data. Expected an array named 'X' or a single array; save it with "
        "numpy.savez(path, X=data)."
    )


def _read_csv(path: Path) -> pd.DataFrame:
    """A CSV table; rows with more fields than the header are an error, not an index."""
    with warnings.catch_warnings():
        # Without index_col=False, pandas silently turns the extra leading fields of
        # such rows into an index; with it, pandas drops the extra fields with a warning.
        warnings.simplefilter("error", pd.errors.ParserWarning)
        try:
            return pd.read_csv(path, index_col=False)
        except pd.errors.ParserWarning:
            raise InvalidInputError(
                f"{path} is malformed: some rows have more fields than its header has column "
                "names. Check the separators and quoting, or add the missing column names."
            ) from None
        except UnicodeDecodeError as exc:
            bad = exc.object[exc.start : exc.start + 1].hex().upper()
            raise InvalidInputError(
                f"{path} is not UTF-8 text: it holds the byte 0x{bad} ({exc.reason}). Save it "
                "as UTF-8, e.g. with iconv -f latin1 -t utf-8, or from your spreadsheet program."
            ) from None


def _read_parquet(path: Path) -> npt.NDArray[Any] | pd.DataFrame:
    """A Parquet table; one fixed-size-list column (a sample per row) gives an array."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    if table.num_columns == 1 and pa.types.is_fixed_size_list(table.schema.field(0).type):
        column = table.column(0).combine_chunks()
        size = table.schema.field(0).type.list_size
        values: npt.NDArray[Any] = column.flatten().to_numpy(zero_copy_only=False)
        return values.reshape(len(column), size)
    frame: pd.DataFrame = table.to_pandas()
    return frame


def _lines(text: str) -> list[str]:
    """The lines of ``text``: split at line breaks (LF, CR LF or CR) and nothing else.

    ``str.splitlines`` would also split at form feeds, vertical tabs and Unicode line
    separators inside a line, giving more texts than the file has lines.
    """
    # Without any LF: classic Mac line endings (CR), or a single line.
    return _split_lines(text, "\n" if "\n" in text else "\r")


def _split_lines(text: str, line_break: str) -> list[str]:
    """The lines of ``text``, each ended by ``line_break`` (LF, or CR in a file without LF).

    Blank lines are kept, as empty texts; a CR before the LF is dropped. A stream
    reads a text file's blocks of whole lines with this, so that it reads the same
    lines as :func:`read_data`.
    """
    lines = text.split(line_break)
    if lines[-1] == "":
        lines.pop()  # the file's final line break ends the last line; no empty text after it
    return [line.removesuffix("\r") for line in lines]


def _text_encoding(start: bytes) -> tuple[int, str]:
    """The length of the byte-order mark ``start`` begins with (0 if none), and the codec after it.

    UTF-8 without a mark; UTF-8, UTF-16 or UTF-32 with one.
    """
    for bom, codec in _BOMS:
        if start.startswith(bom):
            return len(bom), codec
    return 0, "utf-8"


def _read_text(path: Path, compressed: bool) -> list[str]:
    """Lines of a text file: UTF-8, or UTF-16/32 with a byte-order mark; bad bytes replaced."""
    raw = path.read_bytes()
    if compressed:
        raw = gzip.decompress(raw)
    skip, codec = _text_encoding(raw[:4])
    return _lines(raw[skip:].decode(codec, errors="replace"))


def read_data(path: str | os.PathLike[str]) -> npt.NDArray[Any] | pd.DataFrame | list[str]:
    """Read a data matrix or table from a file, choosing the reader by the file name.

    Parameters
    ----------
    path : str or path-like
        The file. Its name picks the format:

        - ``.npy``: a NumPy array, memory-mapped read-only (no pickles);
        - ``.npz``: the array named ``X``, or the archive's only array (no pickles);
        - ``.csv``, ``.csv.gz``: a :class:`pandas.DataFrame`;
        - ``.parquet``: a :class:`pandas.DataFrame` (read with pyarrow), or an
          array when the file holds one fixed-size-list column (a sample per row);
        - IDX (``.idx``, ``.idx1``, ``.idx3``, ..., ``*-ubyte``), raw or gzipped,
          and any other ``.gz`` file, which is read as gzipped IDX;
        - ``.txt``, ``.txt.gz``: UTF-8 text, one text per line (for sequence
          models); UTF-16 and UTF-32 files with a byte-order mark are decoded
          too; bytes that are not valid text are replaced, never fatal.

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
            return _read_npy(file)
        if name.endswith(".npz"):
            return _read_npz(file)
        if inner.endswith(".csv"):
            return _read_csv(file)
        if name.endswith(".parquet"):
            return _read_parquet(file)
        if inner.endswith(".txt"):
            return _read_text(file, compressed=name.endswith(".gz"))
        if name.endswith(".gz") or _IDX_NAME.search(name):
            return read_idx(file)
    except (InvalidInputError, DatasetError):
        raise
    except PermissionError as exc:
        raise DatasetError(f"Cannot read {file}: {exc}. Check its permissions.") from exc
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        # ValueError covers pickled .npy/.npz content, pandas' ParserError and
        # EmptyDataError, and pyarrow's ArrowInvalid; OSError and EOFError damaged gzip.
        reason = " ".join(str(exc).split()).rstrip(".")  # some messages span lines
        raise InvalidInputError(
            f"Cannot read {file} as {file.suffix or 'its'} data: {reason}. "
            f"Check that the file is complete and in the format its name says. {_supported()}"
        ) from exc
    raise InvalidInputError(
        f"Cannot read {file}: unknown file type {file.suffix or '(no suffix)'!r}. "
        f"{_supported()} Rename the file or convert it to one of these."
    )
