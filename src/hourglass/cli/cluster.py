"""``hourglass cluster MODEL DATA -k 10 -o clusters.csv``: cluster samples by their codes."""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import pandas as pd

from hourglass.cli._common import (
    add_data_arguments,
    add_json_argument,
    add_model_arguments,
    print_json,
    read_input,
    write_table,
)
from hourglass.estimators import AutoencoderClusterer, load


def _k(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number of clusters or 'auto'; got {text!r}"
        ) from None


def add_parser(subparsers: Any) -> None:
    """Register the ``cluster`` verb."""
    parser = subparsers.add_parser(
        "cluster",
        help="cluster samples by their codes",
        description=(
            "Encode DATA with a trained model and cluster the codes with k-means (or a "
            "Gaussian mixture). Writes one row per sample: index and cluster."
        ),
    )
    add_model_arguments(parser)
    parser.add_argument("data", metavar="DATA", help="data file to cluster")
    parser.add_argument(
        "-k", "--n-clusters", type=_k, default=8, help="number of clusters, or 'auto' (default: 8)"
    )
    parser.add_argument(
        "--method", choices=["kmeans", "gmm"], default="kmeans", help="default: kmeans"
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
    parser.add_argument("--seed", type=int, default=0, help="default: 0")
    add_data_arguments(parser, streaming=True)
    add_json_argument(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Cluster, write, summarise."""
    model = load(args.model, device=args.device)
    data = read_input(args.data, args.drop_columns, args.stream)
    clusterer = AutoencoderClusterer(
        n_clusters=args.n_clusters,
        method=args.method,
        max_clusters=args.max_clusters,
        autoencoder=model,
        random_state=args.seed,
    ).fit(data)
    labels = clusterer.labels_
    table = pd.DataFrame({"index": np.arange(labels.size), "cluster": labels})
    write_table(table, args.output)
    sizes = np.bincount(labels, minlength=clusterer.n_clusters_)
    if args.json:
        summary = {
            "n_samples": int(labels.size),
            "n_clusters": int(clusterer.n_clusters_),
            "sizes": sizes.tolist(),
            "selection": {str(k): v for k, v in getattr(clusterer, "selection_", {}).items()},
            "output": args.output,
        }
        print_json(summary, table)
        return 0
    chosen = " (chosen by -k auto)" if args.n_clusters == "auto" else ""
    print(
        f"{labels.size:,} samples in {clusterer.n_clusters_} clusters{chosen}; sizes "
        f"{', '.join(map(str, sizes))}. Written to {args.output}"
    )
    return 0
