"""Damaged and odd data files, through the loaders and every CLI verb.

Truncated, corrupted and random NumPy, CSV, Parquet, IDX and text files, text
in other encodings, and data that does not suit the model: :func:`read_data`
either returns what the file holds or raises a documented error with a message
that names the file and says what to do; every CLI verb answers with exit code
1 or 2 and exactly one error line on standard error. Never another exception,
never an "internal error", never a traceback, and never a silently shortened or
misread table.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import struct
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from helpers import bounded_properties, mixed_table
from hourglass import AutoencoderOutlierDetector
from hourglass.cli import main
from hourglass.data import read_data, read_idx
from hourglass.exceptions import DatasetError, HourglassError, InvalidInputError

#: A bounded, deterministic budget: the whole file runs in well under a minute.
PROPERTIES = bounded_properties(30)
TINY: dict[str, Any] = {
    "arch": "dense",  # the family each file below is meant for; tables name "tabular"
    "latent_dim": 2,
    "hidden_dims": (),
    "epochs": 1,
    "num_threads": 1,
    "verbose": 0,
    "random_state": 0,
}

pytestmark = pytest.mark.filterwarnings("ignore:.*calibration samples cannot guarantee:UserWarning")

ARRAY = np.random.default_rng(0).random((6, 4)).astype(np.float32)
TABLE = pd.DataFrame(ARRAY, columns=list("abcd")).assign(label=["x", "y", "z", "x", "y", "z"])
LINES = ["first text", "Grüße", "", "the last one"]


def _encoded(write: Callable[[io.BytesIO], Any]) -> bytes:
    buffer = io.BytesIO()
    write(buffer)
    return buffer.getvalue()


#: A valid file of each supported format, as (file name, content).
GOOD_FILES: dict[str, tuple[str, bytes]] = {
    "npy": ("data.npy", _encoded(lambda b: np.save(b, ARRAY))),
    "npz": ("data.npz", _encoded(lambda b: np.savez_compressed(b, X=ARRAY))),
    "csv": ("data.csv", TABLE.to_csv(index=False).encode()),
    "csv.gz": ("data.csv.gz", gzip.compress(TABLE.to_csv(index=False).encode(), mtime=0)),
    "parquet": ("data.parquet", _encoded(lambda b: TABLE.to_parquet(b))),
    "idx": (
        "data-idx3-ubyte",
        struct.pack(">BBBBII", 0, 0, 0x0D, 2, 6, 4) + ARRAY.astype(">f4").tobytes(),
    ),
    "idx.gz": (
        "data-idx3-ubyte.gz",
        gzip.compress(
            struct.pack(">BBBBII", 0, 0, 0x0D, 2, 6, 4) + ARRAY.astype(">f4").tobytes(), mtime=0
        ),
    ),
    "txt": ("data.txt", ("\n".join(LINES) + "\n").encode()),
}
#: What read_data returns for each format.
RESULT_TYPES: dict[str, type] = {
    "npy": np.ndarray,
    "npz": np.ndarray,
    "csv": pd.DataFrame,
    "csv.gz": pd.DataFrame,
    "parquet": pd.DataFrame,
    "idx": np.ndarray,
    "idx.gz": np.ndarray,
    "txt": list,
}
#: Formats whose every proper prefix is damaged: reading one must fail, never return less.
BINARY_FORMATS = ["npy", "npz", "parquet", "idx", "idx.gz", "csv.gz"]
SUFFIXES = [
    "x.npy",
    "x.npz",
    "x.csv",
    "x.csv.gz",
    "x.parquet",
    "x.idx",
    "x-ubyte",
    "x.gz",
    "x.txt",
    "x.txt.gz",
]


def assert_helpful(error: BaseException, path: Path | None = None) -> None:
    """A documented loader error: names the file, says something useful, one line."""
    assert isinstance(error, InvalidInputError | DatasetError), repr(error)
    message = str(error)
    assert "\n" not in message, message
    assert len(message) >= 40, message
    if path is not None:
        assert path.name in message, message


def read(path: Path) -> Any:
    """``read_data(path)``, or the documented error it raised (checked to be helpful)."""
    try:
        return read_data(path)
    except HourglassError as error:
        assert_helpful(error, path)
        return error


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("files")


def write(folder: Path, name: str, content: bytes) -> Path:
    path = folder / name
    path.write_bytes(content)
    return path


# ------------------------------------------------------------------ loaders


def test_the_good_files_are_read_whole(folder: Path) -> None:
    for kind, (name, content) in GOOD_FILES.items():
        data = read_data(write(folder, name, content))
        if kind == "txt":
            assert data == LINES
        elif kind in ("csv", "csv.gz", "parquet"):
            pd.testing.assert_frame_equal(data, TABLE, check_dtype=False)
        else:
            np.testing.assert_array_equal(data, ARRAY)


@PROPERTIES
@given(kind=st.sampled_from(list(GOOD_FILES)), data=st.data())
def test_truncated_files_raise_or_return_a_prefix(
    folder: Path, kind: str, data: st.DataObject
) -> None:
    name, content = GOOD_FILES[kind]
    cut = data.draw(st.integers(0, len(content) - 1), label="cut")
    path = write(folder, name, content[:cut])

    result = read(path)

    if kind in BINARY_FORMATS:
        assert isinstance(result, InvalidInputError), f"{kind} cut at {cut} gave {result!r}"
    elif kind == "txt":
        assert not isinstance(result, HourglassError)
        assert len(result) <= len(LINES)
        complete = max(len(result) - 1, 0)
        assert result[:complete] == LINES[:complete]  # whole lines, then maybe part of one
    elif not isinstance(result, HourglassError):  # a CSV cut at a line end is a valid CSV
        assert isinstance(result, pd.DataFrame)
        assert len(result) <= len(TABLE)


@PROPERTIES
@given(kind=st.sampled_from(list(GOOD_FILES)), data=st.data())
def test_corrupted_files_raise_or_return_data_of_the_right_kind(
    folder: Path, kind: str, data: st.DataObject
) -> None:
    name, content = GOOD_FILES[kind]
    damaged = bytearray(content)
    for _ in range(data.draw(st.integers(1, 4), label="n_bytes")):
        position = data.draw(st.integers(0, len(damaged) - 1), label="position")
        damaged[position] = data.draw(st.integers(0, 255), label="value")
    path = write(folder, name, bytes(damaged))

    result = read(path)

    if not isinstance(result, HourglassError):  # damaged values can look like valid ones
        assert isinstance(result, RESULT_TYPES[kind])


@PROPERTIES
@given(name=st.sampled_from(SUFFIXES), content=st.binary(max_size=300))
@example(name="x.npy", content=b"\x93NUMP")
@example(name="x.npy", content=GOOD_FILES["npy"][1] + b"extra")
@example(name="x.idx", content=b"\x00\x00\x08\xff" + b"\x00\x00\x00\x01" * 255 + b"\x07")
@example(name="x.npz", content=b"PK\x05\x06" + bytes(18))
def test_random_bytes_under_any_name(folder: Path, name: str, content: bytes) -> None:
    result = read(write(folder, name, content))

    if name.endswith((".npy", ".idx", "-ubyte")) and not isinstance(result, HourglassError):
        assert isinstance(result, np.ndarray)


def test_a_npz_member_that_is_not_an_array_is_refused(folder: Path) -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("X.npy", b"not an array")

    with pytest.raises(InvalidInputError, match="'X' that is not a NumPy array"):
        read_data(write(folder, "members.npz", archive.getvalue()))


#: IDX type codes and the sizes of their values.
IDX_ITEMSIZES = {0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}


@PROPERTIES
@given(
    code=st.integers(0, 255),
    shape=st.lists(st.integers(0, 3), max_size=4),
    extra=st.integers(-3, 3),
)
@example(code=0x08, shape=[2, 3], extra=0)
@example(code=0x0E, shape=[], extra=0)
@example(code=0x08, shape=[1] * 70, extra=0)  # more dimensions than NumPy allows
def test_idx_headers_and_payload_sizes(code: int, shape: list[int], extra: int) -> None:
    expected_bytes = int(np.prod(shape)) * IDX_ITEMSIZES.get(code, 1)
    payload = bytes(max(0, expected_bytes + extra))
    content = struct.pack(f">BBBB{len(shape)}I", 0, 0, code, len(shape), *shape) + payload
    valid = code in IDX_ITEMSIZES and len(payload) == expected_bytes and len(shape) <= 64

    if not valid:
        with pytest.raises(InvalidInputError) as raised:
            read_idx(content)
        assert_helpful(raised.value)
        return
    array = read_idx(content)
    assert array.shape == tuple(shape)
    assert array.dtype.itemsize == IDX_ITEMSIZES[code]
    assert array.flags.writeable


@PROPERTIES
@given(content=st.binary(max_size=200).filter(lambda raw: b"\r" not in raw))
@example(content=b"ok\n\xff\xfe\n\n")
@example(content=b"form\x0cfeed\xe2\x80\xa8in one line\n")
def test_text_files_of_any_bytes_give_one_str_per_line(folder: Path, content: bytes) -> None:
    lines = read_data(write(folder, "any.txt", content))

    assert isinstance(lines, list)
    assert all(isinstance(line, str) and "\n" not in line for line in lines)
    if not content.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")):
        # One text per line of the file, whatever bytes (or line separators) it holds.
        expected = content.split(b"\n")
        if expected[-1] == b"":
            expected.pop()
        assert len(lines) == len(expected)


@PROPERTIES
@given(
    texts=st.lists(
        st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\r\n"), max_size=8),
        max_size=5,
    ),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-32"]),
    compressed=st.booleans(),
)
def test_text_files_in_any_unicode_encoding_with_a_byte_order_mark(
    folder: Path, texts: list[str], encoding: str, compressed: bool
) -> None:
    raw = "".join(f"{text}\n" for text in texts).encode(encoding)
    if not texts and encoding in ("utf-16", "utf-32"):
        raw = b""  # an empty file has no mark
    if compressed:
        raw = gzip.compress(raw, mtime=0)

    assert read_data(write(folder, "texts.txt.gz" if compressed else "texts.txt", raw)) == texts


@PROPERTIES
@given(text=st.text(st.characters(exclude_categories=["Cs"]), max_size=80))
@example(text="a,b\n1,2,3,4\n5,6\n")
@example(text='a,b\n"1,2\n')
@example(text="")
def test_csv_of_any_text(folder: Path, text: str) -> None:
    result = read(write(folder, "any.csv", text.encode()))

    if not isinstance(result, HourglassError):
        assert isinstance(result, pd.DataFrame)
        # Never more values per row than there are column names (a silent index).
        assert isinstance(result.index, pd.RangeIndex)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("a,b\nü,1\n".encode("latin-1"), r"not UTF-8.*0xFC.*Save it as UTF-8"),
        ("a,b\n1,2\n".encode("utf-16"), "not UTF-8"),
        (b"a,b\n1,2,3,4\n5,6\n", "more fields than its header has column names"),
    ],
    ids=["latin-1", "utf-16", "extra fields"],
)
def test_csv_mistakes_get_specific_messages(folder: Path, content: bytes, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        read_data(write(folder, "mistake.csv", content))


# ------------------------------------------------------------------------ CLI


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Saved detectors for arrays of 4 features, for the table TABLE, and for texts."""
    folder = tmp_path_factory.mktemp("models")
    rng = np.random.default_rng(1)
    fitted = {
        "dense": AutoencoderOutlierDetector(**TINY).fit(rng.random((40, 4), dtype=np.float32)),
        "frame": AutoencoderOutlierDetector(**TINY).fit(TABLE[list("abcd")]),
        "table": AutoencoderOutlierDetector(**{**TINY, "arch": "tabular"}).fit(mixed_table(40, 0)),
        "text": AutoencoderOutlierDetector(**{**TINY, "hidden_dims": (8,), "arch": "sequence"}).fit(
            LINES * 5
        ),
    }
    return {name: model.save(folder / name) for name, model in fitted.items()}


def verb_arguments(verb: str, model: Path, data: Path, out: Path) -> list[str]:
    """Command-line arguments running ``verb`` of ``model`` on ``data``."""
    if verb == "train":
        return ["train", str(data), "-o", str(out / "trained"), "--epochs", "1", "-q"]
    output = {
        "score": ["-o", str(out / "scores.csv")],
        "encode": ["-o", str(out / "codes.npy")],
        "cluster": ["-o", str(out / "clusters.csv"), "-k", "2"],
        "neighbors": ["--reference", str(data)],
        "denoise": ["-o", str(out / "clean.npy")],
        "map": ["-o", str(out / "map.png")],
        "report": ["-o", str(out / "report.html")],
    }[verb]
    return [verb, str(model), str(data), *output]


@contextlib.contextmanager
def captured() -> Iterator[tuple[io.StringIO, io.StringIO]]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        yield out, err


def assert_one_line_error(argv: list[str]) -> str:
    """Run the CLI; check it fails with exit code 1 or 2 and one clean error line."""
    with captured() as (_, err):
        code = main(argv)
    lines = err.getvalue().splitlines()
    errors = [line for line in lines if ": error: " in line]
    assert code in (1, 2), (argv, code, lines)
    assert len(errors) == 1, lines
    assert all(line.startswith(f"hourglass {argv[0]}: ") for line in lines), lines
    assert "internal error" not in err.getvalue()
    assert "Traceback" not in err.getvalue()
    assert len(errors[0]) >= 60, errors[0]
    return errors[0]


VERBS = ["train", "score", "encode", "cluster", "neighbors", "denoise", "map", "report"]


@PROPERTIES
@given(
    verb=st.sampled_from(VERBS),
    kind=st.sampled_from(BINARY_FORMATS),
    model=st.sampled_from(["dense", "frame", "table", "text"]),
    data=st.data(),
)
def test_every_verb_on_a_damaged_file_prints_one_error_line(
    models: dict[str, Path],
    folder: Path,
    verb: str,
    kind: str,
    model: str,
    data: st.DataObject,
) -> None:
    name, content = GOOD_FILES[kind]
    cut = data.draw(st.integers(0, len(content) - 1), label="cut")
    path = write(folder, f"cli-{name}", content[:cut])

    message = assert_one_line_error(verb_arguments(verb, models[model], path, folder))

    assert path.name in message


#: Data that suit no model, or not the one given: (model, file name, content, message).
MISMATCHES = [
    ("dense", "empty.csv", b"", "No columns to parse"),
    ("dense", "header.csv", b"a,b,c,d\n", "0 rows"),
    ("dense", "latin.csv", "a,b,c,d\nü,1,2,3\n".encode("latin-1"), "not UTF-8"),
    ("dense", "ragged.csv", b"a,b,c,d\n1,2,3,4,5,6\n", "more fields"),
    ("dense", "nan.csv", b"a,b,c,d\n,2,3,4\n", "NaN"),
    ("dense", "huge.csv", b"a,b,c,d\n1e300,2,3,4\n", "float32 range"),
    ("dense", "texts.txt", b"some\ntext\n", "got texts"),
    ("dense", "empty.txt", b"", "at least one sample"),
    ("dense", "one.npy", _encoded(lambda b: np.save(b, np.zeros(4))), "Reshape your data"),
    ("dense", "complex.npy", _encoded(lambda b: np.save(b, np.zeros((2, 4), complex))), "Complex"),
    (
        "dense",
        "fields.npy",
        _encoded(lambda b: np.save(b, np.zeros(2, [("a", "f4")]))),
        "structured",
    ),
    ("frame", "reordered.csv", b"d,c,b,a\n1,2,3,4\n", "same order"),
    ("frame", "renamed.csv", b"a,b,c,z\n1,2,3,4\n", "feature names"),
    ("table", "missing.csv", b"age,city\n40,north\n", "lacks column"),
    ("table", "infinite.csv", b"age,income,city,owner\ninf,1,north,True\n", "infinite"),
    ("text", "table.csv", b"text\nhello\n", "got a table"),
    ("text", "numbers.npy", _encoded(lambda b: np.save(b, ARRAY)), "got an array of shape"),
]


@pytest.mark.parametrize(
    ("model", "name", "content", "message"), MISMATCHES, ids=[m[1] for m in MISMATCHES]
)
def test_data_that_do_not_suit_the_model_give_one_error_line(
    models: dict[str, Path], folder: Path, model: str, name: str, content: bytes, message: str
) -> None:
    path = write(folder, name, content)

    for verb in ("score", "encode", "neighbors"):
        assert message in assert_one_line_error(verb_arguments(verb, models[model], path, folder))


@pytest.mark.parametrize("verb", ["cluster", "denoise", "map", "report"])
def test_the_other_verbs_refuse_unsuitable_data_the_same_way(
    models: dict[str, Path], folder: Path, verb: str
) -> None:
    for name, content, message in [
        ("nan.csv", b"a,b,c,d\n,2,3,4\n", "NaN"),
        ("texts.txt", b"some\ntext\n", "got texts"),
    ]:
        path = write(folder, name, content)
        error = assert_one_line_error(verb_arguments(verb, models["dense"], path, folder))
        assert message in error


@pytest.mark.parametrize(
    ("verb", "options", "message"),
    [
        (
            "score",
            ["--threshold", "nan"],
            "The 'threshold' parameter of AutoencoderOutlierDetector",
        ),
        ("map", ["--clusters", "0"], "--clusters must be between 1 and"),
        ("map", ["--clusters", "-2"], "--clusters must be between 1 and"),
        ("map", ["--clusters", "7"], "number of samples (6)"),
        ("report", ["--labels", "LABELS_5"], "labels has 5 values but the data has 6"),
        ("report", ["--labels", "LABELS_TEXT"], "1 for outliers and 0 for normal samples"),
        ("report", ["--labels", "label"], "1 for outliers and 0 for normal samples"),
        ("neighbors", ["-k", "0"], "k must be a positive int"),
        ("cluster", ["-k", "7"], "more than the 6 samples"),
    ],
)
def test_option_values_that_cannot_work_give_one_error_line(
    models: dict[str, Path], folder: Path, verb: str, options: list[str], message: str
) -> None:
    # Silently flagging nothing (a NaN threshold), or a stack trace, would be worse.
    data = write(folder, "options.csv", GOOD_FILES["csv"][1])
    write(folder, "labels5.npy", _encoded(lambda b: np.save(b, np.zeros(5))))
    write(folder, "labels.txt", b"yes\nno\nyes\nno\nno\nno\n")
    files = {"LABELS_5": "labels5.npy", "LABELS_TEXT": "labels.txt"}
    options = [str(folder / files[o]) if o in files else o for o in options]
    drop = [] if "label" in options else ["--drop-columns", "label"]

    argv = [*verb_arguments(verb, models["frame"], data, folder), *options, *drop]

    assert message in assert_one_line_error(argv)


def test_a_sequence_model_scores_a_text_file_with_bad_bytes(
    models: dict[str, Path], folder: Path
) -> None:
    path = write(folder, "bad-bytes.txt", b"fine\n\xff\xfe\x00 broken\n\nlast")
    with captured():
        code = main(verb_arguments("score", models["text"], path, folder))
    assert code == 0
    scores = pd.read_csv(folder / "scores.csv")
    assert len(scores) == 4
    assert np.isfinite(scores["reconstruction_error"]).all()


def test_a_data_file_given_as_the_model_is_a_one_line_error(
    models: dict[str, Path], folder: Path
) -> None:
    data = write(folder, "swapped.npy", GOOD_FILES["npy"][1])

    for verb in ("score", "encode", "cluster"):
        assert_one_line_error(verb_arguments(verb, data, models["dense"], folder))
