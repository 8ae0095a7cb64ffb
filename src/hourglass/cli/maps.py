"""``hourglass map MODEL DATA [--labels COL|FILE] -o map.png``: codes in two dimensions."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hourglass.cli._common import add_data_arguments, add_model_arguments, read_input
from hourglass.data.files import read_data
from hourglass.estimators import load
from hourglass.exceptions import InvalidInputError, InvalidParameterError
from hourglass.projection import PROJECTIONS, project_2d
from hourglass.report.figures import code_map


def add_parser(subparsers: Any) -> None:
    """Register the ``map`` verb."""
    parser = subparsers.add_parser(
        "map",
        help="draw the codes of DATA in two dimensions",
        description=(
            "Encode DATA, project the codes to 2-D (PCA, or UMAP with the optional extra) and "
            "draw them, coloured by --labels, by k-means clusters (--clusters K) or, for an "
            "outlier detector, by its outlier flag."
        ),
    )
    add_model_arguments(parser)
    parser.add_argument("data", metavar="DATA", help="data file to draw")
    parser.add_argument("-o", "--output", required=True, metavar="FILE", help="a .png file")
    parser.add_argument(
        "--labels",
        metavar="COL|FILE",
        default=None,
        help="a column of DATA, or a file with one label per sample "
        "(.npy, .txt, IDX, or the first column of a .csv)",
    )
    parser.add_argument(
        "--clusters",
        type=int,
        default=None,
        metavar="K",
        help="colour by K k-means clusters of the codes",
    )
    parser.add_argument("--method", choices=list(PROJECTIONS), default="pca", help="default: pca")
    add_data_arguments(parser)
    parser.set_defaults(run=run)


def read_labels(spec: str, data: Any) -> np.ndarray[Any, Any]:
    """Labels from a column of ``data`` or from a file (one label per sample)."""
    if isinstance(data, pd.DataFrame) and spec in data.columns:
        return data[spec].to_numpy()
    if not Path(spec).exists():
        raise InvalidInputError(
            f"--labels {spec!r} is neither a column of DATA nor an existing file."
        )
    labels = read_data(spec)
    if isinstance(labels, pd.DataFrame):
        return labels.iloc[:, 0].to_numpy()
    return np.asarray(labels).reshape(-1)


def run(args: argparse.Namespace) -> int:
    """Encode, project, draw."""
    if Path(args.output).suffix.lower() != ".png":
        raise InvalidParameterError(f"Cannot write {args.output}: use a .png file name.")
    model = load(args.model, device=args.device)
    data = read_input(args.data, args.drop_columns)
    groups = None
    legend = ""
    if args.labels is not None:
        groups, legend = read_labels(args.labels, data), "label"
        if isinstance(data, pd.DataFrame) and args.labels in data.columns:
            data = data.drop(columns=args.labels)
    codes = model.transform(data)
    if groups is not None and len(groups) != len(codes):
        raise InvalidInputError(
            f"--labels has {len(groups)} values but DATA has {len(codes)} samples."
        )
    if args.clusters is not None and not 1 <= args.clusters <= len(codes):
        raise InvalidInputError(
            f"--clusters must be between 1 and the number of samples ({len(codes)}); got "
            f"{args.clusters}."
        )
    if groups is None and args.clusters:
        from sklearn.cluster import KMeans

        groups = KMeans(n_clusters=args.clusters, n_init=10, random_state=0).fit_predict(codes)
        legend = "cluster"
    elif groups is None and hasattr(model, "predict") and hasattr(model, "threshold_"):
        groups = np.where(model.predict(data) == -1, "outlier", "inlier")
        legend = "flag"
    points = project_2d(codes, method=args.method)
    code_map(
        points,
        args.output,
        groups=groups,
        title=f"{len(codes):,} codes of {Path(args.data).name} ({args.method.upper()})",
        xlabel=f"{args.method.upper()} 1",
        ylabel=f"{args.method.upper()} 2",
        legend_title=legend,
    )
    print(f"Wrote a map of {len(codes):,} samples to {args.output}")
    return 0
