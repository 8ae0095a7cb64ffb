"""Benchmark: how well clustering finds the classes, against k-means and published methods.

Protocol:

- **MNIST split**: the test set shuffled with ``default_rng(0).permutation(10000)``;
  fit on the first 8,000 images, evaluate on the last 2,000;
- **Fashion-MNIST**: fit on the 60,000 training images, evaluate on the 10,000
  test images;
- **tables**: scikit-learn's ``load_digits`` (1,797 x 64) and ``load_wine``
  (178 x 13), fitted and evaluated on all rows.

The evaluation images are labelled with ``predict`` (the clusterer) or the
fitted k-means' ``predict``. k is the number of classes. Printed per method:
clustering accuracy (best one-to-one matching of clusters to classes), NMI and
ARI, medians over the seeds with each seed's accuracy (and, for hourglass, whether
the clusters partition the embedding or the features), and the median seconds
of ``fit`` (for images, the autoencoder's training included). Published
figures are printed beside the measured ones, marked as such; they were not
run here.

Methods:

- ``default``: ``AutoencoderClusterer(n_clusters=k, random_state=seed)``;
- ``auto``: the same with ``n_clusters="auto"`` (the k it picks is printed);
- ``kmeans-raw`` / ``kmeans-std``: k-means (``n_init=10``) on the raw pixels or
  columns, and on the standardised columns;
- ``old-default``: what ``AutoencoderClusterer`` did before the manifold step:
  k-means on the codes of the default dense autoencoder;
- ``dec-ae``: k-means on the codes of DEC's 500-500-2000-10 dense autoencoder
  (20 epochs, batch 256; the published run trained far longer).

Run: ``python benchmarks/clustering.py [--data mnist fashion tables]
[--methods default auto kmeans-raw ...] [--seeds 0 1 2] [--data-dir DIR]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits, load_wine
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.preprocessing import StandardScaler

from hourglass import Autoencoder, AutoencoderClusterer
from hourglass.clustering import clustering_accuracy
from hourglass.datasets import load_fashion_mnist, load_mnist

#: (data, method, accuracy) reported by the papers; not run here.
PUBLISHED = [
    ("MNIST", "DEC (Xie et al. 2016, paper)", "0.84"),
    ("MNIST", "DEC's 500-500-2000-10 autoencoder + k-means (public Keras re-run, 70k)", "0.88"),
    ("MNIST", "DEC (public Keras re-run, 70k)", "0.91"),
    ("MNIST", "N2D: autoencoder, UMAP, Gaussian mixture (McConville et al., test set)", "0.95"),
    ("Fashion-MNIST", "N2D (McConville et al.)", "0.67"),
]

#: A data set: training samples, evaluation samples, evaluation labels.
DataSet = tuple[Any, Any, NDArray[np.int64]]
#: A method: (training, evaluation, k, seed) -> evaluation clusters, extra note.
Method = Callable[[Any, Any, int, int], tuple[NDArray[np.int64], str]]


def _flat(samples: NDArray[Any]) -> NDArray[np.float64]:
    """Rows of numbers; uint8 pixels scaled to [0, 1]."""
    values = np.asarray(samples)
    scale = 255.0 if values.dtype == np.uint8 else 1.0
    return values.reshape(len(values), -1).astype(np.float64) / scale


def default(train: Any, test: Any, k: int, seed: int) -> tuple[NDArray[np.int64], str]:
    """``AutoencoderClusterer(n_clusters=k)``."""
    clusterer = AutoencoderClusterer(n_clusters=k, random_state=seed).fit(train)
    return clusterer.predict(test), f"on the {clusterer.partitioned_on_}"


def auto(train: Any, test: Any, k: int, seed: int) -> tuple[NDArray[np.int64], str]:
    """``AutoencoderClusterer(n_clusters="auto")``."""
    clusterer = AutoencoderClusterer(n_clusters="auto", random_state=seed).fit(train)
    return clusterer.predict(test), f"k={clusterer.n_clusters_}, on the {clusterer.partitioned_on_}"


def kmeans_raw(train: Any, test: Any, k: int, seed: int) -> tuple[NDArray[np.int64], str]:
    """k-means on the raw pixels or columns."""
    model = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(_flat(train))
    return model.predict(_flat(test)), ""


def kmeans_std(train: Any, test: Any, k: int, seed: int) -> tuple[NDArray[np.int64], str]:
    """k-means on standardised columns."""
    scaler = StandardScaler().fit(_flat(train))
    model = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(scaler.transform(_flat(train)))
    return model.predict(scaler.transform(_flat(test))), ""


def _kmeans_on_codes(model: Autoencoder) -> Method:
    def run(train: Any, test: Any, k: int, seed: int) -> tuple[NDArray[np.int64], str]:
        clusterer = AutoencoderClusterer(
            n_clusters=k, method="kmeans", manifold=None, autoencoder=model, random_state=seed
        ).fit(train)
        return clusterer.predict(test), ""

    return run


METHODS: dict[str, tuple[str, Method]] = {
    "default": ("hourglass AutoencoderClusterer(n_clusters=k)", default),
    "auto": ('hourglass AutoencoderClusterer(n_clusters="auto")', auto),
    "kmeans-raw": ("k-means, raw pixels / columns", kmeans_raw),
    "kmeans-std": ("k-means, standardised columns", kmeans_std),
    "old-default": (
        "k-means on default dense codes (hourglass before the manifold step)",
        _kmeans_on_codes(Autoencoder(arch="dense", verbose=0)),
    ),
    "dec-ae": (
        "k-means on DEC's 500-500-2000-10 autoencoder, 20 epochs",
        _kmeans_on_codes(
            Autoencoder(
                arch="dense",
                hidden_dims=(500, 500, 2000),
                latent_dim=10,
                epochs=20,
                batch_size=256,
                verbose=0,
            )
        ),
    ),
}


def data_sets(names: list[str], data_dir: str | None) -> dict[str, DataSet]:
    """The benchmark's data sets, by name."""
    out: dict[str, DataSet] = {}
    if "mnist" in names:
        images, labels = load_mnist("test", data_dir=data_dir)
        perm = np.random.default_rng(0).permutation(len(images))
        out["MNIST"] = (images[perm[:8000]], images[perm[8000:]], labels[perm[8000:]])
    if "fashion" in names:
        train, _ = load_fashion_mnist("train", data_dir=data_dir)
        test, test_labels = load_fashion_mnist("test", data_dir=data_dir)
        out["Fashion-MNIST"] = (train, test, test_labels)
    if "tables" in names:
        for name, loader in (("digits (table)", load_digits), ("wine (table)", load_wine)):
            X, y = loader(return_X_y=True)
            out[name] = (X, X, y)
    return out


def main() -> None:
    """Run every method on every data set and seed; print one table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", nargs="+", default=["mnist", "tables", "fashion"])
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(METHODS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()

    print("| data | method | accuracy | NMI | ARI | fit + predict s | per seed |")
    print("|---|---|---|---|---|---|---|")
    for data, method, accuracy in PUBLISHED:
        if (data == "MNIST" and "mnist" in args.data) or (
            data == "Fashion-MNIST" and "fashion" in args.data
        ):
            print(f"| {data} | {method} (published) | {accuracy} | | | | |", flush=True)
    for data, (train, test, labels) in data_sets(args.data, args.data_dir).items():
        labels = np.asarray(labels, dtype=np.int64)
        k = len(np.unique(labels))
        for key in args.methods:
            if key in ("old-default", "dec-ae") and data.endswith("(table)"):
                continue  # image baselines
            description, method = METHODS[key]
            scores: list[tuple[float, float, float]] = []
            seconds: list[float] = []
            notes: list[str] = []
            for seed in args.seeds:
                started = time.perf_counter()
                clusters, note = method(train, test, k, seed)
                seconds.append(time.perf_counter() - started)
                scores.append(
                    (
                        clustering_accuracy(labels, clusters),
                        normalized_mutual_info_score(labels, clusters),
                        adjusted_rand_score(labels, clusters),
                    )
                )
                notes.append(f"{scores[-1][0]:.3f}" + (f" ({note})" if note else ""))
            medians = [statistics.median(s[i] for s in scores) for i in range(3)]
            cells = [
                data,
                description,
                *(f"{m:.3f}" for m in medians),
                f"{statistics.median(seconds):.0f}",
                ", ".join(notes),
            ]
            print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
