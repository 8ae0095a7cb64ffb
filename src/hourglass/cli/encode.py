"""``hourglass encode MODEL_DIR DATA -o codes.npy``: latent vectors of each sample."""

from __future__ import annotations

import argparse
from typing import Any

from hourglass.cli._common import add_data_arguments, add_model_arguments, read_input, write_array
from hourglass.estimators import load


def add_parser(subparsers: Any) -> None:
    """Register the ``encode`` verb."""
    parser = subparsers.add_parser(
        "encode",
        help="write the latent vector of every sample",
        description="Encode DATA with a trained model and write the codes, one row per sample.",
    )
    add_model_arguments(parser)
    parser.add_argument("data", metavar="DATA", help="data file to encode")
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="FILE",
        help="codes file: .npy (float32 array), .csv or .parquet",
    )
    add_data_arguments(parser, streaming=True)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Encode and write."""
    model = load(args.model, device=args.device)
    codes = model.transform(read_input(args.data, args.drop_columns, args.stream))
    write_array(codes, args.output)
    print(f"Wrote {codes.shape[0]:,} codes of dimension {codes.shape[1]} to {args.output}")
    return 0
