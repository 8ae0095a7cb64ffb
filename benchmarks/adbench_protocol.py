"""ADBench's unsupervised protocol, shared by the tabular benchmarks.

ADBench (Han et al., NeurIPS 2022) evaluates unsupervised detectors on each data set
(``.npz`` files holding a numeric ``X`` and binary labels ``y``, 1 = outlier) as
follows, for every seed: a stratified 70/30 split, the detector fitted on the
training part *without labels* (so the training part keeps the data set's
contamination), inputs min-max scaled with the training part's minimum and maximum,
and AUROC and AUPRC (average precision) of the test part's outlier scores, outliers
as positives.

``benchmarks/tabular.py`` and ``benchmarks/adbench.py`` import this module (both
run from the repository root as ``python benchmarks/NAME.py``, which puts this
folder on ``sys.path``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from sklearn.model_selection import train_test_split

TEST_SIZE = 0.3

Scorer = Callable[[Any, Any, int], np.ndarray]  # (train, test, seed) -> outlier scores


class Split(NamedTuple):
    """One seed's split: min-max scaled features and the labels (1 = outlier)."""

    train: np.ndarray
    test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray


def data_sets(directory: Path) -> list[Path]:
    """The ``.npz`` files of ``directory``, sorted by name."""
    paths = sorted(directory.glob("*.npz"))
    if not paths:
        raise SystemExit(f"No .npz data sets in {directory}; pass a folder of .npz files.")
    return paths


def load_npz(
    path: Path, dtype: type[np.floating[Any]] = np.float32
) -> tuple[np.ndarray, np.ndarray]:
    """``X`` as ``dtype`` and ``y`` as int (1 = outlier) from one ``.npz`` file."""
    with np.load(path) as archive:
        if "X" not in archive or "y" not in archive:
            raise SystemExit(f"{path} must hold arrays 'X' and 'y'; it has {archive.files}.")
        return archive["X"].astype(dtype), archive["y"].astype(int)


def split_and_scale(X: np.ndarray, y: np.ndarray, seed: int) -> Split:
    """Stratified 70/30 split with ``seed``; min-max scaling fitted on the training part.

    Constant training columns are left unscaled (span 1) rather than divided by zero;
    test values may fall outside [0, 1].
    """
    train, test, y_train, y_test = train_test_split(
        X, y, test_size=TEST_SIZE, stratify=y, random_state=seed
    )
    low, high = train.min(axis=0), train.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    return Split((train - low) / span, (test - low) / span, y_train, y_test)
