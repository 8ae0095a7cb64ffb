"""Data larger than memory: files read in chunks, never whole.

A :class:`Stream` stands for a data set on disk, a ``.npy`` array, a Parquet or
CSV table, a text file of one text per line, or a directory of such files, and
reads it piece by piece with NumPy and pyarrow. Estimators take a stream
wherever they take an array: ``fit`` trains on shuffled batches drawn through a
bounded shuffle buffer, and every scoring method goes through the stream piece
by piece.

The stream is cut into *blocks* (a Parquet row group, a CSV file, a run of
rows of a ``.npy`` file, a run of whole lines of a text file) that can be read
in any order; a block is read in *pieces* of bounded size. Training shuffles
the order of the blocks every epoch and mixes the rows of several blocks in a
buffer. Splits (validation, calibration) are drawn row by row from a seeded
generator per block, so they cost no reading and are the same on every pass.
"""

from __future__ import annotations

import ctypes
import hashlib
import math
import os
import sys
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from numpy.typing import NDArray

from hourglass.exceptions import InvalidInputError

__all__ = ["STREAM_FORMATS", "Stream", "StreamSource"]

#: File suffixes a stream reads.
STREAM_FORMATS = (".npy", ".parquet", ".csv", ".txt")
#: Default size of a block of a ``.npy`` file and of a piece read at once.
PIECE_BYTES = 32 * 2**20
#: Default size of the training shuffle buffer.
BUFFER_BYTES = 128 * 2**20

Kind = Literal["npy", "parquet", "csv", "txt"]
#: The column of a text stream's tables.
TEXT_COLUMN = "text"
#: How much of a text file its line count reads at once.
TEXT_SCAN_BYTES = 4 * 2**20
# A str in memory: the object's header (sys.getsizeof("")) and its pointer in an array.
_STR_OVERHEAD_BYTES = 49 + 8


@dataclass(frozen=True)
class _Block:
    """A part of one file that can be read on its own."""

    path: Path
    kind: Kind
    n_rows: int
    row_group: int = 0  # parquet
    start: int = 0  # npy: first row
    offset: int = 0  # txt: the byte where the block's first line starts
    n_bytes: int = 0  # txt: the bytes of its lines, line breaks included
    encoding: str = "utf-8"  # txt: the codec of the file (after its byte-order mark)
    line_break: str = "\n"  # txt: what ends a line ("\r" in a file without any "\n")


@dataclass(frozen=True)
class _Split:
    """The rows whose seeded uniform draw is below ``fraction`` (``inside``), or the others."""

    seed: int
    fraction: float
    inside: bool


def _row_draws(seed: int, block_index: int, n_rows: int) -> NDArray[np.float64]:
    return np.random.default_rng([seed, block_index]).random(n_rows)


@dataclass(frozen=True)
class Stream:
    """A data set on disk read in pieces: ``.npy``, Parquet, CSV, text, or a directory of them.

    Open one with :meth:`Stream.open`; pass it to ``fit`` or any scoring
    method of an estimator instead of an array. The constructor's fields are
    what :meth:`open`, :meth:`split` and :meth:`shard` fill in; build streams
    with them rather than by hand.

    Attributes
    ----------
    blocks : tuple
        The files (or row groups) read, in order, with their row counts.
    sample_shape : tuple of int
        Shape of one sample: ``(n_features,)`` for tables, ``(h, w)`` for a
        ``.npy`` file of images, ``()`` for texts (one str per row).
    dtype : numpy.dtype
        The values' type as stored (``object`` for texts).
    columns : tuple of str or None
        Column names of a table (``("text",)`` for texts); None for ``.npy``
        arrays and image columns.
    list_column : str or None
        Parquet only: the column holding each sample as one fixed-size list.
    splits : tuple
        The row selections of :meth:`split` applied so far (none: every row).
    piece_bytes : int
        About how much is read at once.
    selected_blocks : tuple of int or None
        The blocks this stream reads (None: all); a process's share, see :meth:`shard`.
    """

    blocks: tuple[_Block, ...]
    sample_shape: tuple[int, ...]
    dtype: np.dtype[Any]
    columns: tuple[str, ...] | None
    list_column: str | None = None  # parquet: samples stored as one fixed-size list column
    splits: tuple[_Split, ...] = field(default=())
    piece_bytes: int = PIECE_BYTES
    # The blocks this stream reads (all when None): a process's share, see shard().
    selected_blocks: tuple[int, ...] | None = None

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        drop_columns: Sequence[str] = (),
        piece_bytes: int = PIECE_BYTES,
    ) -> Stream:
        """Open a ``.npy``, ``.parquet``, ``.csv`` or ``.txt`` file, or a directory of them.

        A ``.txt`` file holds one text per line, read as
        :func:`~hourglass.data.read_data` reads it: UTF-8 (or UTF-16/32 with a
        byte-order mark), bytes that are not valid text replaced, blank lines
        kept as empty texts. Opening it counts its lines (one pass over the
        file) and cuts it into blocks of whole lines of about ``piece_bytes``.

        Parameters
        ----------
        path : path
            A file, or a directory whose files (of one format and one layout)
            are read in name order. A directory of tables or arrays may hold
            ``.txt`` files beside them (notes, a README), which are left out;
            it is read as text only when it holds nothing else.
        drop_columns : sequence of str, default=()
            Columns of a table to leave out (an id, a label).
        piece_bytes : int, default=32 MiB
            About how much is read at once.

        Returns
        -------
        Stream

        Raises
        ------
        InvalidInputError
            If the path is missing, empty, or of an unsupported format, or the
            files of a directory differ in format or layout.
        """
        root = Path(path)
        if root.is_dir():
            files = sorted(
                p for p in root.iterdir() if p.is_file() and p.suffix.lower() in STREAM_FORMATS
            )
            if any(p.suffix.lower() != ".txt" for p in files):  # text beside data: notes
                files = [p for p in files if p.suffix.lower() != ".txt"]
            if not files:
                raise InvalidInputError(
                    f"{root} holds no {', '.join(STREAM_FORMATS)} files to read. Point to a "
                    "file, or to a directory of files of one format."
                )
        elif root.is_file():
            files = [root]
        else:
            raise InvalidInputError(f"{root} does not exist. Check the path.")
        suffixes = {p.suffix.lower() for p in files}
        if len(suffixes) > 1:
            raise InvalidInputError(
                f"{root} mixes {sorted(suffixes)} files; a stream reads files of one format. "
                "Move the others elsewhere."
            )
        suffix = suffixes.pop()
        if suffix not in STREAM_FORMATS:
            raise InvalidInputError(
                f"Cannot stream {root}: use {', '.join(STREAM_FORMATS)} files (or read it "
                "whole with hourglass.data.read_data)."
            )
        opener = {
            ".npy": _open_npy,
            ".parquet": _open_parquet,
            ".csv": _open_csv,
            ".txt": _open_txt,
        }[suffix]
        parts = [opener(p, tuple(drop_columns), piece_bytes) for p in files]
        first = parts[0]
        for part, file in zip(parts[1:], files[1:], strict=True):
            if (part.sample_shape, part.columns, part.list_column) != (
                first.sample_shape,
                first.columns,
                first.list_column,
            ):
                raise InvalidInputError(
                    f"{file} does not match {files[0]}: samples of shape {part.sample_shape}"
                    f" (columns {part.columns}) against {first.sample_shape} (columns "
                    f"{first.columns}). The files of a directory must share one layout."
                )
        dtype = np.result_type(*(part.dtype for part in parts))
        blocks = tuple(block for part in parts for block in part.blocks)
        if suffix == ".txt" and not blocks:
            raise InvalidInputError(
                f"{root} holds no lines of text: a text stream reads one text per line. Point "
                "to a .txt file that has some."
            )
        return replace(first, blocks=blocks, dtype=dtype, piece_bytes=piece_bytes)

    # --------------------------------------------------------------- describing

    @property
    def paths(self) -> list[Path]:
        """The files read, in order."""
        return list(dict.fromkeys(block.path for block in self.blocks))

    @property
    def n_rows(self) -> int:
        """Number of samples (after splits)."""
        return sum(self.block_rows(i) for i in self._block_indices())

    @property
    def is_table(self) -> bool:
        """Whether pieces are tables (pandas DataFrames) rather than arrays."""
        return self.columns is not None

    @property
    def is_numeric(self) -> bool:
        """Whether every value is a number (so the stream can train a numeric model)."""
        return self.dtype != np.dtype(object)

    @property
    def is_text(self) -> bool:
        """Whether the stream reads texts (``.txt`` files, one text per line).

        Its pieces are tables of one column, ``"text"``, of str (or, with
        ``as_frame=False``, 1-D arrays of str); it trains text models.
        """
        return bool(self.blocks) and self.blocks[0].kind == "txt"

    @property
    def row_bytes(self) -> int:
        """Bytes of one sample in memory (8 per value for non-numeric columns).

        For texts, an estimate: a Python str of the file's mean line length.
        """
        if self.is_text:
            n_bytes = sum(block.n_bytes for block in self.blocks)
            n_lines = sum(block.n_rows for block in self.blocks)
            return _STR_OVERHEAD_BYTES + -(-n_bytes // max(1, n_lines))
        return max(1, int(np.prod(self.sample_shape)) * max(1, self.dtype.itemsize))

    def __len__(self) -> int:
        return self.n_rows

    def __repr__(self) -> str:
        if self.is_text:
            return (
                f"Stream({len(self.paths)} file(s) like {self.paths[0]}, {self.n_rows} lines of "
                "text)"
            )
        return (
            f"Stream({len(self.paths)} file(s) like {self.paths[0]}, {self.n_rows} rows, samples "
            f"of shape {self.sample_shape}, {self.dtype})"
        )

    def fingerprint(self) -> str:
        """A digest of the files (names, sizes, modification times), layout and splits."""
        digest = hashlib.sha256()
        for path in self.paths:
            stat = path.stat()
            digest.update(repr((str(path.resolve()), stat.st_size, stat.st_mtime_ns)).encode())
        digest.update(repr((self.sample_shape, str(self.dtype), self.columns)).encode())
        digest.update(repr(self.splits).encode())
        return digest.hexdigest()

    # --------------------------------------------------------------- splitting

    def split(self, fraction: float, seed: int) -> tuple[Stream, Stream]:
        """Two disjoint streams: about ``fraction`` of the rows, and the rest.

        Each row is drawn independently from a generator seeded with ``seed``
        and its block, so a split reads nothing and is the same every time.
        """
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"fraction must lie in [0, 1]; got {fraction}.")
        inside = replace(self, splits=(*self.splits, _Split(seed, fraction, True)))
        outside = replace(self, splits=(*self.splits, _Split(seed, fraction, False)))
        return inside, outside

    def shard(self, rank: int, world_size: int) -> Stream:
        """Every ``world_size``-th block from ``rank``: one of ``world_size`` disjoint parts.

        Rows keep their splits (drawn by block), so the parts of a split are the
        split's rows.
        """
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must lie in [0, {world_size}); got {rank}.")
        return replace(self, selected_blocks=tuple(self._block_indices()[rank::world_size]))

    def _block_indices(self) -> list[int]:
        if self.selected_blocks is None:
            return list(range(len(self.blocks)))
        return list(self.selected_blocks)

    def block_rows(self, block_index: int) -> int:
        """Number of rows of a block (after splits)."""
        if not self.splits:
            return self.blocks[block_index].n_rows
        return int(self._mask(block_index).sum())

    def _mask(self, block_index: int) -> NDArray[np.bool_]:
        n_rows = self.blocks[block_index].n_rows
        keep = np.ones(n_rows, dtype=bool)
        for split in self.splits:
            below = _row_draws(split.seed, block_index, n_rows) < split.fraction
            keep &= below if split.inside else ~below
        return keep

    # ------------------------------------------------------------------ reading

    def _piece_rows(self) -> int:
        return max(1, self.piece_bytes // self.row_bytes)

    def _raw_pieces(self, block_index: int) -> Iterator[Any]:
        """The block's rows as they are read: arrays, or pyarrow record batches."""
        block = self.blocks[block_index]
        rows = self._piece_rows()
        if block.kind == "npy":
            yield from _read_npy_rows(block, self.sample_shape, self.dtype, rows)
        elif block.kind == "txt":
            yield _read_text_block(block)  # a block holds about piece_bytes of lines
        elif block.kind == "parquet":
            yield from _parquet_batches(block, rows, self.columns)
        else:
            yield from _csv_batches(block.path, self.columns, self.piece_bytes)

    def _block_pieces(self, block_index: int, *, as_frame: bool) -> Iterator[Any]:
        mask = self._mask(block_index) if self.splits else None
        offset = 0
        for raw in self._raw_pieces(block_index):
            n = raw.shape[0] if isinstance(raw, np.ndarray) else raw.num_rows
            keep = None if mask is None else mask[offset : offset + n]
            offset += n
            if keep is not None and not keep.any():
                continue
            piece = self._convert(raw, as_frame=as_frame)
            if keep is not None and not keep.all():
                piece = piece[keep]
                if isinstance(piece, pd.DataFrame):
                    piece = piece.reset_index(drop=True)
            yield piece

    def _convert(self, raw: Any, *, as_frame: bool) -> Any:
        if self.is_text:
            return pd.DataFrame({TEXT_COLUMN: raw}) if as_frame else raw
        if isinstance(raw, np.ndarray):
            return raw
        if self.list_column is not None:
            column = raw.column(0)
            values = column.flatten().to_numpy(zero_copy_only=False)  # respects slicing
            return values.reshape(len(column), *self.sample_shape)
        if as_frame:
            return raw.to_pandas()
        if not self.is_numeric:
            raise InvalidInputError(self._non_numeric_message())
        columns = [raw.column(i).to_numpy(zero_copy_only=False) for i in range(raw.num_columns)]
        return np.column_stack(columns).astype(self.dtype, copy=False)

    def _non_numeric_message(self) -> str:
        if self.is_text:
            return (
                f"{self.paths[0]} holds lines of text, which only text models take: a text "
                "stream trains a text model. Use arch='auto', 'sequence' or 'transformer'."
            )
        return (
            f"{self.paths[0]} has non-numeric columns, which only arch='tabular' models take. "
            "Use arch='tabular' (or 'auto'), or drop those columns."
        )

    def pieces(self, *, as_frame: bool | None = None) -> Iterator[Any]:
        """The rows in file order, piece by piece.

        Parameters
        ----------
        as_frame : bool, optional
            Give tables as pandas DataFrames (the default for tables) or as
            NumPy arrays (numeric columns only). Arrays of ``.npy`` files and
            image columns are always arrays. Texts come as DataFrames of one
            column, ``"text"``, or as 1-D arrays of str (dtype object).

        Yields
        ------
        numpy.ndarray or pandas.DataFrame
            Consecutive rows, about ``piece_bytes`` at a time.
        """
        frame = self.is_table if as_frame is None else as_frame
        for index in self._block_indices():
            yield from self._block_pieces(index, as_frame=frame)

    def n_pieces(self) -> int:
        """About how many pieces :meth:`pieces` yields (for progress bars)."""
        if self.is_text:  # one piece a block
            return len(self._block_indices())
        rows = self._piece_rows()
        return sum(math.ceil(self.blocks[i].n_rows / rows) for i in self._block_indices())

    def head(self, n: int, *, as_frame: bool | None = None) -> Any:
        """The first ``n`` rows, in memory."""
        taken: list[Any] = []
        count = 0
        for piece in self.pieces(as_frame=as_frame):
            taken.append(piece[: n - count])
            count += len(taken[-1])
            if count >= n:
                break
        return _concat(taken)

    def sample(self, n: int, *, seed: int = 0, as_frame: bool | None = None) -> Any:
        """About ``n`` rows drawn uniformly at random, in memory, in file order.

        One pass: each row is kept with probability ``n / n_rows``, so the
        count varies by a few square roots of ``n``.
        """
        fraction = min(1.0, n / max(1, self.n_rows))
        return self.split(fraction, seed)[0].read(as_frame=as_frame)

    def read(self, *, as_frame: bool | None = None) -> Any:
        """Every row, in memory (for streams that do fit)."""
        return _concat(list(self.pieces(as_frame=as_frame)))


def _concat(pieces: list[Any]) -> Any:
    if not pieces:
        raise InvalidInputError("The stream holds no rows.")
    if isinstance(pieces[0], pd.DataFrame):
        return pd.concat(pieces, ignore_index=True)
    return np.concatenate(pieces)


# ------------------------------------------------------------------ file formats


def _open_npy(path: Path, drop_columns: tuple[str, ...], piece_bytes: int) -> Stream:
    from hourglass.data.files import _read_npy

    if drop_columns:
        raise InvalidInputError(f"--drop-columns applies to tables; {path} holds an array.")
    array = _read_npy(path)  # checks the header and the size, maps nothing into memory yet
    if array.ndim < 2:
        raise InvalidInputError(
            f"{path} holds an array of shape {array.shape}; a stream needs one sample per row "
            "(2 to 4 dimensions). Reshape it, e.g. X.reshape(-1, 1), and save it again."
        )
    if not array.flags.c_contiguous:
        raise InvalidInputError(
            f"{path} is stored column by column (Fortran order), so its rows cannot be read "
            "one piece at a time. Save it row by row: numpy.save(path, "
            "numpy.ascontiguousarray(X))."
        )
    sample_shape = tuple(int(s) for s in array.shape[1:])
    row_bytes = max(1, int(np.prod(sample_shape)) * array.dtype.itemsize)
    block_rows = max(1, piece_bytes // row_bytes)
    n = int(array.shape[0])
    blocks = tuple(
        _Block(path, "npy", min(block_rows, n - start), start=start)
        for start in range(0, n, block_rows)
    )
    return Stream(blocks, sample_shape, array.dtype, None, piece_bytes=piece_bytes)


def _read_npy_rows(
    block: _Block, sample_shape: tuple[int, ...], dtype: np.dtype[Any], rows: int
) -> Iterator[NDArray[Any]]:
    """Rows of a ``.npy`` file read with plain reads (no memory map that would stay resident)."""
    offset = _npy_data_offset(block.path)
    row_bytes = int(np.prod(sample_shape)) * dtype.itemsize
    with open(block.path, "rb") as handle:
        for start in range(block.start, block.start + block.n_rows, rows):
            count = min(rows, block.start + block.n_rows - start)
            handle.seek(offset + start * row_bytes)
            buffer = bytearray(count * row_bytes)
            if handle.readinto(buffer) != len(buffer):
                raise InvalidInputError(f"{block.path} became shorter while it was read.")
            yield np.frombuffer(buffer, dtype=dtype).reshape(count, *sample_shape)


def _npy_data_offset(path: Path) -> int:
    with open(path, "rb") as handle:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            np.lib.format.read_array_header_1_0(handle)
        else:
            np.lib.format.read_array_header_2_0(handle)
        return handle.tell()


def _arrow_dtype(schema: Any, path: Path) -> np.dtype[Any]:
    import pyarrow as pa

    dtypes = []
    for column in schema:
        kind = column.type
        if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
            dtypes.append(np.dtype(kind.to_pandas_dtype()))
        else:
            return np.dtype(object)
    if not dtypes:
        raise InvalidInputError(f"{path} has no columns left to read.")
    merged = np.result_type(*dtypes)
    return np.dtype(np.float32) if merged not in (np.uint8,) else merged


def _select(schema: Any, drop_columns: tuple[str, ...], path: Path) -> list[str]:
    names = list(schema.names)
    missing = [name for name in drop_columns if name not in names]
    if missing:
        raise InvalidInputError(
            f"--drop-columns names {missing}, which {path} does not have; its columns are {names}."
        )
    return [name for name in names if name not in drop_columns]


def _open_parquet(path: Path, drop_columns: tuple[str, ...], piece_bytes: int) -> Stream:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        handle = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise InvalidInputError(f"{path} is not a readable Parquet file: {error}") from None
    with handle:
        schema = handle.schema_arrow
        names = _select(schema, drop_columns, path)
        metadata = handle.metadata
        blocks = tuple(
            _Block(path, "parquet", metadata.row_group(i).num_rows, row_group=i)
            for i in range(metadata.num_row_groups)
        )
    selected = pa.schema([schema.field(name) for name in names])
    if len(names) == 1 and pa.types.is_fixed_size_list(selected.field(0).type):
        kind = selected.field(0).type
        value_type = kind.value_type
        if not (pa.types.is_integer(value_type) or pa.types.is_floating(value_type)):
            raise InvalidInputError(f"{path}: the list column {names[0]!r} must hold numbers.")
        dtype = np.dtype(value_type.to_pandas_dtype())
        dtype = dtype if dtype == np.uint8 else np.dtype(np.float32)
        return Stream(
            blocks,
            (int(kind.list_size),),
            dtype,
            None,
            list_column=names[0],
            piece_bytes=piece_bytes,
        )
    return Stream(
        blocks, (len(names),), _arrow_dtype(selected, path), tuple(names), piece_bytes=piece_bytes
    )


#: The smallest block of CSV text read at once (no row may be longer).
CSV_MIN_BLOCK_BYTES = 2**20


def _parquet_batches(block: _Block, rows: int, columns: Sequence[str] | None) -> Iterator[Any]:
    """The record batches of one row group; a damaged file is an input error."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        with pq.ParquetFile(block.path) as handle:
            yield from handle.iter_batches(
                batch_size=rows,
                row_groups=[block.row_group],
                columns=None if columns is None else list(columns),
                use_threads=False,
            )
    except (pa.ArrowException, OSError) as error:
        raise InvalidInputError(
            f"{block.path} is damaged: row group {block.row_group} cannot be read ({error}). "
            "Write the file again."
        ) from None


def _csv_reader(
    path: Path, columns: Sequence[str] | None, types: Any = None, piece_bytes: int = PIECE_BYTES
) -> Any:
    import pyarrow.csv as pcsv

    block = max(CSV_MIN_BLOCK_BYTES, piece_bytes)
    return pcsv.open_csv(
        path,
        read_options=pcsv.ReadOptions(block_size=block, use_threads=False),
        convert_options=pcsv.ConvertOptions(
            include_columns=None if columns is None else list(columns),
            column_types=types,
        ),
    )


def _csv_batches(
    path: Path, columns: Sequence[str] | None, piece_bytes: int = PIECE_BYTES
) -> Iterator[Any]:
    import pyarrow as pa

    # The first block's types, for every block (else a later block may infer others).
    reader = _csv_reader(path, None, piece_bytes=piece_bytes)
    types = {name: reader.schema.field(name).type for name in (columns or reader.schema.names)}
    reader = _csv_reader(path, columns, types, piece_bytes)
    try:
        yield from reader
    except pa.ArrowInvalid as error:
        if "straddl" in str(error):
            raise InvalidInputError(
                f"{path} has a row longer than {max(CSV_MIN_BLOCK_BYTES, piece_bytes)} bytes, or "
                "a quoted value with a line break, which CSV files cannot be streamed with. "
                "Convert the file to Parquet."
            ) from None
        raise InvalidInputError(
            f"{path} changes type within a column ({error}). Make every column hold one type."
        ) from None


def _open_csv(path: Path, drop_columns: tuple[str, ...], piece_bytes: int) -> Stream:
    import pyarrow as pa

    try:
        reader = _csv_reader(path, None)
    except (pa.ArrowInvalid, OSError) as error:
        raise InvalidInputError(f"{path} is not a readable CSV file: {error}") from None
    names = _select(reader.schema, drop_columns, path)
    selected = pa.schema([reader.schema.field(name) for name in names])
    n_rows = sum(batch.num_rows for batch in _csv_batches(path, names, piece_bytes))
    blocks = (_Block(path, "csv", n_rows),)
    return Stream(
        blocks, (len(names),), _arrow_dtype(selected, path), tuple(names), piece_bytes=piece_bytes
    )


def _open_txt(path: Path, drop_columns: tuple[str, ...], piece_bytes: int) -> Stream:
    from hourglass.data.files import _text_encoding

    if drop_columns:
        raise InvalidInputError(f"--drop-columns applies to tables; {path} holds lines of text.")
    try:
        with open(path, "rb") as handle:
            skip, encoding = _text_encoding(handle.read(4))
        blocks, n_breaks = _text_blocks(path, skip, encoding, "\n", piece_bytes)
        if not n_breaks:  # no LF anywhere: lines end with CR (classic Mac), as read_data reads them
            blocks, _ = _text_blocks(path, skip, encoding, "\r", piece_bytes)
    except OSError as error:
        raise InvalidInputError(f"{path} cannot be read: {error}. Check the file.") from None
    return Stream(blocks, (), np.dtype(object), (TEXT_COLUMN,), piece_bytes=piece_bytes)


class _LineBlocks:
    """Cuts lines into blocks of at most ``piece_bytes`` (a longer line makes a block alone)."""

    def __init__(self, start: int, piece_bytes: int) -> None:
        self.piece_bytes = piece_bytes
        self.start = start  # where the open block starts
        self.n_lines = 0  # its lines so far
        self.end = start  # where its last line ends
        self.cuts: list[tuple[int, int, int]] = []  # (offset, bytes, lines) of each block

    def add(self, ends: NDArray[np.int64]) -> None:
        """Take the next lines, given by where they end (sorted)."""
        while len(ends):
            fit = int(np.searchsorted(ends, self.start + self.piece_bytes, side="right"))
            if fit == len(ends):  # all of them fit in the open block
                self.n_lines += fit
                self.end = int(ends[-1])
                return
            if self.n_lines + fit == 0:  # a line longer than a piece
                fit = 1
            if fit:
                self.n_lines += fit
                self.end = int(ends[fit - 1])
            self._close()
            ends = ends[fit:]

    def finish(self) -> list[tuple[int, int, int]]:
        """The blocks (offset, bytes, lines), the last one closed."""
        if self.n_lines:
            self._close()
        return self.cuts

    def _close(self) -> None:
        self.cuts.append((self.start, self.end - self.start, self.n_lines))
        self.start, self.n_lines = self.end, 0


def _text_blocks(
    path: Path, skip: int, encoding: str, line_break: str, piece_bytes: int
) -> tuple[tuple[_Block, ...], int]:
    """Blocks of whole lines of a text file, and how many ``line_break`` it holds.

    One pass in chunks of :data:`TEXT_SCAN_BYTES`. In UTF-16 and UTF-32 a line
    break is a whole code unit (2 or 4 bytes at its place), never part of
    another character; in UTF-8 its byte is never part of another character,
    valid or not. So the file decodes block by block exactly as it does whole.
    """
    code = line_break.encode(encoding)
    unit = len(code)
    units = np.dtype(f"{'<' if encoding.endswith('le') else '>'}u{unit}")  # code units
    chunk_bytes = TEXT_SCAN_BYTES - TEXT_SCAN_BYTES % 4
    lines = _LineBlocks(skip, piece_bytes)
    n_breaks, last_end, position = 0, skip, skip
    with open(path, "rb") as handle:
        handle.seek(skip)
        while chunk := handle.read(chunk_bytes):
            found = np.flatnonzero(
                np.frombuffer(chunk, units, count=len(chunk) // unit) == ord(line_break)
            )
            if len(found):
                ends = position + (found.astype(np.int64) + 1) * unit
                lines.add(ends)
                n_breaks += len(ends)
                last_end = int(ends[-1])
            position += len(chunk)
    if position > last_end:  # a last line without a line break
        lines.add(np.array([position], dtype=np.int64))
    blocks = tuple(
        _Block(
            path,
            "txt",
            n_lines,
            offset=offset,
            n_bytes=n_bytes,
            encoding=encoding,
            line_break=line_break,
        )
        for offset, n_bytes, n_lines in lines.finish()
    )
    return blocks, n_breaks


def _read_text_block(block: _Block) -> NDArray[np.object_]:
    """The lines of a block of a text file, as a 1-D array of str."""
    from hourglass.data.files import _split_lines

    with open(block.path, "rb") as handle:
        handle.seek(block.offset)
        raw = handle.read(block.n_bytes)
    lines = _split_lines(raw.decode(block.encoding, errors="replace"), block.line_break)
    if len(raw) != block.n_bytes or len(lines) != block.n_rows:
        raise InvalidInputError(
            f"{block.path} changed after the stream was opened: it no longer has the lines "
            "it had. Open the stream again."
        )
    texts = np.empty(len(lines), dtype=object)
    texts[:] = lines
    return texts


# ------------------------------------------------------------------ training


def _load_malloc_trim() -> Any:
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to do
        return None


_MALLOC_TRIM = _load_malloc_trim() if sys.platform.startswith("linux") else None


def release_free_memory() -> None:
    """Give the C heap's free pages back to the system (glibc's ``malloc_trim``).

    Pieces of tens of MiB raise glibc's mmap threshold, after which they come
    from the heap, where small live allocations pin the freed space: without a
    trim the process grows with every buffer (3.9 GB after one epoch over a
    5 GB file, measured; under 2 GB with it).
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


class StreamSource:
    """Training batches from a :class:`Stream`, shuffled through a bounded buffer.

    Every epoch visits the blocks in a random order and fills a buffer of about
    ``buffer_bytes`` with their rows; the buffer is permuted and cut into
    batches, and the rows left over join the next buffer. Memory stays near
    ``buffer_bytes`` plus one piece, whatever the size of the data.

    Parameters
    ----------
    stream : Stream
        Numeric data, or any table (texts included) with ``encode``.
    buffer_bytes : int, default=128 MiB
        Size of the shuffle buffer.
    encode : callable, optional
        Turns each piece of a table, a :class:`pandas.DataFrame`, into an array
        of numbers, one row per row of the piece. Integers it gives (other than
        uint8) are served as int64, e.g. the ids of the bytes of texts; other
        values as float32. For texts, the buffer's rows are counted from the
        size of the first encoded piece's rows.
    """

    def __init__(
        self,
        stream: Stream,
        buffer_bytes: int = BUFFER_BYTES,
        encode: Callable[[pd.DataFrame], NDArray[Any]] | None = None,
    ) -> None:
        if encode is None and not stream.is_numeric:
            raise InvalidInputError(stream._non_numeric_message())
        self.stream = stream
        self.encode = encode
        self.buffer_bytes = buffer_bytes
        self.buffer_rows = max(1, buffer_bytes // stream.row_bytes)
        # A text's encoded row (e.g. a fixed number of int64 ids) is far larger than the
        # text: measure it on the first piece rather than estimate it from the file.
        self._measure_rows = encode is not None and stream.is_text
        self._n_samples = stream.n_rows

    def _pieces(self, block: int) -> Iterator[NDArray[Any]]:
        """The block's rows as arrays (tables through ``encode``)."""
        if self.encode is None:
            yield from self.stream._block_pieces(block, as_frame=False)
        else:
            for frame in self.stream._block_pieces(block, as_frame=True):
                yield self.encode(frame)

    @property
    def n_samples(self) -> int:
        """Number of samples."""
        return self._n_samples

    def _tensor(self, piece: NDArray[Any]) -> torch.Tensor:
        """A piece as a tensor: uint8 stays uint8, encoded integers become int64, else float32."""
        dtype: type[np.generic] = np.float32
        if piece.dtype == np.uint8:
            dtype = np.uint8
        elif self.encode is not None and np.issubdtype(piece.dtype, np.integer):
            dtype = np.int64  # ids (of bytes, of tokens) stay integers
        array = np.ascontiguousarray(piece, dtype=dtype)
        if not array.flags.writeable:  # a view of pyarrow's memory: torch wants its own
            array = array.copy()
        return torch.from_numpy(array)

    def epoch(
        self, batch_size: int, *, shuffle: bool, generator: torch.Generator | None
    ) -> Iterator[tuple[torch.Tensor, None]]:
        """Batches of one pass: full ones, and a shorter last one."""
        blocks = self._block_order(shuffle, generator)
        return self._batches(blocks, batch_size, shuffle, generator)

    def shard_epoch(
        self,
        batch_size: int,
        rank: int,
        world_size: int,
        *,
        shuffle: bool,
        generator: torch.Generator | None,
    ) -> Iterator[tuple[torch.Tensor, None, int, int]]:
        """One process's part of a data-parallel epoch: only its blocks are read.

        Every process draws the same block order from ``generator`` and takes
        every ``world_size``-th block from its ``rank``; it serves batches of
        ``batch_size`` (its share of the global batch) from them, shuffled by a
        generator of its own. All processes run as many steps: one that has
        run out of rows serves a padding row that counts for nothing.

        Yields
        ------
        (inputs, None, rows counted, rows of the step over all processes)
        """
        blocks = self._block_order(shuffle, generator)
        # One shared draw, so that the shared generator stays in step on every process.
        seed = int(torch.randint(0, 2**62, (1,), generator=generator)) if shuffle else 0
        own = torch.Generator().manual_seed(seed + rank)
        rows = [
            sum(self.stream.block_rows(b) for b in blocks[r::world_size]) for r in range(world_size)
        ]
        steps = max(-(-count // batch_size) for count in rows)
        batches = self._batches(blocks[rank::world_size], batch_size, shuffle, own)
        padding: torch.Tensor | None = None
        for step in range(steps):
            counts = [min(batch_size, max(0, count - step * batch_size)) for count in rows]
            x = next(batches, None) if counts[rank] else None
            if x is None:
                if padding is None:
                    padding = self.head(1)[0]
                yield padding, None, 0, sum(counts)
                continue
            padding = x[0][:1]
            yield x[0], None, counts[rank], sum(counts)

    def _block_order(self, shuffle: bool, generator: torch.Generator | None) -> list[int]:
        """The stream's blocks in the order of an epoch (a fresh permutation if ``shuffle``)."""
        indices = self.stream._block_indices()
        if not shuffle:
            return indices
        return [indices[i] for i in torch.randperm(len(indices), generator=generator).tolist()]

    def _batches(
        self,
        blocks: list[int],
        batch_size: int,
        shuffle: bool,
        generator: torch.Generator | None,
    ) -> Iterator[tuple[torch.Tensor, None]]:
        """Batches from ``blocks`` in that order, shuffled through the buffer."""
        pending: list[torch.Tensor] = []  # rows read but not yet served
        count = 0
        for block in blocks:
            for piece in self._pieces(block):
                pending.append(self._tensor(piece))
                if self._measure_rows and pending[-1].shape[0]:
                    row = pending[-1][0]
                    row_bytes = max(1, row.numel() * row.element_size())
                    self.buffer_rows = max(1, self.buffer_bytes // row_bytes)
                    self._measure_rows = False
                count += pending[-1].shape[0]
                if count >= self.buffer_rows:
                    rows = torch.cat(pending)
                    pending.clear()  # the buffer is the only copy from here on
                    kept = yield from self._serve(rows, batch_size, shuffle, generator, last=False)
                    pending, count = [kept], kept.shape[0]
                    del rows
                    release_free_memory()
        if count:
            yield from self._serve(torch.cat(pending), batch_size, shuffle, generator, last=True)

    @staticmethod
    def _serve(
        rows: torch.Tensor,
        batch_size: int,
        shuffle: bool,
        generator: torch.Generator | None,
        *,
        last: bool,
    ) -> Generator[tuple[torch.Tensor, None], None, torch.Tensor]:
        """Yield the buffer's batches in a random order; return the rows of no full batch."""
        n = rows.shape[0]
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        n_served = n if last else n // batch_size * batch_size
        for start in range(0, n_served, batch_size):
            yield rows.index_select(0, order[start : min(start + batch_size, n_served)]), None
        return rows.index_select(0, order[n_served:])

    def head(self, n: int) -> tuple[torch.Tensor, None]:
        """The first ``n`` samples."""
        if self.encode is None:
            return self._tensor(self.stream.head(n, as_frame=False)), None
        return self._tensor(self.encode(self.stream.head(n, as_frame=True))), None
