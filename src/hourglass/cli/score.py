"""``hourglass score MODEL_DIR DATA -o scores.csv``: reconstruction errors and outlier flags."""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import pandas as pd

from hourglass.cli._common import (
    TableWriter,
    add_data_arguments,
    add_json_argument,
    add_model_arguments,
    at_least,
    check_table_path,
    positive_seconds,
    print_json,
    read_input,
    read_table,
    without_columns,
    write_table,
)
from hourglass.dask import DEFAULT_PARTITION_ROWS
from hourglass.data.stream import Stream
from hourglass.estimators import AutoencoderOutlierDetector
from hourglass.estimators._streaming import takes_frames
from hourglass.exceptions import InvalidInputError, InvalidParameterError
from hourglass.scoring import (
    rule_threshold,
    threshold_rule,
)


def add_parser(subparsers: Any) -> None:
    """Register the ``score`` verb."""
    parser = subparsers.add_parser(
        "score",
        help="score data with a trained detector",
        description=(
            "Write one row per sample of DATA: index, reconstruction error, p-value (when the "
            "model was calibrated) and outlier flag (1 = outlier); for tabular models also the "
            "columns contributing most to each flagged row, as multiples of their typical "
            "training error. By default the model's own "
            "threshold is used; one of --threshold, --fpr, --contamination overrides it."
        ),
    )
    add_model_arguments(parser)
    parser.add_argument("data", metavar="DATA", help="data file to score")
    parser.add_argument(
        "-o", "--output", required=True, metavar="FILE", help="scores file (.csv or .parquet)"
    )
    rule = parser.add_mutually_exclusive_group()
    rule.add_argument("--threshold", type=float, help="flag errors above this value")
    rule.add_argument(
        "--fpr",
        type=float,
        help="recalibrate on the model's calibration errors for this false-positive rate",
    )
    rule.add_argument(
        "--contamination", type=float, help="flag this fraction of DATA with the largest errors"
    )
    add_data_arguments(parser, streaming=True)
    add_json_argument(parser)
    cluster = parser.add_argument_group(
        'distributed scoring (needs the dask extra: pip install "hourglass-ae[dask]")'
    )
    cluster.add_argument(
        "--dask-scheduler",
        metavar="ADDRESS",
        help=(
            "score on a Dask cluster: the address of a running scheduler (tcp://host:8786), or "
            "local:N to start N local worker processes. MODEL_DIR and DATA (.npy, .csv, "
            ".parquet) must be readable at the same paths by the workers; the table has the "
            "same columns as without this option"
        ),
    )
    cluster.add_argument(
        "--dask-timeout",
        type=positive_seconds,
        default=10.0,
        metavar="SECONDS",
        help="how long to wait for the scheduler to answer (default: %(default)s)",
    )
    cluster.add_argument(
        "--partition-rows",
        type=at_least(1),
        default=DEFAULT_PARTITION_ROWS,
        metavar="N",
        help="rows of DATA per Dask task (default: %(default)s)",
    )
    parser.set_defaults(run=run)


def _rule(args: argparse.Namespace) -> str | None:
    """The rule of --threshold, --fpr or --contamination (None: the model's threshold).

    The options are checked as :class:`AutoencoderOutlierDetector` checks its
    ``threshold``, ``fpr`` and ``contamination`` parameters, with its messages.
    """
    return threshold_rule(fpr=args.fpr, contamination=args.contamination, threshold=args.threshold)


def _check_rule(rule: str | None, detector: AutoencoderOutlierDetector) -> None:
    """Raise unless the model can apply ``rule`` (as the estimator refuses fpr without them)."""
    if rule == "fpr" and detector.n_calibration_ == 0:
        raise InvalidParameterError(
            "--fpr needs a model trained with calibration data (calibration fraction > 0)."
        )


def _threshold(
    args: argparse.Namespace,
    rule: str | None,
    detector: AutoencoderOutlierDetector,
    scores: np.ndarray[Any, Any] | None,
) -> tuple[float, str]:
    """The threshold and its description; ``scores`` (of DATA) are needed for --contamination."""
    if rule is None:
        return float(detector.threshold_), f"the model's, {detector.threshold_method_} rule"
    value = rule_threshold(
        rule,
        fpr=args.fpr,
        contamination=args.contamination,
        threshold=args.threshold,
        calibration_scores=detector.calibration_scores_,
        scores=scores,
    )
    descriptions = {
        "fixed": "fixed",
        "fpr": f"fpr={args.fpr}",
        "contamination": f"contamination={args.contamination}",
    }
    return value, descriptions[rule]


def _score_rows(
    detector: AutoencoderOutlierDetector,
    X: Any,
    threshold: float,
    first_index: int = 0,
    errors_and_scores: tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]] | None = None,
) -> pd.DataFrame:
    """The scores table of the samples ``X`` (numbered from ``first_index``)."""
    # scores: what thresholds are about (the errors, or the score_type_'s scores)
    errors, scores = errors_and_scores or detector.errors_and_scores(X)
    results = detector._result_columns(
        X, errors, scores, threshold=threshold, columns=detector._default_result_columns()
    )
    index = np.arange(first_index, first_index + errors.size)
    return pd.DataFrame({"index": index, **results})


def _score_in_process(
    args: argparse.Namespace, rule: str | None, detector: AutoencoderOutlierDetector, X: Any
) -> tuple[pd.DataFrame, tuple[float, str]]:
    """The scores table of DATA (in memory), computed here."""
    errors, scores = detector.errors_and_scores(X)
    threshold, method = _threshold(args, rule, detector, scores)
    return _score_rows(detector, X, threshold, 0, (errors, scores)), (threshold, method)


def _score_stream(
    args: argparse.Namespace,
    rule: str | None,
    detector: AutoencoderOutlierDetector,
    stream: Stream,
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], tuple[float, str]]:
    """Score DATA piece by piece, writing the table as it goes; return scores and flags."""
    scores = detector.outlier_score(stream) if rule == "contamination" else None
    threshold, method = _threshold(args, rule, detector, scores)
    all_scores: list[np.ndarray[Any, Any]] = []
    all_flags: list[np.ndarray[Any, Any]] = []
    score_column = "outlier_score" if detector.score_type_ != "error" else None
    with TableWriter(args.output) as writer:
        for piece in stream.pieces(as_frame=takes_frames(detector, stream)):
            table = _score_rows(detector, piece, threshold, first_index=writer.n_rows)
            writer.write(table)
            all_scores.append(table[score_column or "reconstruction_error"].to_numpy())
            all_flags.append(table["is_outlier"].to_numpy() == 1)
    if not all_scores:
        raise InvalidInputError(f"{args.data} holds no rows to score.")
    return np.concatenate(all_scores), np.concatenate(all_flags), (threshold, method)


def _score_on_dask(
    args: argparse.Namespace, rule: str | None
) -> tuple[AutoencoderOutlierDetector, pd.DataFrame, tuple[float, str]]:
    """The scores table of DATA, computed on the Dask cluster at ``--dask-scheduler``."""
    import hourglass.dask

    hourglass.dask.require_dependencies()
    # Before connecting (which may start a cluster): the model, the data and the threshold
    # rule must be usable. The model lands in this process's cache, where
    # hourglass.dask.score finds it.
    detector = hourglass.dask.cached_model(args.model, device=args.device)
    data = hourglass.dask.read_data(args.data, partition_rows=args.partition_rows)
    names = [name.strip() for name in args.drop_columns.split(",") if name.strip()]
    if names:
        data = without_columns(data, names, args.data)
    _check_rule(rule, detector)
    if rule != "contamination":
        threshold, method = _threshold(args, rule, detector, None)
    with hourglass.dask.connect(args.dask_scheduler, timeout=args.dask_timeout):
        if rule == "contamination":  # the threshold needs every score: a first pass
            first = hourglass.dask.score(
                args.model, data, columns=["outlier_score"], device=args.device
            )
            scores = _as_numpy(first["outlier_score"].compute())
            threshold, method = _threshold(args, rule, detector, scores)
        results = hourglass.dask.score(args.model, data, threshold=threshold, device=args.device)
        if isinstance(results, dict):  # arrays: one result array per column, sharing tasks
            import dask

            table = pd.DataFrame(dask.compute(results)[0])
        else:
            table = results.compute().reset_index(drop=True)
    table.insert(0, "index", np.arange(len(table)))
    return detector, table, (threshold, method)


def _as_numpy(values: Any) -> np.ndarray[Any, Any]:
    return np.asarray(values.to_numpy() if hasattr(values, "to_numpy") else values)


def run(args: argparse.Namespace) -> int:
    """Score, write the table, print a summary."""
    check_table_path(args.output)  # before the work, not after
    rule = _rule(args)  # the options are checked before the model and the data are read
    table: pd.DataFrame | None = None
    if args.dask_scheduler is None:
        detector = AutoencoderOutlierDetector.load(args.model, device=args.device)
        _check_rule(rule, detector)
        X = read_input(args.data, args.drop_columns, args.stream)
        if isinstance(X, Stream):
            scores, flags, (threshold, method) = _score_stream(args, rule, detector, X)
        else:
            table, (threshold, method) = _score_in_process(args, rule, detector, X)
    else:
        detector, table, (threshold, method) = _score_on_dask(args, rule)
    if table is not None:
        write_table(table, args.output)
        score_column = (
            "outlier_score" if detector.score_type_ != "error" else "reconstruction_error"
        )
        scores = table[score_column].to_numpy()
        flags = table["is_outlier"].to_numpy() == 1
    if args.json:
        summary = {
            "n_samples": int(scores.size),
            "score": detector.score_name_,
            "threshold": float(threshold),
            "threshold_method": method,
            "n_outliers": int(flags.sum()),
            "output": args.output,
        }
        print_json(summary, read_table(args.output) if table is None else table)
        return 0
    worst = np.argsort(-scores, kind="stable")[:5]
    print(
        f"Scored {scores.size:,} samples ({detector.score_name_} score): median "
        f"{np.median(scores):.4g}, max {scores.max():.4g}.\n"
        f"Threshold {threshold:.6g} ({method}): {int(flags.sum()):,} outliers "
        f"({flags.mean():.2%}). Highest scores at rows {', '.join(map(str, worst))}.\n"
        f"Scores written to {args.output}"
    )
    return 0
