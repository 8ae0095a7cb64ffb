"""The command line on streamed data: large files and directories read in pieces."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hourglass.cli._common as common
from hourglass.cli import main
from hourglass.cli._common import TableWriter, read_input
from hourglass.data.stream import Stream

TRAIN = ("--latent-dim", "3", "--hidden-dims", "12", "--epochs", "2", "-q", "--seed", "0")


def _rows(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    values = 1 / (1 + np.exp(-rng.normal(size=(n, 2)) @ rng.normal(size=(2, 6))))
    return pd.DataFrame(values.astype(np.float32), columns=[f"c{i}" for i in range(6)])


def run(*argv: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(list(argv)) == 0
    return out.getvalue()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A directory of three Parquet files of rows."""
    parts = tmp_path / "parts"
    parts.mkdir()
    for i in range(3):
        _rows(300, seed=i).to_parquet(parts / f"part-{i}.parquet", row_group_size=64)
    return parts


def test_train_and_score_a_directory_of_parquet_files(tmp_path: Path, folder: Path) -> None:
    run("train", str(folder), "-o", str(tmp_path / "model"), *TRAIN)
    printed = run("score", str(tmp_path / "model"), str(folder), "-o", str(tmp_path / "s.parquet"))
    assert "Scored 900 samples" in printed
    streamed = pd.read_parquet(tmp_path / "s.parquet")
    assert list(streamed["index"]) == list(range(900))
    # The same rows read whole give the same table.
    whole = pd.concat([pd.read_parquet(p) for p in sorted(folder.iterdir())], ignore_index=True)
    whole.to_parquet(tmp_path / "whole.parquet")
    run(
        "score",
        str(tmp_path / "model"),
        str(tmp_path / "whole.parquet"),
        "-o",
        str(tmp_path / "w.parquet"),
        "--stream",
        "never",
    )
    pd.testing.assert_frame_equal(streamed, pd.read_parquet(tmp_path / "w.parquet"))


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_streamed_and_whole_scores_are_identical(tmp_path: Path, suffix: str) -> None:
    data = tmp_path / "rows.npy"
    np.save(data, np.ascontiguousarray(_rows(700, seed=0).to_numpy()))
    run("train", str(data), "-o", str(tmp_path / "model"), *TRAIN, "--stream", "always")
    outputs = []
    for mode in ("always", "never"):
        output = tmp_path / f"{mode}{suffix}"
        run("score", str(tmp_path / "model"), str(data), "-o", str(output), "--stream", mode)
        outputs.append(output.read_bytes() if suffix == ".csv" else pd.read_parquet(output))
    if suffix == ".csv":
        assert outputs[0] == outputs[1]
    else:
        pd.testing.assert_frame_equal(outputs[0], outputs[1])


def test_contamination_and_json_work_on_streams(tmp_path: Path, folder: Path) -> None:
    run("train", str(folder), "-o", str(tmp_path / "model"), *TRAIN)
    printed = run(
        "score",
        str(tmp_path / "model"),
        str(folder),
        "-o",
        str(tmp_path / "s.csv"),
        "--contamination",
        "0.1",
        "--json",
    )
    import json

    result = json.loads(printed)
    assert result["n_outliers"] == 90
    assert len(result["results"]) == 900


def test_encode_and_cluster_take_streams(tmp_path: Path, folder: Path) -> None:
    run("train", str(folder), "-o", str(tmp_path / "model"), *TRAIN)
    run("encode", str(tmp_path / "model"), str(folder), "-o", str(tmp_path / "codes.npy"))
    assert np.load(tmp_path / "codes.npy").shape == (900, 3)
    run("cluster", str(tmp_path / "model"), str(folder), "-o", str(tmp_path / "c.csv"), "-k", "3")
    assert len(pd.read_csv(tmp_path / "c.csv")) == 900


def test_large_files_stream_by_themselves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "rows.parquet"
    _rows(50, seed=0).to_parquet(data)
    assert not isinstance(read_input(str(data)), Stream)
    monkeypatch.setenv("HOURGLASS_STREAM_BYTES", str(data.stat().st_size - 1))
    assert isinstance(read_input(str(data)), Stream)
    assert not isinstance(read_input(str(data), stream="never"), Stream)
    monkeypatch.delenv("HOURGLASS_STREAM_BYTES")
    assert common.STREAM_THRESHOLD_BYTES == 2**30
    assert isinstance(read_input(str(data), stream="always"), Stream)
    assert isinstance(read_input(str(tmp_path)), Stream)  # directories always stream


def test_verbs_that_need_every_sample_in_memory_do_not_offer_streaming() -> None:
    from hourglass.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["report", "model", "data.npy", "-o", "r.html"])
    assert args.stream == "never"
    with pytest.raises(SystemExit), contextlib.redirect_stderr(io.StringIO()):
        parser.parse_args(["report", "model", "data.npy", "-o", "r.html", "--stream", "always"])


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_table_written_in_parts_appears_whole_or_not_at_all(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"out{suffix}"
    part = pd.DataFrame({"index": [0, 1], "score": [0.5, 0.25]})
    with TableWriter(str(path)) as writer:
        writer.write(part)
        writer.write(part.assign(index=[2, 3]))
    read = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
    assert list(read["index"]) == [0, 1, 2, 3]
    before = path.read_bytes()

    def crash_in_the_middle() -> None:
        with TableWriter(str(path)) as writer:
            writer.write(part)
            raise RuntimeError("crash in the middle")

    with pytest.raises(RuntimeError):
        crash_in_the_middle()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


def test_neighbors_and_denoise_take_streams(tmp_path: Path) -> None:
    from helpers import bar_images

    images = bar_images(300, seed=0)
    np.save(tmp_path / "bars.npy", images)
    run(
        "train", str(tmp_path / "bars.npy"), "-o", str(tmp_path / "m"), "--noise", "gaussian",
        "--latent-dim", "4", "--epochs", "2", "-q", "--fpr", "0.05",
    )  # fmt: skip
    for mode in ("always", "never"):
        run(
            "neighbors", str(tmp_path / "m"), str(tmp_path / "bars.npy"), "--reference",
            str(tmp_path / "bars.npy"), "-k", "3", "-o", str(tmp_path / f"n-{mode}.csv"),
            "--stream", mode,
        )  # fmt: skip
        run(
            "denoise", str(tmp_path / "m"), str(tmp_path / "bars.npy"), "-o",
            str(tmp_path / f"d-{mode}.npy"), "--stream", mode, "--preview", "4",
        )  # fmt: skip
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "n-always.csv"), pd.read_csv(tmp_path / "n-never.csv")
    )
    streamed, whole = np.load(tmp_path / "d-always.npy"), np.load(tmp_path / "d-never.npy")
    assert streamed.shape == whole.shape == (300, 12, 12)
    np.testing.assert_array_equal(streamed, whole)
    assert (tmp_path / "d-always.png").stat().st_size > 0
