"""Benchmark: distributed scoring on Dask (``hourglass.dask.score``), rows/s with 1 and 2 workers.

Two workloads, each scored in process and on a ``distributed.LocalCluster`` of
1 and then 2 single-threaded worker processes:

- **table**: the ADBench cardio dev set (``adbench-dev/6_cardio.npz``, 1,831
  rows of 21 measurements) tiled to ``--table-rows`` rows (default 2**20) with
  a little noise, written as Parquet in row groups of 65,536 rows; a tabular
  detector trained on cardio's normal rows. Results: reconstruction error,
  outlier (distance) score, p-value, flag and the top columns of each flagged row.
- **images**: the Fashion-MNIST test images tiled to ``--image-rows`` rows
  (default 2**18), written as ``.npy``; a dense detector trained on the
  Fashion-MNIST training images, with the complexity-corrected score (which
  compresses every image with zlib). Results: error, corrected score,
  p-value, flag.

The clusters are those of ``hourglass score --dask-scheduler local:N``
(``hourglass.dask.connect``); with ``--with-malloc-trim``, also clusters whose
workers keep Dask's default ``MALLOC_TRIM_THRESHOLD_=65536``, to measure what
it costs. Each measurement reads the file and gathers every result on the
client, as ``hourglass score --dask-scheduler`` does (``read_data`` +
``score`` + ``compute``); workers have loaded the model before the clock
starts (cluster start-up is reported apart). "in process" does the same with pandas/NumPy and
the detector's methods, with PyTorch on one thread (as one worker) and on all
cores. The best of ``--repeats`` runs is reported. Results are checked equal
to in-process scoring.

Run: ``python benchmarks/dask_scoring.py [--data-dir DIR] [--table-rows N]
[--image-rows N] [--workers 1 2] [--repeats 2] [--with-malloc-trim]``
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import logging
import os
import platform
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pandas as pd
import torch
from distributed import Client, LocalCluster

import hourglass.dask
from hourglass import AutoencoderOutlierDetector
from hourglass.datasets import load_fashion_mnist
from hourglass.scoring import conformal_p_values, top_columns

PARTITION_ROWS = hourglass.dask.DEFAULT_PARTITION_ROWS


def data_dir(given: str | None) -> Path:
    for candidate in (given, os.environ.get("HOURGLASS_DATA"), "../shared/data"):
        if candidate and (Path(candidate) / "adbench-dev" / "6_cardio.npz").is_file():
            return Path(candidate)
    raise SystemExit("Cannot find adbench-dev/6_cardio.npz: pass --data-dir DIR.")


def table_workload(where: Path, folder: Path, n_rows: int) -> tuple[Path, Path]:
    """The tiled cardio table (Parquet) and a tabular detector of its normal rows."""
    cardio = np.load(where / "adbench-dev" / "6_cardio.npz")
    X, y = cardio["X"], cardio["y"]
    columns = [f"x{j}" for j in range(X.shape[1])]
    model = AutoencoderOutlierDetector(
        arch="tabular", latent_dim=8, epochs=30, verbose=0, random_state=0
    )
    model.fit(pd.DataFrame(X[y == 0], columns=columns)).save(folder / "table-model")
    rng = np.random.default_rng(0)
    rows = X[rng.integers(0, len(X), n_rows)]
    rows = rows + rng.normal(0, 0.01, rows.shape) * rows.std(axis=0)
    path = folder / "table.parquet"
    pd.DataFrame(rows, columns=columns).to_parquet(path, row_group_size=PARTITION_ROWS)
    return path, folder / "table-model"


def image_workload(where: Path, folder: Path, n_rows: int) -> tuple[Path, Path]:
    """The tiled Fashion-MNIST test images (.npy) and a dense detector of the training ones."""
    train, _ = load_fashion_mnist("train", data_dir=where)
    test, _ = load_fashion_mnist("test", data_dir=where)
    model = AutoencoderOutlierDetector(
        arch="dense", latent_dim=32, hidden_dims=(256,), epochs=2, verbose=0, random_state=0
    )
    model.fit(train).save(folder / "image-model")
    path = folder / "images.npy"
    np.save(path, test[np.arange(n_rows) % len(test)])
    return path, folder / "image-model"


def in_process(model_path: Path, data_path: Path) -> pd.DataFrame:
    """What the workers compute, here: read the file, score, flag, explain the flagged rows."""
    detector = AutoencoderOutlierDetector.load(model_path)
    data: Any = pd.read_parquet(data_path) if data_path.suffix == ".parquet" else np.load(data_path)
    scores = detector.outlier_score(data)
    # The outlier score is reported beside the error when it is another score.
    separate = detector.score_type_ != "error"
    results: dict[str, Any] = {
        "reconstruction_error": detector.reconstruction_error(data) if separate else scores
    }
    if separate:
        results["outlier_score"] = scores
    results["p_value"] = conformal_p_values(scores, detector.calibration_scores_)
    flags = scores > detector.threshold_
    results["is_outlier"] = flags.astype(np.int8)
    if detector.arch_ == "tabular":
        contributions = detector.explain(data.iloc[np.flatnonzero(flags)])
        described = iter(top_columns(contributions.to_numpy(), list(contributions.columns)))
        results["top_columns"] = [next(described) if flag else "" for flag in flags]
    return pd.DataFrame(results)


def on_dask(model_path: Path, data_path: Path) -> pd.DataFrame:
    """``hourglass score --dask-scheduler``'s work: read, score, gather on the client."""
    data = hourglass.dask.read_data(data_path)
    results = hourglass.dask.score(model_path, data)
    if isinstance(results, dict):
        return pd.DataFrame(dask.compute(results)[0])
    frame: pd.DataFrame = results.compute().reset_index(drop=True)
    return frame


@contextlib.contextmanager
def local_cluster(n_workers: int, malloc_trim: bool) -> Iterator[Client]:
    """``--dask-scheduler local:N``'s cluster, or one with Dask's default worker environment."""
    if not malloc_trim:
        with hourglass.dask.connect(f"local:{n_workers}") as client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def best_time(run: Callable[[], pd.DataFrame], repeats: int) -> tuple[float, pd.DataFrame]:
    best, result = float("inf"), pd.DataFrame()
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", help="folder holding adbench-dev/ and fashion-mnist/")
    parser.add_argument("--table-rows", type=int, default=2**20)
    parser.add_argument("--image-rows", type=int, default=2**18)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--with-malloc-trim",
        action="store_true",
        help="also run on workers with Dask's default MALLOC_TRIM_THRESHOLD_=65536",
    )
    args = parser.parse_args()
    where = data_dir(args.data_dir)
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}, dask {dask.__version__}; load average "
        f"{os.getloadavg()[0]:.1f} at the start"
    )
    rows: list[tuple[str, int, str, float, float]] = []
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        workloads = {
            "table (cardio, tabular)": (
                *table_workload(where, folder, args.table_rows),
                args.table_rows,
            ),
            "images (Fashion-MNIST, dense)": (
                *image_workload(where, folder, args.image_rows),
                args.image_rows,
            ),
        }
        references: dict[str, pd.DataFrame] = {}
        all_threads = torch.get_num_threads()
        for name, (data_path, model_path, n_rows) in workloads.items():
            for threads in sorted({1, all_threads}):
                torch.set_num_threads(threads)
                seconds, references[name] = best_time(
                    lambda d=data_path, m=model_path: in_process(m, d), args.repeats
                )
                label = f"in process, {threads} thread{'s' if threads > 1 else ''}"
                rows.append((name, n_rows, label, seconds, n_rows / seconds))
            torch.set_num_threads(all_threads)
        environments = (False, True) if args.with_malloc_trim else (False,)
        for trim, n_workers in itertools.product(environments, args.workers):
            start = time.perf_counter()
            with local_cluster(n_workers, trim) as client:
                started = time.perf_counter() - start
                print(f"{n_workers} worker(s) started in {started:.1f} s")
                for name, (data_path, model_path, n_rows) in workloads.items():
                    client.run(hourglass.dask.cached_model, str(model_path))  # load the model
                    seconds, result = best_time(
                        lambda d=data_path, m=model_path: on_dask(m, d), args.repeats
                    )
                    pd.testing.assert_frame_equal(result, references[name], check_exact=True)
                    label = f"Dask, {n_workers} worker{'s' if n_workers > 1 else ''}"
                    label += ", MALLOC_TRIM_THRESHOLD_=65536" if trim else ""
                    rows.append((name, n_rows, label, seconds, n_rows / seconds))
    print(f"load average {os.getloadavg()[0]:.1f} at the end\n")
    print("| data | rows | scoring | seconds | rows/s | vs 1 worker |")
    print("|---|---|---|---|---|---|")
    for name, n_rows, label, seconds, rate in rows:
        one = next((r for n, _, lab, _, r in rows if n == name and lab == "Dask, 1 worker"), None)
        ratio = f"{rate / one:.2f}x" if one else ""
        print(f"| {name} | {n_rows:,} | {label} | {seconds:.2f} | {rate:,.0f} | {ratio} |")


if __name__ == "__main__":
    main()
