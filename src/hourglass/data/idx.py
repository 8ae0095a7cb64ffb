"""Read and write IDX files, the format of MNIST and Fashion-MNIST.

An IDX file is a 4-byte header, one big-endian ``uint32`` per dimension, then
the array's values in C order, big-endian::

    byte 0-1   0x00 0x00           the magic number's first half: always zero
    byte 2     type code           0x08 uint8, 0x09 int8, 0x0B int16,
                                   0x0C int32, 0x0D float32, 0x0E float64
    byte 3     number of dims      n
    4 n bytes  the n sizes         big-endian uint32 each
    the rest   the values          big-endian, C order

Files may be gzip-compressed; :func:`read_idx` recognises gzip by its magic
bytes (``1f 8b``), whatever the file is called.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from hourglass._atomic import atomic_file
from hourglass.exceptions import InvalidInputError

__all__ = ["read_idx", "write_idx"]

# IDX type code -> big-endian NumPy dtype of the payload.
_CODE_TO_DTYPE: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
# (kind, itemsize) -> IDX type code, whatever the byte order of the array.
_DTYPE_TO_CODE: dict[tuple[str, int], int] = {
    (dtype.kind, dtype.itemsize): code for code, dtype in _CODE_TO_DTYPE.items()
}
_GZIP_MAGIC = b"\x1f\x8b"
_HEADER_SIZE = 4
# The most dimensions a NumPy array can have.
_MAX_DIMS = 64


def _valid_codes() -> str:
    return ", ".join(f"0x{code:02X} ({dtype.name})" for code, dtype in _CODE_TO_DTYPE.items())


def _read_source(source: str | os.PathLike[str] | bytes | bytearray) -> tuple[bytes, str]:
    """Return the (decompressed) content of ``source`` and a name for messages."""
    if isinstance(source, bytes | bytearray):
        raw, name = bytes(source), "the IDX data"
    else:
        path = Path(source)
        name = str(path)
        try:
            raw = path.read_bytes()
        except FileNotFoundError as exc:
            raise InvalidInputError(
                f"IDX file {name} does not exist. Check the path, or download the data set again."
            ) from exc
        except OSError as exc:
            raise InvalidInputError(f"Cannot read IDX file {name}: {exc}.") from exc
    if raw[:2] != _GZIP_MAGIC:
        return raw, name
    try:
        return gzip.decompress(raw), name
    except (EOFError, OSError, zlib.error) as exc:
        # EOFError: the stream stops early (a truncated download); BadGzipFile
        # (an OSError) and zlib.error: corrupted compressed bytes.
        raise InvalidInputError(
            f"{name} is a damaged gzip file ({exc}); it is probably truncated or corrupted. "
            "Delete it and download or copy it again."
        ) from exc


def read_idx(source: str | os.PathLike[str] | bytes | bytearray) -> npt.NDArray[Any]:
    """Read an IDX array from a file or from bytes, gzip-compressed or not.

    Parameters
    ----------
    source : str, path-like, bytes or bytearray
        A path to an IDX file, or the file's content. Gzip compression is
        detected from the content's first two bytes, not from the file name.

    Returns
    -------
    numpy.ndarray
        A writable array in native byte order, with the file's dtype (uint8,
        int8, int16, int32, float32 or float64) and as many dimensions as the
        header declares.

    Raises
    ------
    InvalidInputError
        If the file is missing or unreadable, the gzip stream is damaged, the
        magic number, type code or number of dimensions is wrong, or the payload
        is shorter or longer than the header's dimensions require. The message
        names the file.

    See Also
    --------
    write_idx : The inverse operation.

    Examples
    --------
    >>> from hourglass.data import read_idx
    >>> read_idx(bytes([0, 0, 0x08, 1, 0, 0, 0, 3, 7, 8, 9]))
    array([7, 8, 9], dtype=uint8)
    """
    data, name = _read_source(source)
    if len(data) < _HEADER_SIZE:
        raise InvalidInputError(
            f"{name} is not an IDX file: it holds {len(data)} bytes, fewer than the "
            f"{_HEADER_SIZE}-byte IDX header."
        )
    if data[0] != 0 or data[1] != 0:
        raise InvalidInputError(
            f"{name} is not an IDX file: bad magic number 0x{data[:4].hex().upper()}. "
            "An IDX file starts with two zero bytes, a type code and the number of dimensions "
            "(0x00000803 for MNIST images)."
        )
    code, ndim = data[2], data[3]
    if code not in _CODE_TO_DTYPE:
        raise InvalidInputError(
            f"{name} has an unknown IDX type code 0x{code:02X}. Expected one of {_valid_codes()}."
        )
    dims_end = _HEADER_SIZE + 4 * ndim
    if len(data) < dims_end:
        raise InvalidInputError(
            f"{name} is truncated: its header declares {ndim} dimensions, which need "
            f"{dims_end} header bytes, but the file holds only {len(data)} bytes."
        )
    if ndim > _MAX_DIMS:
        raise InvalidInputError(
            f"{name} declares {ndim} dimensions; NumPy arrays have at most {_MAX_DIMS}. The "
            "header is probably corrupted: download or copy the file again."
        )
    shape = struct.unpack(f">{ndim}I", data[_HEADER_SIZE:dims_end])
    dtype = _CODE_TO_DTYPE[code]
    expected = math.prod(shape) * dtype.itemsize
    got = len(data) - dims_end
    if got < expected:
        raise InvalidInputError(
            f"{name} is truncated: a {dtype.name} array of shape {shape} needs {expected} bytes "
            f"after the header, got {got}. Delete the file and download or copy it again."
        )
    if got > expected:
        raise InvalidInputError(
            f"{name} is malformed: a {dtype.name} array of shape {shape} needs {expected} bytes "
            f"after the header, got {got} ({got - expected} trailing bytes)."
        )
    values = np.frombuffer(data, dtype=dtype, count=math.prod(shape), offset=dims_end)
    # astype copies: the result is writable and in native byte order.
    return values.reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(
    path: str | os.PathLike[str],
    array: npt.ArrayLike,
    *,
    compress: bool | None = None,
) -> Path:
    """Write an array to an IDX file, atomically.

    Parameters
    ----------
    path : str or path-like
        Where to write. An existing file is replaced only once the new one is
        complete.
    array : array-like
        The values. Their dtype must be one IDX can store: uint8, int8, int16,
        int32, float32 or float64 (any byte order). At most 255 dimensions,
        each smaller than 2**32.
    compress : bool or None, default=None
        Whether to gzip the file. ``None`` compresses when ``path`` ends in
        ``.gz``. The gzip header carries no time stamp, so equal arrays give
        identical files.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    InvalidInputError
        If the dtype or shape cannot be stored in IDX.

    See Also
    --------
    read_idx : The inverse operation.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from hourglass.data import read_idx, write_idx
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = write_idx(f"{folder}/x.idx.gz", np.arange(6, dtype=np.int16).reshape(2, 3))
    ...     read_idx(path)
    array([[0, 1, 2],
           [3, 4, 5]], dtype=int16)
    """
    values = np.asarray(array)
    code = _DTYPE_TO_CODE.get((values.dtype.kind, values.dtype.itemsize))
    if code is None:
        raise InvalidInputError(
            f"IDX cannot store dtype {values.dtype}. Expected one of {_valid_codes()}; "
            "convert the array with .astype() first."
        )
    if values.ndim > 255 or any(size >= 2**32 for size in values.shape):
        raise InvalidInputError(
            f"IDX cannot store an array of shape {values.shape}: it allows at most 255 "
            "dimensions, each smaller than 2**32."
        )
    header = struct.pack(f">BBBB{values.ndim}I", 0, 0, code, values.ndim, *values.shape)
    content = header + np.ascontiguousarray(values, dtype=_CODE_TO_DTYPE[code]).tobytes()
    target = Path(path)
    if compress is None:
        compress = target.suffix == ".gz"
    if compress:
        content = gzip.compress(content, mtime=0)
    with atomic_file(target) as tmp:
        tmp.write_bytes(content)
    return target
