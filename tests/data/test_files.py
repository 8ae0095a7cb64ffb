from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hourglass.data import read_data, write_idx
from hourglass.exceptions import DatasetError, InvalidInputError

X = np.arange(12, dtype=np.float64).reshape(4, 3)
TABLE = pd.DataFrame({"a": [1, 2, 3], "b": [0.5, np.nan, 2.5], "c": ["x", "y", "z"]})


def test_npy(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", X)
    result = read_data(tmp_path / "x.npy")
    assert isinstance(result, np.ndarray)
    np.testing.assert_array_equal(result, X)
    assert not result.flags.writeable  # memory-mapped read-only


def test_npy_with_objects_is_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InvalidInputError, match=r"Cannot read .*x\.npy.*Supported formats"):
        read_data(tmp_path / "x.npy")


def test_npz_prefers_the_array_named_x(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", y=np.zeros(4), X=X)
    np.testing.assert_array_equal(read_data(tmp_path / "d.npz"), X)


def test_npz_with_a_single_array(tmp_path: Path) -> None:
    np.savez_compressed(tmp_path / "d.npz", features=X)
    np.testing.assert_array_equal(read_data(tmp_path / "d.npz"), X)


def test_npz_with_several_arrays_and_no_x_lists_the_keys(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", features=X, target=np.zeros(4))
    with pytest.raises(InvalidInputError, match=r"\['features', 'target'\].*named 'X'"):
        read_data(tmp_path / "d.npz")


def test_truncated_npz(tmp_path: Path) -> None:
    np.savez(tmp_path / "full.npz", X=X)
    content = (tmp_path / "full.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(content[: len(content) // 2])
    with pytest.raises(InvalidInputError, match=r"cut\.npz"):
        read_data(tmp_path / "cut.npz")


@pytest.mark.parametrize("name", ["t.csv", "t.csv.gz", "T.CSV"])
def test_csv(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    TABLE.to_csv(path, index=False, compression="gzip" if name.endswith(".gz") else None)
    result = read_data(path)
    assert isinstance(result, pd.DataFrame)
    pd.testing.assert_frame_equal(result, TABLE)


def test_empty_csv(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("")
    with pytest.raises(InvalidInputError, match=r"Cannot read .*t\.csv as \.csv data"):
        read_data(tmp_path / "t.csv")


def test_parquet(tmp_path: Path) -> None:
    TABLE.to_parquet(tmp_path / "t.parquet")
    result = read_data(tmp_path / "t.parquet")
    assert isinstance(result, pd.DataFrame)
    pd.testing.assert_frame_equal(result, TABLE)


def test_malformed_parquet(tmp_path: Path) -> None:
    (tmp_path / "t.parquet").write_bytes(b"this is not parquet at all")
    with pytest.raises(InvalidInputError, match=r"t\.parquet.*Supported formats"):
        read_data(tmp_path / "t.parquet")


@pytest.mark.parametrize(
    ("name", "compress"),
    [
        ("train-images-idx3-ubyte.gz", True),
        ("train-images-idx3-ubyte", False),
        ("train-images.idx3-ubyte", False),
        ("images.idx", False),
        ("images.idx3", False),
        ("images.idx3.gz", True),
        ("images.gz", True),
        ("images.gz", False),  # raw IDX named .gz: gzip is detected by content
    ],
)
def test_idx(tmp_path: Path, name: str, compress: bool) -> None:
    images = np.arange(5 * 28 * 28, dtype=np.uint8).reshape(5, 28, 28)
    write_idx(tmp_path / name, images, compress=compress)
    np.testing.assert_array_equal(read_data(tmp_path / name), images)


def test_malformed_idx(tmp_path: Path) -> None:
    (tmp_path / "x-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x09abc"))
    with pytest.raises(InvalidInputError, match=r"x-ubyte\.gz is truncated.*needs 9 bytes.*got 3"):
        read_data(tmp_path / "x-ubyte.gz")


def test_text_files_are_read_as_lines_with_bad_bytes_replaced(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes("first line\nGrüße\n\n".encode() + b"bad \xff byte\n")
    assert read_data(path) == ["first line", "Grüße", "", "bad \ufffd byte"]


@pytest.mark.parametrize("name", ["notes.doc", "model.pkl", "data"])
def test_unknown_format_lists_the_supported_ones(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_text("1,2,3\n")
    with pytest.raises(
        InvalidInputError, match=r"unknown file type.*Supported formats: \.npy.*\.parquet.*IDX"
    ):
        read_data(tmp_path / name)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"missing\.csv does not exist.*Supported formats"):
        read_data(tmp_path / "missing.csv")


def test_folder(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="is a folder; pass a data file"):
        read_data(tmp_path)
