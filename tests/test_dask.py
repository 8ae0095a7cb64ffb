"""Distributed scoring (:mod:`hourglass.dask`, ``hourglass score --dask-scheduler``).

One :class:`distributed.LocalCluster` of two single-threaded worker processes
serves the whole module, with two tiny detectors: a dense one on bar images
(complexity-corrected score, so every result column appears) and a tabular one
on a mixed table. Every result is compared with in-process scoring, bit for bit.
"""

from __future__ import annotations

import contextlib
import filecmp
import io
import logging
import math
import socket
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from distributed import Client, LocalCluster
from sklearn.utils._param_validation import InvalidParameterError as SklearnParameterError

import hourglass.dask
from helpers import bar_images, mixed_table
from hourglass import AutoencoderOutlierDetector
from hourglass.cli import main
from hourglass.exceptions import (
    HourglassError,
    InvalidInputError,
    InvalidParameterError,
    ModelFileError,
)
from hourglass.scoring import top_columns

# Rows per chunk in most tests (results do not depend on it: see the random chunks below).
ALIGNED_ROWS = 2048


@dataclass(frozen=True)
class Models:
    dense: Path  # bar images, complexity-corrected score, calibrated
    table: Path  # mixed table, tabular
    images: np.ndarray[Any, Any]  # 5000 images to score: 4990 bars, 10 blank-and-bright
    frame: pd.DataFrame  # 3000 rows to score, with planted outliers and a sparse index


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Models:
    folder = tmp_path_factory.mktemp("models")
    settings: dict[str, Any] = {"epochs": 2, "verbose": 0, "random_state": 0}
    dense = AutoencoderOutlierDetector(latent_dim=4, hidden_dims=(32,), fpr=0.05, **settings)
    dense.fit(bar_images(1000, 0)).save(folder / "dense")
    table = AutoencoderOutlierDetector(arch="tabular", latent_dim=3, fpr=0.05, **settings)
    table.fit(mixed_table(1000, 0)).save(folder / "table")
    images = bar_images(5000, 1)
    images[::500] = 255 - images[::500]  # mostly white: outliers
    frame = mixed_table(3000, 2)
    frame.loc[frame.index[::300], "age"] = 150.0  # with ordinary incomes: outliers
    frame.index = frame.index * 10 + 7  # results must keep the input's index
    return Models(folder / "dense", folder / "table", images, frame)


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        # Its HTTP server (health checks) on a free local port, not the default 8787.
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
        silence_logs=logging.ERROR,
    ) as local:
        yield local


@pytest.fixture(scope="module")
def client(cluster: LocalCluster) -> Iterator[Client]:
    with Client(cluster) as connected:
        yield connected


def run_cli(argv: Sequence[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def assert_one_error_line(err: str, fragment: str) -> None:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("hourglass score: error: ")
    assert fragment in lines[0]


# ------------------------------------------------------------------ the API


def test_array_results_equal_in_process_scores(models: Models, client: Client) -> None:
    detector = AutoencoderOutlierDetector.load(models.dense)
    X = models.images
    results = hourglass.dask.score(models.dense, da.from_array(X, chunks=(ALIGNED_ROWS, 12, 12)))

    assert list(results) == ["reconstruction_error", "outlier_score", "p_value", "is_outlier"]
    assert all(array.chunks == ((2048, 2048, 904),) for array in results.values())
    got = client.compute(results, sync=True)
    np.testing.assert_array_equal(got["reconstruction_error"], detector.reconstruction_error(X))
    np.testing.assert_array_equal(got["outlier_score"], -detector.score_samples(X))
    np.testing.assert_array_equal(got["p_value"], detector.p_values(X))
    np.testing.assert_array_equal(got["is_outlier"], (detector.predict(X) == -1).astype(np.int8))
    assert got["is_outlier"].dtype == np.int8
    assert got["is_outlier"][::500].all()  # the planted outliers are found


def random_chunks(rng: np.random.Generator, n: int, largest: int) -> tuple[int, ...]:
    sizes = []
    while sum(sizes) < n:
        sizes.append(min(int(rng.integers(1, largest + 1)), n - sum(sizes)))
    return tuple(sizes)


def test_any_chunk_sizes_give_the_in_process_bits(models: Models, client: Client) -> None:
    rng = np.random.default_rng(0)
    detector = AutoencoderOutlierDetector.load(models.dense)
    X = models.images[:600]
    expected = -detector.score_samples(X)
    for _ in range(2):
        chunks = (random_chunks(rng, len(X), 100), 12, 12)
        results = hourglass.dask.score(models.dense, da.from_array(X, chunks=chunks))
        got = client.compute(results, sync=True)
        np.testing.assert_array_equal(got["outlier_score"], expected)

    table = AutoencoderOutlierDetector.load(models.table)
    frame = models.frame.iloc[:600]
    expected = table.outlier_score(frame)
    sizes = np.cumsum(random_chunks(rng, len(frame), 100))
    divisions = [frame.index[0], *frame.index[sizes[:-1]], frame.index[-1]]
    data = dd.from_pandas(frame, npartitions=1).repartition(divisions=divisions)
    got = client.compute(hourglass.dask.score(models.table, data), sync=True)
    np.testing.assert_array_equal(got["outlier_score"], expected)


def test_each_worker_loads_the_model_once(models: Models, client: Client) -> None:
    client.run(hourglass.dask.clear_cache)
    images = da.from_array(models.images, chunks=(500, 12, 12))  # 10 tasks for 2 workers
    scores = hourglass.dask.score(models.dense, images, columns=["outlier_score"])
    client.compute(scores, sync=True)
    client.compute(scores, sync=True)  # a second graph on the same workers

    info = client.run(hourglass.dask.cache_info)
    assert len(info) == 2
    assert all(worker == hourglass.dask.CacheInfo(loads=1, models=1) for worker in info.values())


def test_dataframe_results_equal_in_process_scores(models: Models, client: Client) -> None:
    detector = AutoencoderOutlierDetector.load(models.table)
    frame = models.frame
    data = dd.from_pandas(frame, npartitions=4)
    results = hourglass.dask.score(models.table, data)

    assert results.npartitions == 4
    columns = ["reconstruction_error", "outlier_score", "p_value", "is_outlier", "top_columns"]
    assert list(results.columns) == columns
    got = client.compute(results, sync=True)
    assert list(got.dtypes) == list(results.dtypes)  # the declared meta is what comes
    pd.testing.assert_index_equal(got.index, frame.index)
    scores = detector.outlier_score(frame)
    np.testing.assert_array_equal(got["outlier_score"], scores)
    np.testing.assert_array_equal(got["reconstruction_error"], detector.reconstruction_error(frame))
    np.testing.assert_array_equal(got["p_value"], detector.p_values(frame))
    flags = detector.predict(frame) == -1
    np.testing.assert_array_equal(got["is_outlier"], flags.astype(np.int8))
    assert flags[::300].all()
    contributions = detector.explain(frame)
    described = top_columns(contributions.to_numpy()[flags], list(contributions.columns))
    assert list(got["top_columns"][flags]) == described
    assert (got["top_columns"][~flags] == "").all()
    assert got["top_columns"].iloc[0].startswith("age (x")


def test_empty_partitions_give_empty_results(models: Models, client: Client) -> None:
    data = dd.from_pandas(models.frame, npartitions=3)
    few = data[data["age"] > 100]  # the planted rows only; partitions may be empty
    got = client.compute(hourglass.dask.score(models.table, few, threshold=0.0), sync=True)

    assert len(got) == 10
    assert (got["is_outlier"] == 1).all()


def test_columns_and_threshold_select_the_results(models: Models, client: Client) -> None:
    detector = AutoencoderOutlierDetector.load(models.table)
    data = dd.from_pandas(models.frame, npartitions=2)
    results = hourglass.dask.score(
        models.table, data, columns=["is_outlier", "outlier_score"], threshold=1e9
    )

    got = client.compute(results, sync=True)
    assert list(got.columns) == ["is_outlier", "outlier_score"]
    assert not got["is_outlier"].any()
    np.testing.assert_array_equal(got["outlier_score"], detector.outlier_score(models.frame))


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        (["score"], "columns must name distinct results"),
        (["p_value", "p_value"], "columns must name distinct results"),
        (["top_columns"], "top_columns describes the columns of tables"),
    ],
)
def test_unusable_columns_are_refused(models: Models, columns: list[str], message: str) -> None:
    images = da.from_array(models.images, chunks=(2048, 12, 12))
    with pytest.raises(InvalidParameterError, match=message):
        hourglass.dask.score(models.dense, images, columns=columns)


@pytest.mark.parametrize("threshold", [math.nan, math.inf])
def test_a_threshold_that_cannot_work_is_refused_as_the_detector_refuses_it(
    models: Models, threshold: float
) -> None:
    images = da.from_array(models.images, chunks=(2048, 12, 12))
    with pytest.raises(
        SklearnParameterError,  # from the constraint table the detector's fit checks too
        match=r"The 'threshold' parameter of hourglass.dask.score must be a float in the range "
        r"\(-inf, inf\)",
    ):
        hourglass.dask.score(models.dense, images, threshold=threshold)


def test_local_workers_must_be_a_positive_number(models: Models) -> None:
    with (
        pytest.raises(InvalidParameterError, match="'local:0' does not name a number of local"),
        hourglass.dask.connect("local:0"),
    ):
        pass


def test_arrays_chunked_across_samples_are_refused(models: Models) -> None:
    images = da.from_array(models.images, chunks=(1000, 6, 12))
    with pytest.raises(
        InvalidInputError, match=r"chunk it along axis 0 only: data.rechunk\(\{1: -1"
    ):
        hourglass.dask.score(models.dense, images)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (np.zeros((4, 12, 12), dtype=np.uint8), "takes a Dask array, DataFrame or Series"),
        (da.zeros((4, 10, 12), chunks=(2, 10, 12)), r"samples of shape \(10, 12\)"),
    ],
)
def test_data_that_do_not_fit_are_refused_before_any_task(
    models: Models, data: Any, message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        hourglass.dask.score(models.dense, data)


def test_a_tabular_model_refuses_an_array(models: Models) -> None:
    with pytest.raises(InvalidInputError, match="A tabular model scores tables"):
        hourglass.dask.score(models.table, da.zeros((4, 4), chunks=(2, 4)))


def test_a_tabular_model_fitted_on_an_array_scores_arrays(tmp_path: Path, client: Client) -> None:
    X = np.random.default_rng(0).normal(size=(400, 6))
    detector = AutoencoderOutlierDetector(
        arch="auto", epochs=2, fpr=0.05, verbose=0, random_state=0
    ).fit(X)
    assert detector.arch_ == "tabular"  # arch="auto" on a 2-D array
    path = detector.save(tmp_path / "model")
    results = hourglass.dask.score(path, da.from_array(X, chunks=(77, 6)))
    got = client.compute(results, sync=True)
    np.testing.assert_array_equal(got["outlier_score"], detector.outlier_score(X))
    with pytest.raises(InvalidInputError, match="a 2-D array of its 6 columns"):
        hourglass.dask.score(path, da.zeros((4, 5), chunks=(2, 5)))


def test_a_model_other_than_the_expected_one_is_refused(models: Models) -> None:
    with pytest.raises(ModelFileError, match=r"not the 0{12}\.\.\. the scoring started with"):
        hourglass.dask.cached_model(models.dense, digest="0" * 64)


def test_the_missing_extra_is_named_with_its_install_command(
    models: Models, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if it were not installed
    with pytest.raises(HourglassError, match=r'\(distributed is not installed\): pip install "h'):
        hourglass.dask.score(models.dense, da.zeros((4, 12, 12), chunks=(2, 12, 12)))

    argv = ["score", str(models.dense), "x.npy", "-o", "out.csv", "--dask-scheduler", "local:1"]
    code, _, err = run_cli(argv)
    assert code == 1
    assert_one_error_line(err, 'pip install "hourglass-ae[dask]"')


def test_read_data_chunks_an_npy_file_for_the_workers(tmp_path: Path, client: Client) -> None:
    values = np.arange(5000 * 6, dtype=np.float32).reshape(5000, 6)
    np.save(tmp_path / "x.npy", values)
    data = hourglass.dask.read_data(tmp_path / "x.npy", partition_rows=ALIGNED_ROWS)

    assert data.chunks == ((2048, 2048, 904), (6,))
    np.testing.assert_array_equal(client.compute(data, sync=True), values)


def test_read_data_splits_a_parquet_file_of_one_row_group(tmp_path: Path) -> None:
    mixed_table(5000, 0).to_parquet(tmp_path / "t.parquet", row_group_size=10_000)
    data = hourglass.dask.read_data(tmp_path / "t.parquet", partition_rows=1000)

    assert data.npartitions == 5
    assert len(data.compute(scheduler="synchronous")) == 5000


# ------------------------------------------------------------------ the CLI


@pytest.fixture(scope="module")
def files(models: Models, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("data")
    np.save(folder / "images.npy", models.images)
    frame = models.frame.reset_index(drop=True).assign(label=1)
    frame.to_csv(folder / "table.csv", index=False)
    frame.to_parquet(folder / "table.parquet", row_group_size=1000)
    return folder


@pytest.mark.parametrize(
    ("model", "data", "options"),
    [
        ("dense", "images.npy", ["-o", "scores.csv", "--partition-rows", "2048"]),
        ("dense", "images.npy", ["-o", "scores.parquet", "--contamination", "0.01"]),
        ("table", "table.csv", ["-o", "scores.csv", "--drop-columns", "label"]),
        (
            "table",
            "table.csv",
            ["-o", "scores.csv", "--drop-columns", "label", "--partition-rows", "700"],
        ),
        (
            "table",
            "table.parquet",
            [
                "-o",
                "scores.csv",
                "--drop-columns",
                "label",
                "--fpr",
                "0.2",
                "--partition-rows",
                "1000",
            ],
        ),
    ],
)
def test_cli_on_the_cluster_writes_the_in_process_file(
    models: Models,
    files: Path,
    cluster: LocalCluster,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    model: str,
    data: str,
    options: list[str],
) -> None:
    argv = ["score", str(getattr(models, model)), str(files / data), *options]
    cluster_options = ["--dask-scheduler", cluster.scheduler_address]
    summaries = []
    for folder, extra in (("here", []), ("there", cluster_options)):
        monkeypatch.chdir(tmp_path)
        (tmp_path / folder).mkdir()
        monkeypatch.chdir(tmp_path / folder)  # the same relative output path in both runs
        code, summary, err = run_cli([*argv, *extra, "--json"])
        assert (code, err) == (0, "")
        summaries.append(summary)

    output = options[1]
    assert filecmp.cmp(tmp_path / "here" / output, tmp_path / "there" / output, shallow=False)
    assert summaries[0] == summaries[1]


def test_cli_starts_a_local_cluster(models: Models, files: Path, tmp_path: Path) -> None:
    argv = ["score", str(models.table), str(files / "table.parquet"), "--drop-columns", "label"]
    assert run_cli([*argv, "-o", str(tmp_path / "a.csv")])[0] == 0
    code, _, err = run_cli([*argv, "-o", str(tmp_path / "b.csv"), "--dask-scheduler", "local:1"])

    assert (code, err) == (0, "")
    assert filecmp.cmp(tmp_path / "a.csv", tmp_path / "b.csv", shallow=False)


def test_cli_fails_fast_when_the_scheduler_is_unreachable(models: Models, files: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = ["score", str(models.dense), str(files / "images.npy"), "-o", "never.csv"]
    start = time.perf_counter()
    code, _, err = run_cli(
        [*argv, "--dask-scheduler", f"tcp://127.0.0.1:{port}", "--dask-timeout", "0.5"]
    )

    assert code == 1
    assert time.perf_counter() - start < 10
    assert_one_error_line(err, f"Cannot reach a Dask scheduler at 'tcp://127.0.0.1:{port}'")
    assert not Path("never.csv").exists()


@pytest.mark.parametrize(
    ("address", "exit_code", "message"),
    [
        ("local:0", 2, "does not name a number of local workers"),  # a bad option value
        ("nowhere", 1, "missing port"),  # no scheduler there
    ],
)
def test_cli_explains_bad_scheduler_addresses(
    models: Models, files: Path, address: str, exit_code: int, message: str
) -> None:
    argv = ["score", str(models.dense), str(files / "images.npy"), "-o", "never.csv"]
    code, _, err = run_cli([*argv, "--dask-scheduler", address, "--dask-timeout", "0.5"])

    assert code == exit_code
    assert_one_error_line(err, message)
