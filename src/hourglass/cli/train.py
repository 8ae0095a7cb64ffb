"""``hourglass train DATA -o MODEL_DIR``: fit an outlier detector and save it."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hourglass import distributed
from hourglass.cli._common import add_data_arguments, integer_or_auto, read_input
from hourglass.estimators import AutoencoderOutlierDetector
from hourglass.estimators.outlier import SCORE_TYPES
from hourglass.exceptions import InvalidInputError
from hourglass.families import ARCHITECTURES
from hourglass.nn.noise import NOISE_KINDS
from hourglass.nn.text_features import TEXT_NOISE_KINDS
from hourglass.scoring import ERROR_METRICS

#: A Flag default meaning: the estimator's own default for the parameter.
ESTIMATOR_DEFAULT: Any = object()


def _int_tuple(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 256,128; got {text!r}"
        ) from None


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


@dataclass(frozen=True)
class Flag:
    """A command-line option that sets one estimator parameter.

    Its default is the estimator's (unless ``default`` is given), so the two
    cannot drift apart; :func:`detector_params` maps parsed options back.
    """

    parameter: str
    group: str
    help: str
    flag: str = ""  # default: "--" + the parameter with dashes
    type: Callable[[str], Any] | None = None
    choices: Sequence[str] | None = None
    metavar: str | None = None
    action: Any = None  # "store_true", or argparse.BooleanOptionalAction for --x/--no-x
    default: Any = ESTIMATOR_DEFAULT
    # The parsed value -> the parameter's value (e.g. "a,b" -> ("a", "b")).
    to_parameter: Callable[[Any], Any] | None = None

    @property
    def option(self) -> str:
        return self.flag or "--" + self.parameter.replace("_", "-")

    @property
    def dest(self) -> str:
        return self.option.removeprefix("--").replace("-", "_")


def _columns(text: str) -> tuple[str, ...] | None:
    return tuple(c.strip() for c in text.split(",") if c.strip()) or None


#: Every option of ``hourglass train`` that sets a parameter of the detector, in help order.
FLAGS: tuple[Flag, ...] = (
    Flag(
        "arch",
        "model",
        "auto (the default): tabular for tables and 2-D arrays, dense for images, "
        "transformer for text; or name the family: dense; conv for images; vae / conv_vae: "
        "variational; transformer or sequence (a GRU) for text (a .txt file); tabular for "
        "tables (CSV/Parquet)",
        choices=["auto", *ARCHITECTURES],
    ),
    Flag(
        "categorical_columns",
        "model",
        "tabular: comma-separated numeric columns to treat as categorical",
        metavar="COLS",
        default="",
        to_parameter=_columns,
    ),
    Flag("beta", "model", "weight of the KL term of a variational model (default: 1)", type=float),
    Flag(
        "invariance",
        "model",
        "images: weight of a term making codes ignore small shifts and rotations, for "
        "clustering by content (default: 0, off; try 1)",
        type=float,
    ),
    Flag(
        "trim",
        "model",
        "tabular: fraction of each training batch's rows with the highest loss left out of "
        "the loss, so that outliers in the training data do not shape the model (default: "
        "auto = 0.2 for tabular models, 0 otherwise)",
        type=_trim,
        metavar="FRACTION|auto",
    ),
    Flag("latent_dim", "model", "code size (default: 64)", type=int),
    Flag(
        "hidden_dims",
        "model",
        "encoder hidden widths; the decoder mirrors them (default: none)",
        type=_int_tuple,
        metavar="W1,W2,...",
    ),
    Flag("activation", "model", "hidden activation (default: relu)"),
    Flag(
        "output_activation",
        "model",
        "sigmoid for data in [0, 1], linear otherwise (default: auto)",
        choices=["auto", "sigmoid", "linear"],
    ),
    Flag(
        "loss",
        "training",
        "training loss (default: bce for sigmoid output, else mse)",
        choices=["auto", *ERROR_METRICS],
    ),
    Flag(
        "epochs",
        "training",
        "passes over the data (default: auto = 10; text transformers about 1,600 steps, "
        "10-30 epochs)",
        type=integer_or_auto("a number of epochs"),
        metavar="N|auto",
    ),
    Flag("batch_size", "training", "default: 64", type=int),
    Flag("learning_rate", "training", "default: 0.001", type=float),
    Flag("weight_decay", "training", "default: 0", type=float),
    Flag(
        "validation_fraction",
        "training",
        "fraction held out for validation loss (default: 0.1 with --early-stopping, else none)",
        type=float,
    ),
    Flag(
        "early_stopping",
        "training",
        "stop when the validation loss stops improving",
        action="store_true",
    ),
    Flag(
        "shuffle",
        "training",
        "shuffle the training rows every epoch (default: on)",
        action=argparse.BooleanOptionalAction,
    ),
    Flag("patience", "training", "default: 5", type=int),
    Flag("device", "training", "auto, cpu, cuda or cuda:N"),
    Flag(
        "num_threads",
        "training",
        "torch CPU threads (default: measured while training)",
        flag="--threads",
        type=int,
    ),
    Flag(
        "mixed_precision",
        "training",
        "compute in bfloat16 where the CPU has it natively (AVX512-BF16, AMX); float32 weights",
        action="store_true",
    ),
    Flag(
        "random_state", "training", "random seed (default: 0)", flag="--seed", type=int, default=0
    ),
    Flag(
        "noise",
        "training",
        "train a denoising autoencoder on inputs corrupted this way (texts: word_deletion, typos)",
        choices=[*NOISE_KINDS, *TEXT_NOISE_KINDS],
    ),
    Flag(
        "noise_strength",
        "training",
        "noise standard deviation, or fraction of values, words or letters hit (default: 0.3)",
        type=float,
    ),
    Flag(
        "metric",
        "threshold",
        "reconstruction error used as the score (default: mae)",
        choices=list(ERROR_METRICS),
    ),
    Flag(
        "fpr",
        "rule",
        "target false-positive rate on normal data (default rule: 0.01)",
        type=float,
    ),
    Flag("contamination", "rule", "expected fraction of outliers in DATA", type=float),
    Flag("threshold", "rule", "fixed error threshold", type=float),
    Flag(
        "calibration_fraction",
        "threshold",
        "fraction of DATA held out for calibration (default: 0.2)",
        type=float,
    ),
    Flag(
        "score_type",
        "threshold",
        "the outlier score: the reconstruction error; (images) the error corrected for "
        "image complexity, which also catches simple outliers; or (tables) the distance from "
        "the training rows (default: auto = complexity for images, distance for tables, "
        "unless --threshold is given)",
        choices=list(SCORE_TYPES),
    ),
)


def _add_flag(group: Any, flag: Flag, defaults: dict[str, Any]) -> None:
    default = defaults[flag.parameter] if flag.default is ESTIMATOR_DEFAULT else flag.default
    options: dict[str, Any] = {"default": default, "help": flag.help}
    for name in ("type", "choices", "metavar", "action"):
        if getattr(flag, name) is not None:
            options[name] = getattr(flag, name)
    group.add_argument(flag.option, **options)


def detector_params(args: argparse.Namespace) -> dict[str, Any]:
    """The detector's parameters from parsed ``hourglass train`` options (see :data:`FLAGS`)."""
    params = {}
    for flag in FLAGS:
        value = getattr(args, flag.dest)
        params[flag.parameter] = value if flag.to_parameter is None else flag.to_parameter(value)
    params["verbose"] = 0 if args.quiet or not sys.stderr.isatty() else 1  # bars on a terminal
    return params


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
    training = parser.add_argument_group("training")
    detection = parser.add_argument_group("outlier threshold (at most one rule)")
    groups = {
        "model": model,
        "training": training,
        "threshold": detection,
        "rule": detection.add_mutually_exclusive_group(),
    }
    defaults = AutoencoderOutlierDetector().get_params()
    for flag in FLAGS:
        _add_flag(groups[flag.group], flag, defaults)
    training.add_argument(
        "--nproc",
        type=int,
        default=None,
        metavar="N",
        help="train data-parallel in N processes on this machine (torchrun --standalone "
        "--nproc-per-node N -m hourglass train ...; --batch-size is the global batch, a "
        "multiple of N). For several machines, run torchrun -m hourglass train yourself",
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


def run(args: argparse.Namespace) -> int:
    """Train and save; print a one-paragraph summary."""
    if args.nproc is not None and not distributed.launched_by_torchrun():
        return _launch(args)
    X = read_input(args.data, args.drop_columns, args.stream)
    detector = AutoencoderOutlierDetector(**detector_params(args))
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
        if detector.family_.input_kind(detector.input_shape_) == "table"
        else f"samples of shape {detector.input_shape_}"
    )
    print(
        f"Trained a {detector.arch_} autoencoder on {samples} for {detector.n_epochs_} "
        f"epochs in {detector.fit_time_:.1f} s: training loss {history['loss'][-1]:.4f}{val}.\n"
        f"Threshold ({detector.threshold_method_}, {detector.score_name_}): "
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
