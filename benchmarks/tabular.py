"""Benchmark: tabular outlier detection, hourglass's dense and tabular models vs IsolationForest.

1. **Credit applications** (``tabular/credit_data.csv``: numeric and categorical
   columns, missing values). Train on 80% of the ``Status == good`` rows (fixed
   permutation, ``default_rng(seed)``), score the held-out good rows against the
   bad ones (bad = positive); AUROC. IsolationForest gets one-hot categories
   and median-imputed numbers.
2. **ADBench dev sets** (``adbench-dev/*.npz``, numeric ``X`` and ``y``), ADBench's
   unsupervised protocol: stratified 70/30 split per seed, detectors fitted on
   the training part without labels, inputs min-max scaled on the training part,
   AUROC on the test part, seeds 0–2, mean over seeds per data set (the protocol
   lives in ``adbench_protocol.py``; ``adbench.py`` runs it against PyOD's detectors).

Detectors: ``AutoencoderOutlierDetector(arch="dense")``, the same with
``arch="tabular"`` (what the default, ``arch="auto"``, trains on tables), and
scikit-learn's ``IsolationForest`` (defaults), all in the same run.

Run: ``python benchmarks/tabular.py [--data-dir DIR] [--seeds 0 1 2] [--epochs 10]``
(``--data-dir`` defaults to ``$HOURGLASS_DATA``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score

from adbench_protocol import Scorer, data_sets, load_npz, split_and_scale
from hourglass import AutoencoderOutlierDetector


def hourglass_scorer(arch: str, epochs: int) -> Scorer:
    """Fit a hourglass detector on ``train`` and return anomaly scores of ``test``."""

    def score(train: Any, test: Any, seed: int) -> np.ndarray:
        detector = AutoencoderOutlierDetector(
            arch=arch, epochs=epochs, random_state=seed, verbose=0
        ).fit(train)
        return detector.outlier_score(test)  # what the detector thresholds

    return score


def iforest(train: Any, test: Any, seed: int) -> np.ndarray:
    """IsolationForest with defaults; negated score_samples (higher = more abnormal)."""
    return -IsolationForest(random_state=seed).fit(train).score_samples(test)


def one_hot(train: pd.DataFrame, test: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """One-hot categories and median-imputed numbers, fitted on ``train``."""
    medians = train.median(numeric_only=True)
    encoded = pd.get_dummies(train.fillna(medians), dtype=float)
    other = pd.get_dummies(test.fillna(medians), dtype=float)
    other = other.reindex(columns=encoded.columns, fill_value=0.0)
    return encoded.to_numpy(), other.to_numpy()


def credit(data_dir: Path, seeds: list[int], epochs: int) -> None:
    """Part 1: good vs bad credit applications."""
    frame = pd.read_csv(data_dir / "tabular" / "credit_data.csv")
    good = frame[frame["Status"] == "good"].drop(columns="Status")
    bad = frame[frame["Status"] == "bad"].drop(columns="Status")
    results: dict[str, list[float]] = {"hourglass tabular": [], "IsolationForest": []}
    for seed in seeds:
        order = np.random.default_rng(seed).permutation(len(good))
        cut = int(0.8 * len(good))
        train, held = good.iloc[order[:cut]], good.iloc[order[cut:]]
        test = pd.concat([held, bad])
        y = np.r_[np.zeros(len(held)), np.ones(len(bad))]
        scores = hourglass_scorer("tabular", epochs)(train, test, seed)
        results["hourglass tabular"].append(roc_auc_score(y, scores))
        encoded_train, encoded_test = one_hot(train, test)
        results["IsolationForest"].append(
            roc_auc_score(y, iforest(encoded_train, encoded_test, seed))
        )
    print(f"Credit applications ({len(good):,} good, {len(bad):,} bad), AUROC, mean over seeds:")
    for name, values in results.items():
        print(
            f"  {name:18s} {np.mean(values):.4f}  (seeds: {', '.join(f'{v:.4f}' for v in values)})"
        )


def adbench(data_dir: Path, seeds: list[int], epochs: int) -> None:
    """Part 2: the ADBench dev sets."""
    detectors: dict[str, Scorer] = {
        "hourglass dense": hourglass_scorer("dense", epochs),
        "hourglass tabular": hourglass_scorer("tabular", epochs),
        "IsolationForest": iforest,
    }
    seconds = dict.fromkeys(detectors, 0.0)
    rows = []
    for path in data_sets(data_dir / "adbench-dev"):
        X, y = load_npz(path)
        row: dict[str, Any] = {"data": path.stem, "n": len(y), "d": X.shape[1]}
        for name, scorer in detectors.items():
            aurocs = []
            for seed in seeds:
                split = split_and_scale(X, y, seed)
                started = time.perf_counter()
                aurocs.append(roc_auc_score(split.y_test, scorer(split.train, split.test, seed)))
                seconds[name] += time.perf_counter() - started
            row[name] = statistics.mean(aurocs)
        rows.append(row)
        print(f"  done {path.stem}", flush=True)
    table = pd.DataFrame(rows)
    names = list(detectors)
    print("\nADBench dev sets, AUROC (mean over seeds " + ", ".join(map(str, seeds)) + "):")
    print("| data | n | d | " + " | ".join(names) + " |")
    print("|---|---|---|" + "---|" * len(names))
    for _, row in table.iterrows():
        cells = [row["data"], f"{row['n']:,}", str(row["d"])] + [f"{row[n]:.4f}" for n in names]
        print("| " + " | ".join(cells) + " |")
    print("| **mean** | | | " + " | ".join(f"**{table[n].mean():.4f}**" for n in names) + " |")
    print("| seconds | | | " + " | ".join(f"{seconds[n]:.0f}" for n in names) + " |")


def main() -> None:
    """Run both parts."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("HOURGLASS_DATA"))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    if not args.data_dir:
        parser.error("pass --data-dir or set HOURGLASS_DATA")
    data_dir = Path(args.data_dir)
    # Small data sets leave few calibration samples; the threshold is not used here.
    warnings.filterwarnings("ignore", message=".*calibration samples cannot guarantee")
    credit(data_dir, args.seeds, args.epochs)
    print()
    adbench(data_dir, args.seeds, args.epochs)


if __name__ == "__main__":
    main()
