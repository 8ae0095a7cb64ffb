"""``hourglass score MODEL_DIR DATA -o scores.csv``: reconstruction errors and outlier flags."""

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
from hourglass.estimators import AutoencoderOutlierDetector
from hourglass.exceptions import InvalidInputError
from hourglass.scoring import conformal_p_values, conformal_threshold, contamination_threshold


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
    add_data_arguments(parser)
    add_json_argument(parser)
    parser.set_defaults(run=run)


def _threshold(
    args: argparse.Namespace, detector: AutoencoderOutlierDetector, scores: np.ndarray[Any, Any]
) -> tuple[float, str]:
    if args.threshold is not None:
        if not np.isfinite(args.threshold):
            # errors > nan is never true: every sample would pass as normal.
            raise InvalidInputError(f"--threshold must be a finite number; got {args.threshold}.")
        return float(args.threshold), "fixed"
    if args.fpr is not None:
        if not 0 < args.fpr < 1:
            raise InvalidInputError(f"--fpr must be in (0, 1); got {args.fpr}.")
        if detector.n_calibration_ == 0:
            raise InvalidInputError(
                "--fpr needs a model trained with calibration data (calibration fraction > 0)."
            )
        return conformal_threshold(detector.calibration_scores_, args.fpr), f"fpr={args.fpr}"
    if args.contamination is not None:
        if not 0 < args.contamination < 1:
            raise InvalidInputError(f"--contamination must be in (0, 1); got {args.contamination}.")
        value = contamination_threshold(scores, args.contamination)
        return value, f"contamination={args.contamination}"
    return float(detector.threshold_), f"the model's, {detector.threshold_method_} rule"


def _top_columns(contributions: pd.DataFrame, flags: np.ndarray[Any, Any], k: int = 3) -> list[str]:
    """For each flagged row, its ``k`` largest column contributions ("col (x12.3); ...")."""
    values = contributions.to_numpy()
    names = list(contributions.columns)
    out = []
    for row, flagged in zip(values, flags, strict=True):
        if not flagged:
            out.append("")
            continue
        best = np.argsort(-row, kind="stable")[:k]
        out.append("; ".join(f"{names[j]} (x{row[j]:.1f})" for j in best))
    return out


def run(args: argparse.Namespace) -> int:
    """Score, write the table, print a summary."""
    detector = AutoencoderOutlierDetector.load(args.model, device=args.device)
    X = read_input(args.data, args.drop_columns)
    scores = detector.outlier_score(X)  # what thresholds and p-values are about
    corrected = detector.score_type_ == "complexity"
    errors = detector.reconstruction_error(X) if corrected else scores
    threshold, method = _threshold(args, detector, scores)
    columns: dict[str, Any] = {"index": np.arange(errors.size), "reconstruction_error": errors}
    if corrected:
        columns["outlier_score"] = scores
    if detector.n_calibration_ > 0:
        columns["p_value"] = conformal_p_values(scores, detector.calibration_scores_)
    flags = scores > threshold
    columns["is_outlier"] = flags.astype(np.int8)
    if detector.arch_ == "tabular":
        columns["top_columns"] = _top_columns(detector.explain(X), flags)
    table = pd.DataFrame(columns)
    write_table(table, args.output)
    if args.json:
        summary = {
            "n_samples": int(errors.size),
            "score": f"{detector.metric_}, complexity-corrected" if corrected else detector.metric_,
            "threshold": float(threshold),
            "threshold_method": method,
            "n_outliers": int(flags.sum()),
            "output": args.output,
        }
        print_json(summary, table)
        return 0
    worst = np.argsort(-scores, kind="stable")[:5]
    name = f"{detector.metric_}, complexity-corrected" if corrected else detector.metric_
    print(
        f"Scored {scores.size:,} samples ({name} score): median "
        f"{np.median(scores):.4g}, max {scores.max():.4g}.\n"
        f"Threshold {threshold:.6g} ({method}): {int(flags.sum()):,} outliers "
        f"({flags.mean():.2%}). Highest scores at rows {', '.join(map(str, worst))}.\n"
        f"Scores written to {args.output}"
    )
    return 0
