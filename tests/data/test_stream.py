"""Streams: files read in pieces, splits drawn without reading, shuffled training batches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from hourglass.data import read_data
from hourglass.data.stream import Stream, StreamSource
from hourglass.exceptions import InvalidInputError

N_ROWS, N_FEATURES = 1000, 6
# Small pieces, so that every file is read in many of them.
PIECE_BYTES = 40 * N_FEATURES * 4


def _table(n: int = N_ROWS) -> np.ndarray:
    return np.arange(n * N_FEATURES, dtype=np.float32).reshape(n, N_FEATURES) / (n * N_FEATURES)


def _columns() -> list[str]:
    return [f"f{i}" for i in range(N_FEATURES)]


def write(path: Path, values: np.ndarray) -> Path:
    """Write ``values`` as ``path`` (.npy, .parquet with small row groups, or .csv)."""
    if path.suffix == ".npy":
        np.save(path, values)
    elif path.suffix == ".parquet":
        frame = pd.DataFrame(values, columns=_columns())
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=128)
    else:
        pd.DataFrame(values, columns=_columns()).to_csv(path, index=False)
    return path


@pytest.fixture(params=[".npy", ".parquet", ".csv"])
def data_file(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    return write(tmp_path / f"data{request.param}", _table())


def test_pieces_hold_every_row_in_order(data_file: Path) -> None:
    stream = Stream.open(data_file, piece_bytes=PIECE_BYTES)
    pieces = list(stream.pieces(as_frame=False))
    if data_file.suffix != ".csv":  # CSV: read in blocks of text of at least 1 MiB
        assert len(pieces) > 5
        assert all(len(piece) * N_FEATURES * 4 <= PIECE_BYTES for piece in pieces)
    np.testing.assert_allclose(np.concatenate(pieces), _table(), rtol=1e-6)
    assert stream.n_rows == len(stream) == N_ROWS
    assert stream.sample_shape == (N_FEATURES,)


def test_tables_come_as_frames_with_their_column_names(data_file: Path) -> None:
    stream = Stream.open(data_file, piece_bytes=PIECE_BYTES)
    if data_file.suffix == ".npy":
        assert not stream.is_table
        return
    frame = stream.read()
    assert list(frame.columns) == _columns()
    pd.testing.assert_frame_equal(frame, pd.DataFrame(read_data(data_file)), check_dtype=False)


def test_dropped_columns_are_not_read(tmp_path: Path) -> None:
    stream = Stream.open(write(tmp_path / "t.parquet", _table()), drop_columns=["f0", "f3"])
    assert stream.columns == ("f1", "f2", "f4", "f5")
    np.testing.assert_array_equal(stream.read(as_frame=False), _table()[:, [1, 2, 4, 5]])
    with pytest.raises(InvalidInputError, match=r"'nope'.*its columns are"):
        Stream.open(tmp_path / "t.parquet", drop_columns=["nope"])


def test_a_directory_reads_its_files_in_name_order(tmp_path: Path) -> None:
    values = _table()
    folder = tmp_path / "parts"
    folder.mkdir()
    for i, part in enumerate(np.array_split(values, 3)):
        write(folder / f"part-{i}.parquet", part)
    (folder / "README.txt").write_text("ignored")
    stream = Stream.open(folder)
    assert len(stream.paths) == 3
    np.testing.assert_array_equal(stream.read(as_frame=False), values)


def test_an_image_column_gives_arrays_of_samples(tmp_path: Path) -> None:
    images = np.random.default_rng(0).random((300, 16)).astype(np.float32)
    column = pa.FixedSizeListArray.from_arrays(pa.array(images.reshape(-1)), 16)
    pq.write_table(pa.table({"pixels": column}), tmp_path / "i.parquet", row_group_size=50)
    stream = Stream.open(tmp_path / "i.parquet")
    assert stream.sample_shape == (16,)
    assert not stream.is_table
    np.testing.assert_array_equal(stream.read(), images)
    # Pieces smaller than a row group, and splits, cut the list column in slices.
    sliced = Stream.open(tmp_path / "i.parquet", piece_bytes=7 * 16 * 4)
    np.testing.assert_array_equal(sliced.read(), images)
    kept = sliced.split(0.5, seed=0)[0]
    mask = np.concatenate([kept._mask(i) for i in range(len(kept.blocks))])
    np.testing.assert_array_equal(kept.read(), images[mask])
    np.testing.assert_array_equal(read_data(tmp_path / "i.parquet"), images)


def test_npy_images_keep_their_shape_and_dtype(tmp_path: Path) -> None:
    images = np.random.default_rng(0).integers(0, 256, (50, 4, 5), dtype=np.uint8)
    np.save(tmp_path / "i.npy", images)
    stream = Stream.open(tmp_path / "i.npy", piece_bytes=100)
    assert stream.sample_shape == (4, 5)
    assert stream.dtype == np.uint8
    np.testing.assert_array_equal(stream.read(), images)


def test_splits_are_disjoint_complementary_and_repeatable(data_file: Path) -> None:
    stream = Stream.open(data_file, piece_bytes=PIECE_BYTES)
    inside, outside = stream.split(0.2, seed=3)
    a, b = inside.read(as_frame=False), outside.read(as_frame=False)
    assert inside.n_rows == len(a)
    assert outside.n_rows == len(b)
    assert len(a) + len(b) == N_ROWS
    assert 150 < len(a) < 250
    rows = {tuple(r) for r in a}
    assert not rows & {tuple(r) for r in b}
    np.testing.assert_array_equal(stream.split(0.2, seed=3)[0].read(as_frame=False), a)
    assert not np.array_equal(stream.split(0.2, seed=4)[0].read(as_frame=False), a)
    # Splits compose: a split of a split holds rows of both.
    nested = outside.split(0.5, seed=9)[0].read(as_frame=False)
    assert {tuple(r) for r in nested} <= {tuple(r) for r in b}


def test_a_split_does_not_depend_on_the_piece_size(tmp_path: Path) -> None:
    path = write(tmp_path / "t.npy", _table())
    small = Stream.open(path, piece_bytes=PIECE_BYTES).split(0.3, 1)[0]
    # .npy blocks follow the piece size, so compare a Parquet file read in other pieces.
    parquet = write(tmp_path / "t.parquet", _table())
    by_small = Stream.open(parquet, piece_bytes=PIECE_BYTES).split(0.3, 1)[0]
    by_large = Stream.open(parquet, piece_bytes=10**6).split(0.3, 1)[0]
    np.testing.assert_array_equal(by_small.read(as_frame=False), by_large.read(as_frame=False))
    assert small.n_rows > 0


def test_sample_draws_about_n_rows(data_file: Path) -> None:
    sample = Stream.open(data_file).sample(200, seed=0, as_frame=False)
    assert 150 < len(sample) < 250
    assert sample.shape[1] == N_FEATURES


@pytest.mark.parametrize("shuffle", [True, False])
def test_an_epoch_serves_every_row_once_in_full_batches(data_file: Path, shuffle: bool) -> None:
    stream = Stream.open(data_file, piece_bytes=PIECE_BYTES)
    source = StreamSource(stream, buffer_bytes=300 * N_FEATURES * 4)
    generator = torch.Generator().manual_seed(0)
    batches = [x for x, _ in source.epoch(64, shuffle=shuffle, generator=generator)]
    sizes = [len(b) for b in batches]
    assert all(size == 64 for size in sizes[:-1])
    assert sum(sizes) == N_ROWS
    served = torch.cat(batches).numpy()
    order = np.lexsort(served.T[::-1])
    np.testing.assert_allclose(served[order], _table(), rtol=1e-6)
    if not shuffle:
        np.testing.assert_allclose(served, _table(), rtol=1e-6)


def test_shuffling_is_seeded_changes_every_epoch_and_mixes_blocks(tmp_path: Path) -> None:
    stream = Stream.open(write(tmp_path / "t.parquet", _table()))  # row groups of 128 rows
    source = StreamSource(stream, buffer_bytes=400 * N_FEATURES * 4)

    def first_rows(generator: torch.Generator) -> list[np.ndarray]:
        return [
            next(source.epoch(32, shuffle=True, generator=generator))[0].numpy() for _ in range(2)
        ]

    one = first_rows(torch.Generator().manual_seed(0))
    again = first_rows(torch.Generator().manual_seed(0))
    np.testing.assert_array_equal(one[0], again[0])
    np.testing.assert_array_equal(one[1], again[1])
    assert not np.array_equal(one[0], one[1])
    # The first batch mixes rows of several row groups (row // 128 tells the group).
    row_index = np.rint(one[0][:, 0] * N_ROWS * N_FEATURES / N_FEATURES).astype(int)
    assert len(set(row_index // 128)) >= 3


def test_head_is_the_first_rows(data_file: Path) -> None:
    x, y = StreamSource(Stream.open(data_file, piece_bytes=PIECE_BYTES)).head(100)
    assert y is None
    np.testing.assert_allclose(x.numpy(), _table()[:100], rtol=1e-6)


def test_uint8_stays_uint8_for_training(tmp_path: Path) -> None:
    np.save(tmp_path / "u.npy", np.ones((20, 3), dtype=np.uint8))
    x, _ = next(
        StreamSource(Stream.open(tmp_path / "u.npy")).epoch(8, shuffle=False, generator=None)
    )
    assert x.dtype == torch.uint8


def test_integers_train_as_float32_unless_an_encoder_gives_them(tmp_path: Path) -> None:
    np.save(tmp_path / "i.npy", np.arange(30, dtype=np.int32).reshape(10, 3))
    stream = Stream.open(tmp_path / "i.npy")
    x, _ = next(StreamSource(stream).epoch(4, shuffle=False, generator=None))
    assert x.dtype == torch.float32
    # An encoder's integers (ids of bytes or tokens) stay integers, as int64; its floats
    # are float32.
    ids = StreamSource(stream, encode=lambda rows: np.asarray(rows, dtype=np.int32))
    x, _ = next(ids.epoch(4, shuffle=False, generator=None))
    assert x.dtype == torch.int64
    np.testing.assert_array_equal(x.numpy(), np.arange(12).reshape(4, 3))
    floats = StreamSource(stream, encode=lambda rows: np.asarray(rows, dtype=np.float64))
    assert floats.head(2)[0].dtype == torch.float32


def test_fingerprint_changes_with_the_file_and_the_split(tmp_path: Path) -> None:
    path = write(tmp_path / "t.npy", _table())
    stream = Stream.open(path)
    before = stream.fingerprint()
    assert stream.split(0.1, 0)[1].fingerprint() != before
    write(path, _table() + 1)
    assert Stream.open(path).fingerprint() != before


def test_open_says_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="does not exist"):
        Stream.open(tmp_path / "missing.npy")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInputError, match="holds no"):
        Stream.open(tmp_path / "empty")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    write(mixed / "a.npy", _table(10))
    write(mixed / "b.csv", _table(10))
    with pytest.raises(InvalidInputError, match="mixes"):
        Stream.open(mixed)
    layouts = tmp_path / "layouts"
    layouts.mkdir()
    write(layouts / "a.npy", _table(10))
    np.save(layouts / "b.npy", np.zeros((10, 3), dtype=np.float32))
    with pytest.raises(InvalidInputError, match="does not match"):
        Stream.open(layouts)
    np.save(tmp_path / "fortran.npy", np.asfortranarray(_table(10)))
    with pytest.raises(InvalidInputError, match="Fortran order"):
        Stream.open(tmp_path / "fortran.npy")
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(InvalidInputError, match="Cannot stream"):
        Stream.open(tmp_path / "x.json")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(InvalidInputError, match="not a readable Parquet"):
        Stream.open(tmp_path / "bad.parquet")


def test_non_numeric_tables_need_an_encoder_to_train(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": np.arange(10.0), "city": ["a", "b"] * 5})
    frame.to_parquet(tmp_path / "m.parquet")
    stream = Stream.open(tmp_path / "m.parquet")
    assert not stream.is_numeric
    assert list(stream.read()["city"]) == ["a", "b"] * 5
    with pytest.raises(InvalidInputError, match=r"non-numeric columns.*arch='tabular'"):
        StreamSource(stream)
    # With an encoder (a tabular model's schema), the pieces go through it as tables.
    encoded = StreamSource(stream, encode=lambda frame: frame[["x"]].to_numpy(np.float32))
    x, _ = next(encoded.epoch(4, shuffle=False, generator=None))
    np.testing.assert_array_equal(x.numpy()[:, 0], [0.0, 1.0, 2.0, 3.0])


def test_data_parallel_shares_read_disjoint_blocks_and_cover_every_row(tmp_path: Path) -> None:
    stream = Stream.open(write(tmp_path / "t.parquet", _table()))  # 8 row groups of <= 128 rows
    stream = stream.split(0.1, seed=0)[1]  # with a split, as training streams have
    source = StreamSource(stream, buffer_bytes=200 * N_FEATURES * 4)
    shares, generators = [], []
    for rank in range(2):
        generator = torch.Generator().manual_seed(5)
        shares.append(list(source.shard_epoch(16, rank, 2, shuffle=True, generator=generator)))
        generators.append(generator.get_state())
    assert torch.equal(generators[0], generators[1])  # the shared generator stays in step
    assert len(shares[0]) == len(shares[1])  # every process runs every step
    for (_, _, count0, total0), (_, _, count1, total1) in zip(*shares, strict=True):
        assert total0 == total1 == count0 + count1
    counted = [
        np.concatenate([x[:count].numpy() for x, _, count, _ in share if count]) for share in shares
    ]
    groups = [set(np.rint(rows[:, 0] * N_ROWS).astype(int) // 128) for rows in counted]
    assert not groups[0] & groups[1]  # each process read its own row groups only
    every = np.concatenate(counted)
    np.testing.assert_allclose(every[np.lexsort(every.T[::-1])], stream.read(as_frame=False))


def test_damaged_files_are_input_errors_naming_the_file(tmp_path: Path) -> None:
    from hourglass.estimators import AutoencoderOutlierDetector

    good = write(tmp_path / "t.parquet", _table()).read_bytes()
    damaged = tmp_path / "damaged.parquet"
    damaged.write_bytes(good[:1000] + b"\0" * 5000 + good[6000:])  # a page, not the footer
    with pytest.raises(InvalidInputError, match=r"damaged\.parquet is damaged: row group"):
        Stream.open(damaged).read()
    np.save(tmp_path / "a.npy", _table())
    (tmp_path / "short.npy").write_bytes((tmp_path / "a.npy").read_bytes()[:-100])
    with pytest.raises(InvalidInputError, match="truncated"):
        Stream.open(tmp_path / "short.npy")
    with pytest.raises(InvalidInputError, match="truncated"):
        read_data(tmp_path / "short.npy")
    lines = (write(tmp_path / "t.csv", _table())).read_text().splitlines()
    lines[400] = "1,2,3"
    (tmp_path / "ragged.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(InvalidInputError, match="Expected 6 columns"):
        AutoencoderOutlierDetector(epochs=1, verbose=0).fit(Stream.open(tmp_path / "ragged.csv"))


def test_shards_are_disjoint_sets_of_blocks_that_cover_the_stream(tmp_path: Path) -> None:
    stream = Stream.open(write(tmp_path / "t.parquet", _table())).split(0.3, seed=1)[1]
    shards = [stream.shard(rank, 3) for rank in range(3)]
    assert [shard.selected_blocks for shard in shards] == [(0, 3, 6), (1, 4, 7), (2, 5)]
    assert sum(shard.n_rows for shard in shards) == stream.n_rows
    rows = np.concatenate([shard.read(as_frame=False) for shard in shards])
    expected = stream.read(as_frame=False)
    np.testing.assert_array_equal(rows[np.lexsort(rows.T[::-1])], expected)
    with pytest.raises(ValueError, match="rank"):
        stream.shard(3, 3)
