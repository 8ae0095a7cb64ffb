from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from hourglass.data import read_idx, write_idx
from hourglass.exceptions import InvalidInputError

DTYPES = ["uint8", "int8", "int16", "int32", "float32", "float64"]
SHAPES = [(), (0,), (5,), (3, 4), (5, 28, 28), (2, 1, 3, 2)]


def _values(dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    rng = np.random.default_rng(0)
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    if info is None:
        return rng.standard_normal(shape).astype(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)


def _header(code: int, *shape: int) -> bytes:
    return struct.pack(f">BBBB{len(shape)}I", 0, 0, code, len(shape), *shape)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("compress", [False, True])
def test_round_trip(tmp_path: Path, dtype: str, shape: tuple[int, ...], compress: bool) -> None:
    values = _values(dtype, shape)
    path = write_idx(tmp_path / "a.idx", values, compress=compress)

    result = read_idx(path)

    assert result.dtype == np.dtype(dtype)
    assert result.dtype.isnative
    assert result.shape == shape
    np.testing.assert_array_equal(result, values)
    assert result.flags.writeable


def test_big_endian_input_is_stored_and_read_back_by_value(tmp_path: Path) -> None:
    values = np.array([[1, -2], [300000, 4]], dtype=">i4")
    result = read_idx(write_idx(tmp_path / "a.idx", values))
    np.testing.assert_array_equal(result, values)
    assert result.dtype == np.int32


def test_file_layout_matches_the_idx_specification(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "a.idx", np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int16))
    assert path.read_bytes() == _header(0x0B, 2, 3) + struct.pack(">6h", 1, 2, 3, 4, 5, 6)


def test_reads_bytes_raw_and_gzipped() -> None:
    content = _header(0x08, 2, 2) + bytes([1, 2, 3, 4])
    expected = np.array([[1, 2], [3, 4]], dtype=np.uint8)
    np.testing.assert_array_equal(read_idx(content), expected)
    np.testing.assert_array_equal(read_idx(gzip.compress(content)), expected)
    np.testing.assert_array_equal(read_idx(bytearray(content)), expected)


def test_gzip_is_detected_by_content_not_by_name(tmp_path: Path) -> None:
    values = np.arange(10, dtype=np.uint8)
    gzipped = write_idx(tmp_path / "plain-name-ubyte", values, compress=True)
    raw = write_idx(tmp_path / "misleading.gz", values, compress=False)

    assert gzipped.read_bytes()[:2] == b"\x1f\x8b"
    assert raw.read_bytes()[:2] == b"\x00\x00"
    np.testing.assert_array_equal(read_idx(gzipped), values)
    np.testing.assert_array_equal(read_idx(raw), values)


def test_compression_follows_the_suffix_and_is_deterministic(tmp_path: Path) -> None:
    values = np.arange(100, dtype=np.float32)
    first = write_idx(tmp_path / "a.idx.gz", values).read_bytes()
    second = write_idx(tmp_path / "b.idx.gz", values).read_bytes()
    assert first[:2] == b"\x1f\x8b"
    assert first == second


def test_write_replaces_atomically_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    path = tmp_path / "a.idx"
    write_idx(path, np.zeros(3, dtype=np.uint8))
    write_idx(path, np.ones(4, dtype=np.uint8))
    np.testing.assert_array_equal(read_idx(path), np.ones(4, dtype=np.uint8))
    assert [p.name for p in tmp_path.iterdir()] == ["a.idx"]


@pytest.mark.parametrize("dtype", ["uint16", "uint32", "int64", "bool", "complex64", "U3"])
def test_write_rejects_dtypes_idx_cannot_store(tmp_path: Path, dtype: str) -> None:
    with pytest.raises(InvalidInputError, match=r"IDX cannot store dtype .*astype"):
        write_idx(tmp_path / "a.idx", np.zeros(3, dtype=dtype))
    assert not (tmp_path / "a.idx").exists()


# -- malformed input ----------------------------------------------------------------------------


def _write(tmp_path: Path, content: bytes, name: str = "bad-ubyte") -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def test_truncated_payload_names_file_and_byte_counts(tmp_path: Path) -> None:
    path = _write(tmp_path, _header(0x08, 5, 2, 2) + bytes(15))
    with pytest.raises(
        InvalidInputError, match=r"truncated.*needs 20 bytes after the header, got 15"
    ):
        read_idx(path)
    with pytest.raises(InvalidInputError, match="bad-ubyte"):
        read_idx(path)


def test_truncated_payload_of_wide_dtype_counts_bytes(tmp_path: Path) -> None:
    path = _write(tmp_path, _header(0x0E, 3) + bytes(23))
    with pytest.raises(
        InvalidInputError, match=r"float64 array of shape \(3,\) needs 24 bytes.*got 23"
    ):
        read_idx(path)


def test_trailing_bytes_are_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path, _header(0x08, 2) + bytes(5))
    with pytest.raises(
        InvalidInputError, match=r"needs 2 bytes after the header, got 5 \(3 trailing"
    ):
        read_idx(path)


def test_bad_magic_number(tmp_path: Path) -> None:
    path = _write(tmp_path, b"\x89PNG\r\n\x1a\n" + bytes(16))
    with pytest.raises(
        InvalidInputError, match=r"bad-ubyte is not an IDX file: bad magic number 0x89504E47"
    ):
        read_idx(path)


def test_unknown_type_code_lists_valid_codes(tmp_path: Path) -> None:
    path = _write(tmp_path, _header(0x0A, 1) + bytes(1))
    with pytest.raises(
        InvalidInputError, match=r"unknown IDX type code 0x0A\. Expected one of 0x08 \(uint8\)"
    ):
        read_idx(path)


def test_header_shorter_than_four_bytes(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="holds 2 bytes, fewer than the 4-byte IDX header"):
        read_idx(_write(tmp_path, b"\x00\x00"))


def test_truncated_dimensions(tmp_path: Path) -> None:
    path = _write(tmp_path, _header(0x08, 5, 28, 28)[:10])
    with pytest.raises(
        InvalidInputError, match=r"declares 3 dimensions, which need 16 header bytes.*only 10"
    ):
        read_idx(path)


def test_truncated_gzip_gives_a_clear_error(tmp_path: Path) -> None:
    content = gzip.compress(
        _header(0x08, 50, 28, 28) + np.arange(50 * 28 * 28, dtype=np.uint8).tobytes()
    )
    path = _write(tmp_path, content[: len(content) // 2], "train-images-idx3-ubyte.gz")
    with pytest.raises(
        InvalidInputError, match=r"train-images-idx3-ubyte\.gz is a damaged gzip file.*truncated"
    ):
        read_idx(path)


def test_corrupted_gzip_gives_a_clear_error(tmp_path: Path) -> None:
    content = bytearray(gzip.compress(_header(0x08, 1000) + bytes(range(250)) * 4))
    content[20:30] = b"\xff" * 10
    with pytest.raises(InvalidInputError, match="damaged gzip file"):
        read_idx(_write(tmp_path, bytes(content), "x.gz"))


def test_error_for_bytes_input_does_not_pretend_to_be_a_file() -> None:
    with pytest.raises(InvalidInputError, match=r"^the IDX data is not an IDX file"):
        read_idx(b"\x01\x02\x03\x04")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"nope\.idx does not exist"):
        read_idx(tmp_path / "nope.idx")
