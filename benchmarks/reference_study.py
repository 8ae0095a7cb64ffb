"""Benchmark: the reference study's two protocols, several seeds, every score metric.

P1: train on MNIST (the fixed split of the test set when the training split is
absent: ``perm = default_rng(0).permutation(10000)``, train ``perm[:8000]``,
evaluate ``perm[8000:]``), outliers = the Fashion-MNIST test set.
P2: train on Fashion-MNIST (60,000), normal = its test set, outliers = the MNIST
test set.

The model is the reference one (hourglass's defaults: 784→64→784, BCE, Adam,
batch 64, 10 epochs), fitted as a plain :class:`hourglass.Autoencoder` on all
the training images. Printed per protocol and seed: AUROC and average
precision (outliers = positive) of the MAE, MSE and BCE scores and of the
complexity-corrected MAE score (:mod:`hourglass.complexity`, fitted on 5,000
training images; the default score of an image outlier detector) with its
``"gradient"`` features (the default) and with the ``"zlib"`` ones of models
fitted before them (``complexity_zlib``), fit seconds,
training images/s (training part of the epochs) and inference images/s
(reconstruction errors of the evaluation images). Then the median over seeds.

Run: ``python benchmarks/reference_study.py [--data-dir DIR] [--seeds 0 1 2] [--epochs 10]
[--archs dense conv]`` (``conv``: the convolutional autoencoder, hourglass's defaults).
(data found as in :mod:`hourglass.datasets`; ``make bench`` sets ``HOURGLASS_DATA``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from hourglass import Autoencoder
from hourglass.complexity import complexity_features, corrected_scores, fit_correction
from hourglass.reference_study import load_protocol, outlier_metrics
from hourglass.scoring import ERROR_METRICS


def run_one(
    protocol_name: str, arch: str, seed: int, epochs: int, data_dir: str | None
) -> dict[str, Any]:
    """Fit and score one protocol with one model family and one seed."""
    protocol = load_protocol(protocol_name, data_dir=data_dir)
    model = Autoencoder(arch=arch, epochs=epochs, random_state=seed, verbose=0)
    model.fit(protocol.train)
    n_train = protocol.train.shape[0]
    row: dict[str, Any] = {
        "protocol": protocol_name,
        "arch": arch,
        "seed": seed,
        "n_train": n_train,
        "fit_s": model.fit_time_,
        "train_img_s": n_train * model.n_epochs_ / sum(model.history_["epoch_time"]),
    }
    images = np.concatenate([protocol.normal, protocol.outliers])
    model.reconstruction_error(images[:2048])  # warm-up
    started = time.perf_counter()
    errors = {metric: model.reconstruction_error(images, metric=metric) for metric in ERROR_METRICS}
    row["infer_img_s"] = images.shape[0] * len(ERROR_METRICS) / (time.perf_counter() - started)
    fit_images = protocol.train[np.random.default_rng(seed).permutation(n_train)[:5000]]
    fit_errors = model.reconstruction_error(fit_images)
    for name, feature_set in (("complexity", "gradient"), ("complexity_zlib", "zlib")):
        coefficients = fit_correction(
            fit_errors, complexity_features(fit_images / 255, feature_set)
        )
        errors[name] = corrected_scores(
            errors["mae"], complexity_features(images / 255, feature_set), coefficients
        )
    n_normal = protocol.normal.shape[0]
    for metric, values in errors.items():
        scores = outlier_metrics(values[:n_normal], values[n_normal:])
        row[f"auroc_{metric}"] = scores["auroc"]
        row[f"ap_{metric}"] = scores["average_precision"]
    return row


COLUMNS = [
    ("auroc_mae", "AUROC mae", "{:.4f}"),
    ("auroc_mse", "AUROC mse", "{:.4f}"),
    ("auroc_bce", "AUROC bce", "{:.4f}"),
    ("auroc_complexity", "AUROC complexity", "{:.4f}"),
    ("auroc_complexity_zlib", "AUROC complexity (zlib)", "{:.4f}"),
    ("ap_mae", "AP mae", "{:.4f}"),
    ("ap_mse", "AP mse", "{:.4f}"),
    ("ap_bce", "AP bce", "{:.4f}"),
    ("ap_complexity", "AP complexity", "{:.4f}"),
    ("ap_complexity_zlib", "AP complexity (zlib)", "{:.4f}"),
    ("fit_s", "fit s", "{:.1f}"),
    ("train_img_s", "train img/s", "{:,.0f}"),
    ("infer_img_s", "infer img/s", "{:,.0f}"),
]


def print_table(rows: list[dict[str, Any]]) -> None:
    """Print one line per run, then the median per protocol, as a Markdown table."""
    header = ["protocol", "arch", "seed", *(title for _, title, _ in COLUMNS)]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        cells = [row["protocol"], row["arch"], str(row["seed"])]
        cells += [fmt.format(row[key]) for key, _, fmt in COLUMNS]
        print("| " + " | ".join(cells) + " |")
    for protocol, arch in sorted({(row["protocol"], row["arch"]) for row in rows}):
        group = [row for row in rows if row["protocol"] == protocol and row["arch"] == arch]
        cells = [f"**{protocol}**", f"**{arch}**", f"median of {len(group)}"]
        cells += [
            fmt.format(statistics.median(row[key] for row in group)) for key, _, fmt in COLUMNS
        ]
        print("| " + " | ".join(cells) + " |")


def main() -> None:
    """Parse arguments, run every protocol and seed, print and optionally save."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--protocols", nargs="+", default=["P1", "P2"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument(
        "--archs", nargs="+", default=["dense"], choices=["dense", "conv", "vae", "conv_vae"]
    )
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--out", default=None, help="write the rows as JSON to this file")
    args = parser.parse_args()
    rows = []
    for protocol in args.protocols:
        for arch in args.archs:
            for seed in args.seeds:
                rows.append(run_one(protocol, arch, seed, args.epochs, args.data_dir))
                print(f"done: {protocol} {arch} seed {seed}", flush=True)
    print_table(rows)
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
