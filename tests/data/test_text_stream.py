"""Text streams: ``.txt`` files read in blocks of whole lines, the lines read_data reads."""

from __future__ import annotations

import codecs
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from hourglass.data import read_data
from hourglass.data.stream import Stream, StreamSource
from hourglass.exceptions import InvalidInputError

N_LINES = 3000
# Small pieces, so that the file is cut into many blocks.
PIECE_BYTES = 2000
WIDTH = 24  # bytes per encoded text


def _line(i: int) -> bytes:
    """Line ``i``: unique, except blank lines; some non-ASCII, one with invalid UTF-8."""
    if i % 97 == 5:
        return b""
    if i == 1234:
        return b"broken \xff\xfe bytes \xe2\x82 here"
    if i % 7 == 0:
        return f"line {i}: Grüße, 東京, émoji 🙂".encode()
    return f"line {i}".encode() + b" x" * (i % 13)


def _write(path: Path, lines: range = range(N_LINES), *, end: bytes = b"\n") -> Path:
    path.write_bytes(b"".join(_line(i) + end for i in lines))
    return path


@pytest.fixture
def text_file(tmp_path: Path) -> Path:
    return _write(tmp_path / "texts.txt")


def _texts(stream: Stream) -> list[str]:
    texts: list[str] = stream.read(as_frame=False).tolist()
    return texts


def _encode(frame: pd.DataFrame) -> np.ndarray:
    """Texts as rows of ``WIDTH`` byte ids (1 + the byte; 0 pads), as text models take them."""
    rows = np.zeros((len(frame), WIDTH), dtype=np.int64)
    for row, text in zip(rows, frame["text"], strict=True):
        ids = np.frombuffer(text.encode()[:WIDTH], dtype=np.uint8)
        row[: len(ids)] = ids.astype(np.int64) + 1
    return rows


def test_a_text_stream_reads_the_lines_read_data_reads(text_file: Path) -> None:
    stream = Stream.open(text_file, piece_bytes=PIECE_BYTES)
    expected = read_data(text_file)
    assert len(expected) == N_LINES
    assert "" in expected
    assert "broken \ufffd\ufffd bytes \ufffd here" in expected
    assert stream.is_text
    assert stream.is_table
    assert not stream.is_numeric
    assert stream.columns == ("text",)
    assert stream.sample_shape == ()
    assert stream.dtype == np.dtype(object)
    assert stream.n_rows == len(stream) == N_LINES
    frame = stream.read()
    assert list(frame.columns) == ["text"]
    assert frame["text"].tolist() == expected
    texts = stream.read(as_frame=False)
    assert texts.shape == (N_LINES,)
    assert texts.dtype == np.dtype(object)
    assert texts.tolist() == expected
    assert f"{N_LINES} lines of text" in repr(stream)


def test_pieces_are_blocks_of_whole_lines_that_cover_every_line_once_in_order(
    text_file: Path,
) -> None:
    stream = Stream.open(text_file, piece_bytes=PIECE_BYTES)
    assert len(stream.blocks) > 20
    assert all(block.n_bytes <= PIECE_BYTES for block in stream.blocks)
    assert sum(block.n_bytes for block in stream.blocks) == text_file.stat().st_size
    frames = list(stream.pieces())
    assert len(frames) == stream.n_pieces() == len(stream.blocks)
    assert all(list(frame.columns) == ["text"] for frame in frames)
    assert all(isinstance(text, str) for frame in frames for text in frame["text"])
    assert [text for frame in frames for text in frame["text"]] == read_data(text_file)
    arrays = list(stream.pieces(as_frame=False))
    assert all(array.ndim == 1 and array.dtype == np.dtype(object) for array in arrays)
    assert np.concatenate(arrays).tolist() == read_data(text_file)


def test_a_line_longer_than_a_piece_is_a_block_of_its_own(tmp_path: Path) -> None:
    path = tmp_path / "long.txt"
    path.write_bytes(b"short\n" + b"y" * 5000 + b"\nshort again\nlast, without a line break")
    stream = Stream.open(path, piece_bytes=100)
    assert [block.n_rows for block in stream.blocks] == [1, 1, 2]
    assert _texts(stream) == read_data(path)


@pytest.mark.parametrize(
    ("name", "encode"),
    [
        ("utf-8 with a byte-order mark", lambda text: codecs.BOM_UTF8 + text.encode()),
        ("utf-16 le", lambda text: codecs.BOM_UTF16_LE + text.encode("utf-16-le")),
        ("utf-16 be", lambda text: codecs.BOM_UTF16_BE + text.encode("utf-16-be")),
        ("utf-32 le", lambda text: codecs.BOM_UTF32_LE + text.encode("utf-32-le")),
        ("CR LF", lambda text: text.replace("\n", "\r\n").encode()),
        ("CR (classic Mac)", lambda text: text.replace("\n", "\r").encode()),
        ("no final line break", lambda text: text.rstrip("\n").encode()),
    ],
)
def test_encodings_and_line_breaks_are_read_as_read_data_reads_them(
    tmp_path: Path, name: str, encode: Callable[[str], bytes]
) -> None:
    text = "".join(_line(i).decode(errors="replace") + "\n" for i in range(300))
    path = tmp_path / "t.txt"
    path.write_bytes(encode(text))
    stream = Stream.open(path, piece_bytes=500)
    assert len(stream.blocks) > 5, name
    assert _texts(stream) == read_data(path) == text.splitlines()


def test_splits_are_disjoint_complementary_and_repeatable(text_file: Path) -> None:
    stream = Stream.open(text_file, piece_bytes=PIECE_BYTES)
    inside, outside = stream.split(0.2, seed=3)
    a, b = _texts(inside), _texts(outside)
    assert inside.n_rows == len(a)
    assert outside.n_rows == len(b)
    assert 0.15 * N_LINES < len(a) < 0.25 * N_LINES
    assert Counter(a) + Counter(b) == Counter(read_data(text_file))
    assert not {text for text in a if text} & {text for text in b if text}
    assert _texts(stream.split(0.2, seed=3)[0]) == a
    assert _texts(stream.split(0.2, seed=4)[0]) != a
    # The rows keep the file's order.
    lines = read_data(text_file)
    order = [lines.index(text) for text in a if text]
    assert order == sorted(order)


def test_shards_are_disjoint_and_cover_the_stream(text_file: Path) -> None:
    stream = Stream.open(text_file, piece_bytes=PIECE_BYTES).split(0.3, seed=1)[1]
    shards = [stream.shard(rank, 2) for rank in range(2)]
    assert sum(shard.n_rows for shard in shards) == stream.n_rows
    parts = [_texts(shard) for shard in shards]
    assert Counter(parts[0]) + Counter(parts[1]) == Counter(_texts(stream))
    assert not {text for text in parts[0] if text} & {text for text in parts[1] if text}


def test_head_and_sample(text_file: Path) -> None:
    stream = Stream.open(text_file, piece_bytes=PIECE_BYTES)
    lines = read_data(text_file)
    assert stream.head(250)["text"].tolist() == lines[:250]
    assert stream.head(3, as_frame=False).tolist() == lines[:3]
    sample = stream.sample(300, seed=0)
    assert 200 < len(sample) < 400
    assert set(sample["text"]) <= set(lines)


def test_a_directory_of_text_files_reads_them_in_name_order(tmp_path: Path) -> None:
    folder = tmp_path / "texts"
    folder.mkdir()
    _write(folder / "b.txt", range(1000, 1500))
    _write(folder / "a.txt", range(1000))
    stream = Stream.open(folder, piece_bytes=PIECE_BYTES)
    assert [path.name for path in stream.paths] == ["a.txt", "b.txt"]
    assert stream.n_rows == 1500
    assert _texts(stream) == read_data(folder / "a.txt") + read_data(folder / "b.txt")


def test_text_files_beside_tables_are_left_out(tmp_path: Path) -> None:
    folder = tmp_path / "table"
    folder.mkdir()
    pd.DataFrame({"x": [1.0, 2.0]}).to_csv(folder / "data.csv", index=False)
    _write(folder / "notes.txt", range(10))
    stream = Stream.open(folder)
    assert not stream.is_text
    assert [path.name for path in stream.paths] == ["data.csv"]


def test_empty_text_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_bytes(b"")
    with pytest.raises(InvalidInputError, match=r"empty\.txt holds no lines of text"):
        Stream.open(tmp_path / "empty.txt")
    (tmp_path / "bom.txt").write_bytes(codecs.BOM_UTF8)
    with pytest.raises(InvalidInputError, match="holds no lines of text"):
        Stream.open(tmp_path / "bom.txt")
    # Blank lines are lines: empty texts, as read_data reads them.
    (tmp_path / "blank.txt").write_bytes(b"\n\n")
    assert _texts(Stream.open(tmp_path / "blank.txt")) == read_data(tmp_path / "blank.txt")
    assert read_data(tmp_path / "blank.txt") == ["", ""]
    with pytest.raises(InvalidInputError, match="applies to tables"):
        Stream.open(tmp_path / "blank.txt", drop_columns=["text"])


def test_a_file_changed_after_opening_is_an_input_error(text_file: Path) -> None:
    stream = Stream.open(text_file, piece_bytes=PIECE_BYTES)
    before = stream.fingerprint()
    _write(text_file, range(N_LINES), end=b"\r\n")
    with pytest.raises(InvalidInputError, match=r"texts\.txt changed after the stream was opened"):
        stream.read()
    assert Stream.open(text_file).fingerprint() != before


def test_texts_train_through_an_encoder_as_shuffled_int64_rows(text_file: Path) -> None:
    stream = Stream.open(text_file, piece_bytes=PIECE_BYTES)
    with pytest.raises(InvalidInputError, match=r"text model.*'sequence' or 'transformer'"):
        StreamSource(stream)
    source = StreamSource(stream, buffer_bytes=500 * WIDTH * 8, encode=_encode)
    expected = Counter(map(tuple, _encode(stream.read()).tolist()))

    def epoch(seed: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        batches = [x for x, _ in source.epoch(64, shuffle=True, generator=generator)]
        assert all(len(batch) == 64 for batch in batches[:-1])
        return torch.cat(batches)

    served = epoch(0)
    assert served.dtype == torch.int64
    assert served.shape == (N_LINES, WIDTH)
    assert Counter(map(tuple, served.tolist())) == expected  # every row once
    assert source.buffer_rows == 500  # counted from the encoded rows, not the texts
    assert not torch.equal(served, torch.from_numpy(_encode(stream.read())))
    assert torch.equal(epoch(0), served)
    assert not torch.equal(epoch(1), served)
    x, _ = source.head(5)
    assert x.dtype == torch.int64
    assert torch.equal(x, torch.from_numpy(_encode(stream.head(5))))
