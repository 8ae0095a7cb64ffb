"""``hourglass train DATA -o MODEL_DIR``: fit an outlier detector and save it."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hourglass import distributed
from hourglass.cli._common import add_data_arguments, read_input
from hourglass.estimators import AutoencoderOutlierDetector
from hourglass.exceptions import InvalidInputError
from hourglass.nn.noise import NOISE_KINDS
from hourglass.scoring import ERROR_METRICS


def _int_tuple(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 256,128; got {text!r}"
        ) from None


def add_parser(subparsers: Any) -> None:
    """Register the ``train`` verb."""
    parser = subparsers.add_parser(
        "train",
        help="train an autoencoder outlier detector on normal data",
        description=(
            "Train an autoencoder on DATA (.npy, .npz, .csv, .parquet or IDX; uint8 images "
            "are scaled to [0, 1]) and save it, with its calibrated outlier threshold, to "
            "MODEL_DIR."
        ),
    )
    parser.add_argument("data", metavar="DATA", help="training data file")
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="MODEL_DIR",
        help="directory to save the model to (replaced atomically)",
    )
    model = parser.add_argument_group("model")
    model.add_argument(
        "--arch",
        default="auto",
        choices=["auto", "dense", "conv", "vae", "conv_vae", "sequence", "tabular"],
        help="auto (the default): tabular for tables and 2-D arrays, dense for images, "
        "sequence for text; or name the family: dense; conv for images; vae / conv_vae: "
        "variational; sequence for text (a .txt file); tabular for tables (CSV/Parquet)",
    )
    model.add_argument(
        "--categorical-columns",
        default="",
        metavar="COLS",
        help="tabular: comma-separated numeric columns to treat as categorical",
    )
    model.add_argument(
        "--beta",
        type=float,
        default=1.0,
        help="weight of the KL term of a variational model (default: 1)",
    )
    model.add_argument(
        "--invariance",
        type=float,
        default=0.0,
        help="images: weight of a term making codes ignore small shifts and rotations, for "
        "clustering by content (default: 0, off; try 1)",
    )
    model.add_argument(
        "--trim",
        type=_trim,
        default="auto",
        metavar="FRACTION|auto",
        help="tabular: fraction of each training batch's rows with the highest loss left out of "
        "the loss, so that outliers in the training data do not shape the model (default: "
        "auto = 0.2 for tabular models, 0 otherwise)",
    )
    model.add_argument("--latent-dim", type=int, default=64, help="code size (default: 64)")
    model.add_argument(
        "--hidden-dims",
        type=_int_tuple,
        default=(),
        metavar="W1,W2,...",
        help="encoder hidden widths; the decoder mirrors them (default: none)",
    )
    model.add_argument("--activation", default="relu", help="hidden activation (default: relu)")
    model.add_argument(
        "--output-activation",
        default="auto",
        choices=["auto", "sigmoid", "linear"],
        help="sigmoid for data in [0, 1], linear otherwise (default: auto)",
    )
    fitting = parser.add_argument_group("training")
    fitting.add_argument(
        "--loss",
        default="auto",
        choices=["auto", *ERROR_METRICS],
        help="training loss (default: bce for sigmoid output, else mse)",
    )
    fitting.add_argument("--epochs", type=int, default=10, help="default: 10")
    fitting.add_argument("--batch-size", type=int, default=64, help="default: 64")
    fitting.add_argument("--learning-rate", type=float, default=1e-3, help="default: 0.001")
    fitting.add_argument("--weight-decay", type=float, default=0.0, help="default: 0")
    fitting.add_argument(
        "--validation-fraction",
        type=float,
        default=None,
        help="fraction held out for validation loss (default: 0.1 with "
        "--early-stopping, else none)",
    )
    fitting.add_argument(
        "--early-stopping",
        action="store_true",
        help="stop when the validation loss stops improving",
    )
    fitting.add_argument("--patience", type=int, default=5, help="default: 5")
    fitting.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    fitting.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: 1, fastest for small models)",
    )
    fitting.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    fitting.add_argument(
        "--nproc",
        type=int,
        default=None,
        metavar="N",
        help="train data-parallel in N processes on this machine (torchrun --standalone "
        "--nproc-per-node N -m hourglass train ...; --batch-size is the global batch, a "
        "multiple of N). For several machines, run torchrun -m hourglass train yourself",
    )
    fitting.add_argument(
        "--noise",
        choices=list(NOISE_KINDS),
        default=None,
        help="train a denoising autoencoder on inputs corrupted this way",
    )
    fitting.add_argument(
        "--noise-strength",
        type=float,
        default=0.3,
        help="noise standard deviation, or fraction of values hit (default: 0.3)",
    )
    detection = parser.add_argument_group("outlier threshold (at most one rule)")
    detection.add_argument(
        "--metric",
        default="mae",
        choices=list(ERROR_METRICS),
        help="reconstruction error used as the score (default: mae)",
    )
    rule = detection.add_mutually_exclusive_group()
    rule.add_argument(
        "--fpr",
        type=float,
        default=None,
        help="target false-positive rate on normal data (default rule: 0.01)",
    )
    rule.add_argument(
        "--contamination", type=float, default=None, help="expected fraction of outliers in DATA"
    )
    rule.add_argument("--threshold", type=float, default=None, help="fixed error threshold")
    detection.add_argument(
        "--calibration-fraction",
        type=float,
        default=0.2,
        help="fraction of DATA held out for calibration (default: 0.2)",
    )
    detection.add_argument(
        "--score-type",
        choices=["auto", "error", "complexity"],
        default="auto",
        help="the outlier score: the reconstruction error, or (images) the error corrected for "
        "image complexity, which also catches simple outliers (default: auto = complexity for "
        "images unless --threshold is given)",
    )
    add_data_arguments(parser, streaming=True)
    parser.add_argument(
        "--checkpoint-dir",
        default=None,
        metavar="DIR",
        help="save the training state to DIR after every epoch (atomically)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="with --checkpoint-dir: continue from its checkpoint if there is one",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def _trim(text: str) -> float | str:
    """``--trim``: "auto" or a fraction in [0, 0.5)."""
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a number; got {text!r}") from None
    if not 0 <= value < 0.5:
        raise argparse.ArgumentTypeError(f"must lie in [0, 0.5); got {text}")
    return value


def run(args: argparse.Namespace) -> int:
    """Train and save; print a one-paragraph summary."""
    if args.nproc is not None and not distributed.launched_by_torchrun():
        return _launch(args)
    X = read_input(args.data, args.drop_columns, args.stream)
    detector = AutoencoderOutlierDetector(
        arch=args.arch,
        beta=args.beta,
        invariance=args.invariance,
        trim=args.trim,
        categorical_columns=tuple(
            c.strip() for c in args.categorical_columns.split(",") if c.strip()
        )
        or None,
        latent_dim=args.latent_dim,
        hidden_dims=args.hidden_dims,
        activation=args.activation,
        output_activation=args.output_activation,
        loss=args.loss,
        learning_rate=args.learning_rate,
        weight_decay=args.weight_decay,
        epochs=args.epochs,
        batch_size=args.batch_size,
        validation_fraction=args.validation_fraction,
        early_stopping=args.early_stopping,
        patience=args.patience,
        device=args.device,
        num_threads=args.threads,
        noise=args.noise,
        noise_strength=args.noise_strength,
        verbose=0 if args.quiet or not sys.stderr.isatty() else 1,  # bars only on a terminal
        random_state=args.seed,
        metric=args.metric,
        fpr=args.fpr,
        contamination=args.contamination,
        threshold=args.threshold,
        calibration_fraction=args.calibration_fraction,
        score_type=args.score_type,
    )
    if args.resume and args.checkpoint_dir is None:
        raise InvalidInputError("--resume needs --checkpoint-dir: the folder to resume from.")
    # Under torchrun: join the other processes, train together, and let rank 0 write.
    with distributed.process_group(args.device):
        detector.fit(X, checkpoint_dir=args.checkpoint_dir, resume=args.resume)
        if not distributed.is_main_process():
            return 0
    path = detector.save(args.output)
    history = detector.history_
    val = f", validation loss {history['val_loss'][-1]:.4f}" if "val_loss" in history else ""
    samples = (
        f"rows of {detector.n_features_in_} columns"
        if hasattr(detector, "table_schema_")
        else f"samples of shape {detector.input_shape_}"
    )
    print(
        f"Trained a {detector.arch_} autoencoder on {samples} for {detector.n_epochs_} "
        f"epochs in {detector.fit_time_:.1f} s: training loss {history['loss'][-1]:.4f}{val}.\n"
        f"Threshold ({detector.threshold_method_}, {detector.metric_}"
        f"{', complexity-corrected' if detector.score_type_ == 'complexity' else ''}): "
        f"{detector.threshold_:.6g}; {detector.n_calibration_} calibration samples.\n"
        f"Model saved to {path}/"
    )
    return 0


def _launch(args: argparse.Namespace) -> int:
    """``hourglass train --nproc N ...``: the same command in N processes, through torchrun."""
    if args.nproc < 1:
        raise InvalidInputError(f"--nproc must be at least 1; got {args.nproc}.")
    distributed.check_batch_size(args.batch_size, args.nproc)  # before starting N processes
    argv, skip = [], False
    for token in args.argv:  # the command as given, less --nproc N
        if skip or token.startswith("--nproc="):
            skip = False
            continue
        skip = token == "--nproc"
        if not skip:
            argv.append(token)
    distributed.launch(args.nproc, argv)
    return 0
