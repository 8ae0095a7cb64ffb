"""``hourglass report MODEL DATA [--labels COL|FILE] -o report.html``: one self-contained page."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pandas as pd

from hourglass.cli._common import add_data_arguments, add_model_arguments, read_input
from hourglass.cli.maps import read_labels
from hourglass.estimators import load
from hourglass.exceptions import InvalidParameterError
from hourglass.report.html import build_report


def add_parser(subparsers: Any) -> None:
    """Register the ``report`` verb."""
    parser = subparsers.add_parser(
        "report",
        help="write a self-contained HTML report on a model and data",
        description=(
            "Write one HTML file (pictures embedded, opens offline): the model card, training "
            "curves, the score distribution with the threshold, ROC and precision-recall "
            "curves when --labels are given (1 = outlier), the most abnormal samples, a 2-D "
            "map of the codes and clusters of the codes."
        ),
    )
    add_model_arguments(parser)
    parser.add_argument("data", metavar="DATA", help="data file to report on")
    parser.add_argument("-o", "--output", required=True, metavar="FILE", help="an .html file")
    parser.add_argument(
        "--labels",
        metavar="COL|FILE",
        default=None,
        help="a column of DATA, or a file with one 0/1 label per sample",
    )
    parser.add_argument("--title", default=None, help="page title")
    add_data_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Score, draw, write."""
    if Path(args.output).suffix.lower() not in (".html", ".htm"):
        raise InvalidParameterError(f"Cannot write {args.output}: use an .html file name.")
    model = load(args.model, device=args.device)
    data = read_input(args.data, args.drop_columns)
    labels = None
    if args.labels is not None:
        labels = read_labels(args.labels, data)
        if isinstance(data, pd.DataFrame) and args.labels in data.columns:
            data = data.drop(columns=args.labels)
    title = args.title or f"hourglass report: {Path(args.data).name}"
    build_report(model, data, args.output, labels=labels, title=title)
    print(f"Wrote {args.output}")
    return 0
