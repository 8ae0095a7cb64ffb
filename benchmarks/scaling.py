"""Benchmark: how training and scoring cost grow with rows and with features.

Synthetic tables are built from an ADBench dev set (``6_cardio.npz``, 21
numeric features, min-max scaled): rows are drawn with replacement and jittered
with Gaussian noise (σ = 0.01) to reach 10k, 100k and 1M rows at 21 features;
columns are tiled (each copy with its own noise) to reach 10, 100 and 1,000
features at 100k rows. Every configuration runs in a fresh process, which
reports the whole ``fit`` time with ``epochs=1`` (set-up, the thread-count
check and calibration included), the time of the training epoch itself, the
time to score every row (``score_samples``) and the process's peak resident
memory. The fitted exponent ``b`` of ``time ∝ size^b`` (least squares in
log-log; epoch time for training) is printed for each series: 1 is linear.
Time the runs on a quiet machine: other processes inflate single runs.

Detectors: ``AutoencoderOutlierDetector(arch="dense", epochs=1)`` and the same with
``arch="tabular"`` (what the default, ``arch="auto"``, trains on tables).

Run: ``python benchmarks/scaling.py [--data-dir DIR] [--archs dense tabular]``
(``--data-dir`` defaults to ``$HOURGLASS_DATA``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROWS = (10_000, 100_000, 1_000_000)
FEATURES = (10, 100, 1000)
FEATURE_SERIES_ROWS = 100_000


def synthetic_table(source: Path, n_rows: int, n_features: int, seed: int = 0) -> np.ndarray:
    """``n_rows`` × ``n_features`` float32 rows resampled and jittered from ``source``."""
    X = np.load(source)["X"].astype(np.float64)
    low, high = X.min(axis=0), X.max(axis=0)
    X = (X - low) / np.where(high > low, high - low, 1.0)
    rng = np.random.default_rng(seed)
    columns = np.resize(np.arange(X.shape[1]), n_features)  # tile the columns
    rows = X[rng.integers(0, len(X), n_rows)][:, columns]
    rows += rng.normal(0.0, 0.01, rows.shape)
    return rows.astype(np.float32)


def measure_one(source: Path, arch: str, n_rows: int, n_features: int) -> dict[str, Any]:
    """Train one epoch and score every row; return times and peak memory (this process)."""
    from hourglass import AutoencoderOutlierDetector

    X = synthetic_table(source, n_rows, n_features)
    detector = AutoencoderOutlierDetector(arch=arch, epochs=1, verbose=0, random_state=0)
    started = time.perf_counter()
    detector.fit(X)
    fit_s = time.perf_counter() - started
    started = time.perf_counter()
    scores = detector.score_samples(X)
    score_s = time.perf_counter() - started
    assert np.isfinite(scores).all()
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "arch": arch,
        "rows": n_rows,
        "features": n_features,
        "fit_s": fit_s,
        "epoch_s": detector.history_["epoch_time"][0],
        "score_s": score_s,
        "peak_mib": peak_kib / 1024,
        "data_mib": X.nbytes / 2**20,
    }


def run_in_subprocess(source: Path, arch: str, n_rows: int, n_features: int) -> dict[str, Any]:
    """:func:`measure_one` in a fresh interpreter, so peak memory is this run's alone."""
    command = [sys.executable, __file__, "--one", str(source), arch, str(n_rows), str(n_features)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


def exponent(sizes: list[int], seconds: list[float]) -> float:
    """Slope of log(seconds) against log(size)."""
    slope, _ = np.polyfit(np.log(sizes), np.log(seconds), 1)
    return float(slope)


def main() -> None:
    """Run both series for each architecture; print tables and exponents."""
    if len(sys.argv) > 1 and sys.argv[1] == "--one":
        _, _, source, arch, n_rows, n_features = sys.argv
        print(json.dumps(measure_one(Path(source), arch, int(n_rows), int(n_features))))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("HOURGLASS_DATA"))
    parser.add_argument("--archs", nargs="+", default=["dense", "tabular"])
    args = parser.parse_args()
    if not args.data_dir:
        parser.error("pass --data-dir or set HOURGLASS_DATA")
    source = Path(args.data_dir) / "adbench-dev" / "6_cardio.npz"

    print("| arch | rows | features | data MiB | fit s | epoch s | score s | peak MiB |")
    print("|---|---|---|---|---|---|---|---|")
    exponents = []
    for arch in args.archs:
        series = {
            "rows": [(n, 21) for n in ROWS],
            "features": [(FEATURE_SERIES_ROWS, d) for d in FEATURES],
        }
        for name, configurations in series.items():
            results = [run_in_subprocess(source, arch, n, d) for n, d in configurations]
            for r in results:
                print(
                    f"| {arch} | {r['rows']:,} | {r['features']:,} | {r['data_mib']:.0f} | "
                    f"{r['fit_s']:.2f} | {r['epoch_s']:.2f} | {r['score_s']:.2f} | "
                    f"{r['peak_mib']:.0f} |",
                    flush=True,
                )
            sizes = [r[name] for r in results]
            exponents.append(
                (
                    arch,
                    name,
                    exponent(sizes, [r["epoch_s"] for r in results]),
                    exponent(sizes, [r["score_s"] for r in results]),
                    exponent(sizes, [r["peak_mib"] for r in results]),
                )
            )
    print()
    print("| arch | grows with | epoch-time exponent | score exponent | peak-memory exponent |")
    print("|---|---|---|---|---|")
    for arch, name, fit_b, score_b, memory_b in exponents:
        print(f"| {arch} | {name} | {fit_b:.2f} | {score_b:.2f} | {memory_b:.2f} |")


if __name__ == "__main__":
    main()
