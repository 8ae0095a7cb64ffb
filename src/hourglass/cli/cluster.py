"""``hourglass cluster [MODEL] DATA -k 10 -o clusters.csv``: find clusters in data."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np
import pandas as pd

from hourglass.cli._common import (
    add_data_arguments,
    add_json_argument,
    integer_or_auto,
    print_json,
    read_input,
    write_table,
)
from hourglass.clustering import METHODS
from hourglass.estimators import AutoencoderClusterer, load


def add_parser(subparsers: Any) -> None:
    """Register the ``cluster`` verb."""
    parser = subparsers.add_parser(
        "cluster",
        help="find clusters in data",
        description=(
            "Find clusters in DATA and write one row per sample: index and cluster. Without "
            "MODEL_DIR the data decides the features, as AutoencoderClusterer() does: images are "
            "encoded by an invariant convolutional autoencoder trained here, texts by the text "
            "model, tables are used as they are (scaled). With MODEL_DIR, a model saved by "
            "'hourglass train' encodes them. The features are then embedded with UMAP and split "
            "by a Gaussian mixture."
        ),
    )
    parser.add_argument(
        "model",
        nargs="?",
        metavar="MODEL_DIR",
        help="a model saved by 'hourglass train' whose codes are clustered (optional)",
    )
    parser.add_argument("data", metavar="DATA", help="data file to cluster")
    parser.add_argument("--device", default=None, help="override the model's device")
    parser.add_argument(
        "-k",
        "--n-clusters",
        type=integer_or_auto("a number of clusters"),
        default=8,
        help="number of clusters, or 'auto' (default: 8)",
    )
    parser.add_argument(
        "--method",
        choices=list(METHODS),
        default="gmm",
        help="Gaussian mixture or k-means (default: gmm)",
    )
    parser.add_argument(
        "--manifold",
        choices=["umap", "none"],
        default="umap",
        help="embed the features with UMAP before splitting them (default: umap)",
    )
    parser.add_argument(
        "--max-clusters", type=int, default=15, help="largest k tried by -k auto (default: 15)"
    )
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="FILE",
        help="cluster of each sample (.csv or .parquet)",
    )
    parser.add_argument(
        "--save",
        metavar="DIR",
        help="also save the fitted clusterer, to label new data with hourglass.load(DIR).predict",
    )
    parser.add_argument("--seed", type=int, default=0, help="default: 0")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_data_arguments(parser, streaming=True)
    add_json_argument(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Cluster, write, summarise."""
    model = None if args.model is None else load(args.model, device=args.device)
    data = read_input(args.data, args.drop_columns, args.stream)
    clusterer = AutoencoderClusterer(
        n_clusters=args.n_clusters,
        method=args.method,
        manifold=None if args.manifold == "none" else args.manifold,
        max_clusters=args.max_clusters,
        autoencoder=model,
        random_state=args.seed,
        verbose=0 if args.quiet or args.json or not sys.stderr.isatty() else 1,
    ).fit(data)
    labels = clusterer.labels_
    table = pd.DataFrame({"index": np.arange(labels.size), "cluster": labels})
    write_table(table, args.output)
    if args.save:
        clusterer.save(args.save)
    sizes = np.bincount(labels, minlength=clusterer.n_clusters_)
    if args.json:
        summary = {
            "n_samples": int(labels.size),
            "n_clusters": int(clusterer.n_clusters_),
            "sizes": sizes.tolist(),
            "partitioned_on": clusterer.partitioned_on_,
            "selection": {str(k): v for k, v in getattr(clusterer, "selection_", {}).items()},
            "output": args.output,
            "saved": args.save,
        }
        print_json(summary, table)
        return 0
    chosen = " (chosen by -k auto)" if args.n_clusters == "auto" else ""
    saved = f"; the clusterer is saved in {args.save}" if args.save else ""
    print(
        f"{labels.size:,} samples in {clusterer.n_clusters_} clusters{chosen}; sizes "
        f"{', '.join(map(str, sizes))}. Written to {args.output}{saved}"
    )
    return 0
