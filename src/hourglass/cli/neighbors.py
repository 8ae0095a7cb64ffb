"""``hourglass neighbors MODEL QUERY --reference DATA -k 5``: nearest samples in code space."""

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
from hourglass.estimators import load
from hourglass.neighbors import NEIGHBOR_METRICS


def add_parser(subparsers: Any) -> None:
    """Register the ``neighbors`` verb."""
    parser = subparsers.add_parser(
        "neighbors",
        help="find the nearest reference samples of each query, in code space",
        description=(
            "For each sample of QUERY, find the K nearest samples of the reference set (from "
            "--reference, or the one stored in the model with set_index) by the cosine "
            "similarity or Euclidean distance of their codes. Works for images, table rows "
            "and texts (.txt, one per line)."
        ),
    )
    add_model_arguments(parser)
    parser.add_argument("query", metavar="QUERY", help="data file with the queries")
    parser.add_argument(
        "--reference",
        metavar="DATA",
        default=None,
        help="data file with the reference samples (default: the model's index)",
    )
    parser.add_argument("-k", type=int, default=5, help="neighbours per query (default: 5)")
    parser.add_argument(
        "--metric", choices=list(NEIGHBOR_METRICS), default="cosine", help="default: cosine"
    )
    parser.add_argument(
        "-o",
        "--output",
        default=None,
        metavar="FILE",
        help="write query, rank, reference index and score (.csv or .parquet)",
    )
    add_data_arguments(parser, streaming=True)
    add_json_argument(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Search, then print (and optionally write) the neighbours."""
    model = load(args.model, device=args.device)
    queries = read_input(args.query, args.drop_columns, args.stream)
    reference = (
        None
        if args.reference is None
        else read_input(args.reference, args.drop_columns, args.stream)
    )
    indices, scores = model.nearest(queries, args.k, metric=args.metric, index=reference)
    n_queries, k = indices.shape
    table = pd.DataFrame(
        {
            "query": np.repeat(np.arange(n_queries), k),
            "rank": np.tile(np.arange(1, k + 1), n_queries),
            "reference_index": indices.ravel(),
            "similarity" if args.metric == "cosine" else "distance": scores.ravel(),
        }
    )
    if args.json:
        if args.output:
            write_table(table, args.output)
        print_json({"n_queries": n_queries, "k": k, "metric": args.metric}, table)
        return 0
    if args.output:
        write_table(table, args.output)
        print(f"Wrote {len(table):,} neighbours of {n_queries:,} queries to {args.output}")
    else:
        for q in range(min(n_queries, 10)):
            pairs = ", ".join(f"{i} ({s:.3f})" for i, s in zip(indices[q], scores[q], strict=True))
            print(f"query {q}: {pairs}")
        if n_queries > 10:
            print(f"... {n_queries - 10:,} more queries; use -o FILE to write them all")
    return 0
