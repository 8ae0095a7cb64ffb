"""The reference study: an autoencoder trained on digits flags clothes.

A dense 784→64→784 autoencoder is trained on MNIST digits; Fashion-MNIST
clothes are reconstructed badly, so a reconstruction-error threshold separates
them, and the worst-reconstructed digits are themselves unusual.

Two protocols are defined (see :func:`load_protocol`):

``"P1"``
    Normal = MNIST. Training uses the MNIST training split when it is present
    on this machine; otherwise (saying so) the fixed split of the MNIST test
    set ``perm = numpy.random.default_rng(0).permutation(10000)``, training on
    ``perm[:8000]`` and evaluating on ``perm[8000:]``. Outliers = the
    Fashion-MNIST test set.
``"P2"``
    Normal = Fashion-MNIST (train 60k, evaluate on its test set). Outliers =
    the MNIST test set.

The reference write-up computed the Fashion-MNIST "error" as
``np.abs(f_test_images, f_predict_images)``, which is the mean pixel
intensity, not a reconstruction error. This module computes the real error.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.metrics import average_precision_score, roc_auc_score

from hourglass._atomic import atomic_file
from hourglass._version import __version__
from hourglass.data.registry import load_fashion_mnist, load_mnist
from hourglass.estimators import AutoencoderOutlierDetector
from hourglass.exceptions import DatasetError, InvalidParameterError
from hourglass.report.figures import error_histogram, image_grid, ranked_images
from hourglass.report.html import build_report
from hourglass.scoring import ERROR_METRICS

__all__ = ["Protocol", "load_protocol", "outlier_metrics", "run_demo"]

#: The fixed threshold of the reference write-up (on the MAE score).
REFERENCE_THRESHOLD = 0.02
#: Seed and size of the fixed MNIST split used when the training split is absent.
SPLIT_SEED = 0
SPLIT_TRAIN_SIZE = 8000


@dataclass(frozen=True)
class Protocol:
    """Data of one protocol: train on ``train``, tell ``normal`` from ``outliers``."""

    name: str
    description: str
    train: NDArray[np.uint8]  # (n, 28, 28)
    normal: NDArray[np.uint8]  # held-out normal images
    normal_labels: NDArray[np.uint8]
    outliers: NDArray[np.uint8]
    outlier_labels: NDArray[np.uint8]
    normal_name: str
    outlier_name: str


def _mnist_split(
    data_dir: str | os.PathLike[str] | None,
) -> tuple[NDArray[np.uint8], NDArray[np.uint8], NDArray[np.uint8], str]:
    """MNIST training images, evaluation images and labels, and how they were chosen."""
    test_images, test_labels = load_mnist("test", data_dir=data_dir)
    try:
        train_images, _ = load_mnist("train", data_dir=data_dir, download=False)
    except DatasetError:
        perm = np.random.default_rng(SPLIT_SEED).permutation(test_images.shape[0])
        train, evaluate = perm[:SPLIT_TRAIN_SIZE], perm[SPLIT_TRAIN_SIZE:]
        how = (
            "MNIST training split not found: using the fixed split of the MNIST test set "
            f"(perm = default_rng({SPLIT_SEED}).permutation(10000); train perm[:8000], "
            "evaluate perm[8000:])"
        )
        return test_images[train], test_images[evaluate], test_labels[evaluate], how
    return train_images, test_images, test_labels, "MNIST training split (60,000 images)"


def load_protocol(name: str, *, data_dir: str | os.PathLike[str] | None = None) -> Protocol:
    """Load the data of protocol ``"P1"`` (MNIST → Fashion) or ``"P2"`` (Fashion → MNIST).

    Parameters
    ----------
    name : {"P1", "P2"}
        The protocol.
    data_dir : str or path-like, optional
        Where the IDX files are (with ``mnist/`` and ``fashion-mnist/``
        sub-folders, or directly); see :mod:`hourglass.datasets`.

    Returns
    -------
    Protocol
        Training images, held-out normal images and outlier images, as uint8.
    """
    if name == "P1":
        train, normal, normal_labels, how = _mnist_split(data_dir)
        outliers, outlier_labels = load_fashion_mnist("test", data_dir=data_dir)
        return Protocol(
            "P1",
            how,
            train,
            normal,
            normal_labels,
            outliers,
            outlier_labels,
            "MNIST",
            "Fashion-MNIST",
        )
    if name == "P2":
        train, _ = load_fashion_mnist("train", data_dir=data_dir)
        normal, normal_labels = load_fashion_mnist("test", data_dir=data_dir)
        outliers, outlier_labels = load_mnist("test", data_dir=data_dir)
        return Protocol(
            "P2",
            "Fashion-MNIST training split (60,000 images)",
            train,
            normal,
            normal_labels,
            outliers,
            outlier_labels,
            "Fashion-MNIST",
            "MNIST",
        )
    raise InvalidParameterError(f"Unknown protocol {name!r}; expected 'P1' or 'P2'.")


def outlier_metrics(normal_scores: NDArray[Any], outlier_scores: NDArray[Any]) -> dict[str, float]:
    """AUROC and average precision of a score (higher = more abnormal), outliers positive."""
    y_true = np.r_[np.zeros(normal_scores.size), np.ones(outlier_scores.size)]
    y_score = np.r_[normal_scores, outlier_scores]
    return {
        "auroc": float(roc_auc_score(y_true, y_score)),
        "average_precision": float(average_precision_score(y_true, y_score)),
    }


def _versions() -> dict[str, str]:
    import matplotlib
    import sklearn
    import torch

    return {
        "hourglass": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "matplotlib": matplotlib.__version__,
        "python": platform.python_version(),
    }


def run_demo(
    *,
    data_dir: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] = "hourglass-demo",
    train_size: int | None = None,
    epochs: int = 10,
    seed: int = 0,
    fpr: float = 0.01,
    verbose: int = 1,
) -> dict[str, Any]:
    """Run the reference study (protocol P1) and write its results to ``out``.

    Trains the reference model (as an :class:`AutoencoderOutlierDetector`
    with the MAE score and a conformal threshold at ``fpr``) on MNIST, scores
    the held-out MNIST digits and the Fashion-MNIST test set, and writes:

    - ``metrics.json``: AUROC and average precision (Fashion = positive) for
      each score metric, the calibrated threshold and the fraction of each set
      above it, the fractions above the reference's fixed 0.02, training time,
      epochs, data sizes and library versions;
    - ``histogram.png``: the two error distributions with the threshold;
    - ``reconstructions.png``: originals above reconstructions, for both sets;
    - ``worst.png``: the MNIST digits with the largest error, with labels;
    - ``report.html``: a self-contained report (model card, curves, outliers,
      map, clusters; see :func:`hourglass.report.html.build_report`);
    - ``model/``: the fitted detector (load it with :func:`hourglass.load`).

    Parameters
    ----------
    data_dir : str or path-like, optional
        Where the data sets are; see :mod:`hourglass.datasets`.
    out : str or path-like, default="hourglass-demo"
        Output directory (created if needed).
    train_size : int, optional
        Use only the first ``train_size`` training images (after shuffling
        with ``seed``).
    epochs : int, default=10
        Training epochs.
    seed : int, default=0
        Random seed for the model and the subsampling.
    fpr : float, default=0.01
        Target false-positive rate of the calibrated threshold.
    verbose : int, default=1
        0 is silent; 1 prints progress.

    Returns
    -------
    dict
        The content of ``metrics.json``.
    """
    out_dir = Path(out)
    # Check the arguments before the (slow) data loading.
    if train_size is not None and train_size < 2:
        raise InvalidParameterError(f"train_size must be at least 2; got {train_size}.")
    protocol = load_protocol("P1", data_dir=data_dir)
    train = _training_images(protocol, train_size, seed)
    if verbose:
        print(f"Training data: {protocol.description}; using {train.shape[0]:,} images.")
    detector = _reference_detector(epochs=epochs, seed=seed, fpr=fpr, verbose=verbose)
    detector.fit(train)

    errors, scoring_time = _errors_by_metric(detector, protocol)
    metrics = _study_metrics(protocol, train, detector, errors, scoring_time, seed=seed, fpr=fpr)

    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_file(out_dir / "metrics.json") as tmp:
        tmp.write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    _write_figures(out_dir, protocol, detector, errors["mae"], seed=seed, fpr=fpr)
    build_report(
        detector,
        np.concatenate([protocol.normal, protocol.outliers]),
        out_dir / "report.html",
        labels=np.r_[np.zeros(len(protocol.normal)), np.ones(len(protocol.outliers))],
        title="hourglass demo: trained on MNIST digits, scoring digits and Fashion-MNIST",
    )
    detector.save(out_dir / "model")
    if verbose:
        _print_summary(metrics, out_dir)
    return metrics


def _training_images(protocol: Protocol, train_size: int | None, seed: int) -> NDArray[np.uint8]:
    """The protocol's training images, or ``train_size`` of them drawn with ``seed`` (in order)."""
    train = protocol.train
    if train_size is not None:
        order = np.random.default_rng(seed).permutation(train.shape[0])[:train_size]
        train = train[np.sort(order)]
    return train


def _reference_detector(
    *, epochs: int, seed: int, fpr: float, verbose: int
) -> AutoencoderOutlierDetector:
    """The reference model, as an unfitted detector with the MAE score and a conformal threshold."""
    return AutoencoderOutlierDetector(
        arch="dense",  # the reference model, seed for seed
        epochs=epochs,
        random_state=seed,
        fpr=fpr,
        metric="mae",
        score_type="error",  # the reference story: the error itself, its histogram, a threshold
        verbose=verbose if sys.stderr.isatty() else 0,  # progress bars only on a terminal
    )


#: Reconstruction errors of the held-out normal images and of the outliers.
_Errors = tuple[NDArray[np.float64], NDArray[np.float64]]


def _errors_by_metric(
    detector: AutoencoderOutlierDetector, protocol: Protocol
) -> tuple[dict[str, _Errors], float]:
    """Every error metric's errors of the normal images and the outliers, and the seconds taken."""
    started = time.perf_counter()
    errors = {
        metric: (
            detector.reconstruction_error(protocol.normal, metric=metric),
            detector.reconstruction_error(protocol.outliers, metric=metric),
        )
        for metric in ERROR_METRICS
    }
    return errors, time.perf_counter() - started


def _study_metrics(
    protocol: Protocol,
    train: NDArray[np.uint8],
    detector: AutoencoderOutlierDetector,
    errors: dict[str, _Errors],
    scoring_time: float,
    *,
    seed: int,
    fpr: float,
) -> dict[str, Any]:
    """The content of ``metrics.json``: data sizes, training, scores and thresholds, versions."""
    mae_normal, mae_outliers = errors["mae"]
    threshold = detector.threshold_
    n_fit = train.shape[0] - detector.n_calibration_  # images the network was trained on
    return {
        "protocol": "P1: train on MNIST, detect Fashion-MNIST",
        "training_data": protocol.description,
        "n_train": int(n_fit),
        "n_calibration": int(detector.n_calibration_),
        "n_eval_mnist": int(protocol.normal.shape[0]),
        "n_eval_fashion": int(protocol.outliers.shape[0]),
        "epochs": int(detector.n_epochs_),
        "seed": seed,
        "final_training_loss": detector.history_["loss"][-1],
        "training_seconds": round(detector.fit_time_, 3),
        "training_images_per_second": round(
            n_fit * detector.n_epochs_ / sum(detector.history_["epoch_time"]),
            1,
        ),
        "scoring_seconds_all_metrics": round(scoring_time, 3),
        "scores": {metric: outlier_metrics(*errors[metric]) for metric in ERROR_METRICS},
        "threshold": {
            "metric": "mae",
            "method": f"conformal, fpr={fpr}",
            "value": threshold,
            "fraction_mnist_above": float(np.mean(mae_normal > threshold)),
            "fraction_fashion_above": float(np.mean(mae_outliers > threshold)),
        },
        "reference_threshold": {
            "metric": "mae",
            "value": REFERENCE_THRESHOLD,
            "fraction_mnist_above": float(np.mean(mae_normal > REFERENCE_THRESHOLD)),
            "fraction_fashion_above": float(np.mean(mae_outliers > REFERENCE_THRESHOLD)),
        },
        "versions": _versions(),
    }


def _write_figures(
    out_dir: Path,
    protocol: Protocol,
    detector: AutoencoderOutlierDetector,
    mae: _Errors,
    *,
    seed: int,
    fpr: float,
) -> None:
    """``histogram.png``, ``reconstructions.png`` and ``worst.png`` in ``out_dir``."""
    normal, outliers = protocol.normal, protocol.outliers
    mae_normal, mae_outliers = mae
    error_histogram(
        {"MNIST (normal, held out)": mae_normal, "Fashion-MNIST (outliers)": mae_outliers},
        out_dir / "histogram.png",
        threshold=detector.threshold_,
        threshold_label=f"threshold at {fpr:.0%} FPR",
        xlabel="reconstruction error (mean absolute error per pixel)",
        title="Autoencoder trained on MNIST: reconstruction error",
    )
    shown = 10
    picks_normal = np.random.default_rng(seed).choice(normal.shape[0], shown, replace=False)
    picks_outliers = np.random.default_rng(seed).choice(outliers.shape[0], shown, replace=False)
    image_grid(
        [
            ("MNIST", normal[picks_normal]),
            ("reconstructed", detector.reconstruct(normal[picks_normal])),
            ("Fashion-MNIST", outliers[picks_outliers]),
            ("reconstructed", detector.reconstruct(outliers[picks_outliers])),
        ],
        out_dir / "reconstructions.png",
        title="Originals above their reconstructions",
    )
    ranked_images(
        normal,
        mae_normal,
        out_dir / "worst.png",
        labels=protocol.normal_labels,
        k=20,
        title="MNIST digits the model reconstructs worst",
    )


def _print_summary(metrics: dict[str, Any], out_dir: Path) -> None:
    """The demo's closing lines: the scores, what the threshold flags, where the results are."""
    score = metrics["scores"]["mae"]
    threshold = metrics["threshold"]
    print(
        f"AUROC (MAE score) {score['auroc']:.4f}, average precision "
        f"{score['average_precision']:.4f}; threshold {threshold['value']:.4f} flags "
        f"{threshold['fraction_mnist_above']:.1%} of MNIST and "
        f"{threshold['fraction_fashion_above']:.1%} of Fashion-MNIST."
    )
    print(f"Results written to {out_dir}/")
