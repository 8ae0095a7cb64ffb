"""``hourglass demo``: the MNIST vs Fashion-MNIST reference study, end to end."""

from __future__ import annotations

import argparse
from typing import Any

from hourglass.reference_study import run_demo


def add_parser(subparsers: Any) -> None:
    """Register the ``demo`` verb."""
    parser = subparsers.add_parser(
        "demo",
        help="train on MNIST digits, detect Fashion-MNIST clothes",
        description=(
            "Run the reference study: train the dense 784-64-784 autoencoder on MNIST, score "
            "held-out digits and the Fashion-MNIST test set, and write metrics.json, "
            "histogram.png, reconstructions.png, worst.png and the model to --out."
        ),
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        metavar="DIR",
        help="folder with mnist/ and fashion-mnist/ IDX files (default: "
        "$HOURGLASS_DATA, the cache, then download)",
    )
    parser.add_argument(
        "--train-size", type=int, default=None, metavar="N", help="train on N images only"
    )
    parser.add_argument("--epochs", type=int, default=10, help="default: 10")
    parser.add_argument(
        "--out",
        default="hourglass-demo",
        metavar="DIR",
        help="output folder (default: ./hourglass-demo)",
    )
    parser.add_argument("--seed", type=int, default=0, help="default: 0")
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run the study."""
    run_demo(
        data_dir=args.data_dir,
        out=args.out,
        train_size=args.train_size,
        epochs=args.epochs,
        seed=args.seed,
        verbose=0 if args.quiet else 1,
    )
    return 0
