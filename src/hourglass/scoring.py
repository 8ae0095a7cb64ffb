"""Reconstruction errors, thresholds, conformal p-values and per-sample results.

Everything here is a plain function of arrays, so it can be tested (and
reused by reports and services) without a model. The threshold rules
(:func:`threshold_rule`, :func:`rule_threshold`) are the ones
:class:`~hourglass.AutoencoderOutlierDetector` and ``hourglass score`` both
apply, and :func:`result_columns` computes the per-sample results that
``hourglass score``, :func:`hourglass.dask.score` and the scoring service
report.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from numbers import Real
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from numpy.typing import ArrayLike, NDArray
from sklearn.utils._param_validation import Interval, validate_parameter_constraints

from hourglass.exceptions import InvalidParameterError

__all__ = [
    "DEFAULT_FPR",
    "ERROR_METRICS",
    "RESULT_COLUMNS",
    "RESULT_DTYPES",
    "THRESHOLD_CONSTRAINTS",
    "TOP_COLUMNS",
    "conformal_p_values",
    "conformal_threshold",
    "contamination_threshold",
    "per_sample_error",
    "result_column_names",
    "result_columns",
    "rule_threshold",
    "take_rows",
    "threshold_rule",
    "top_column_positions",
    "top_columns",
]

#: Names accepted wherever a reconstruction-error metric is chosen.
ERROR_METRICS: tuple[str, ...] = ("mae", "mse", "bce")
#: The false-positive rate of the conformal threshold when no threshold rule is given.
DEFAULT_FPR = 0.01
#: The threshold parameters of :class:`~hourglass.AutoencoderOutlierDetector`, as
#: scikit-learn parameter constraints; ``hourglass score`` checks its options against them.
THRESHOLD_CONSTRAINTS: dict[str, list[Any]] = {
    "fpr": [Interval(Real, 0, 1, closed="neither"), None],
    "contamination": [Interval(Real, 0, 0.5, closed="right"), None],
    # Finite: scores > nan is never true, so every sample would pass as normal.
    "threshold": [Interval(Real, None, None, closed="neither"), None],
}
#: Every per-sample result, in the order ``hourglass score`` writes them.
RESULT_COLUMNS: tuple[str, ...] = (
    "reconstruction_error",
    "outlier_score",
    "p_value",
    "is_outlier",
    "top_columns",
)
#: The numeric results and their dtypes (``top_columns`` holds text).
RESULT_DTYPES: dict[str, np.dtype[Any]] = {
    "reconstruction_error": np.dtype(np.float64),
    "outlier_score": np.dtype(np.float64),
    "p_value": np.dtype(np.float64),
    "is_outlier": np.dtype(np.int8),
}
#: Columns named per row in ``top_columns``.
TOP_COLUMNS = 3


def per_sample_error(
    logits_or_output: torch.Tensor,
    target: torch.Tensor,
    metric: str,
    *,
    from_logits: bool,
) -> torch.Tensor:
    """Mean reconstruction error of each sample, shape ``(batch,)``.

    Parameters
    ----------
    logits_or_output : torch.Tensor
        The model's pre-activation output (``from_logits=True``) or its output
        in data space, shape ``(batch, ...)``.
    target : torch.Tensor
        What should have been reconstructed, same shape.
    metric : {"mae", "mse", "bce"}
        Mean absolute error, mean squared error, or binary cross-entropy
        (targets in [0, 1]; computed from logits when available, which is
        numerically stable). The higher, the worse the reconstruction.
    from_logits : bool
        Whether the first argument holds logits of a sigmoid output.
    """
    batch = target.shape[0]
    if metric == "bce":
        if from_logits:
            loss = F.binary_cross_entropy_with_logits(logits_or_output, target, reduction="none")
        else:
            # Clip like Keras does, so that a saturated output gives a large
            # but finite error.
            clipped = logits_or_output.clamp(1e-7, 1.0 - 1e-7)
            loss = F.binary_cross_entropy(clipped, target, reduction="none")
        return loss.reshape(batch, -1).mean(dim=1)
    output = torch.sigmoid(logits_or_output) if from_logits else logits_or_output
    diff = (output - target).reshape(batch, -1)
    if not diff.requires_grad and diff.dtype == torch.float32 and diff.device.type != "mps":
        # Scores (not training losses) in float64: the squared error of a value far from
        # the training data (say 1e20) overflows float32 but is a finite, valid score.
        diff = diff.double()
    if metric == "mae":
        return diff.abs().mean(dim=1)
    if metric == "mse":
        return diff.square().mean(dim=1)
    raise ValueError(f"Unknown error metric {metric!r}; expected one of {list(ERROR_METRICS)}.")


def contamination_threshold(scores: ArrayLike, contamination: float) -> float:
    """Error threshold above which a fraction ``contamination`` of ``scores`` lies.

    Parameters
    ----------
    scores : array-like of shape (n,)
        Reconstruction errors of the training data (higher = more abnormal).
    contamination : float in (0, 0.5]
        Expected fraction of outliers in the training data.

    Examples
    --------
    >>> contamination_threshold([1.0, 2.0, 3.0, 4.0, 5.0], 0.2)
    4.2
    """
    values = np.asarray(scores, dtype=np.float64)
    return float(np.quantile(values, 1.0 - contamination))


def threshold_rule(
    *,
    fpr: float | None,
    contamination: float | None,
    threshold: float | None,
    caller: str = "AutoencoderOutlierDetector",
) -> str | None:
    """Check the threshold parameters; name the rule they choose.

    Parameters
    ----------
    fpr, contamination, threshold : float or None
        As the parameters of :class:`~hourglass.AutoencoderOutlierDetector`: at
        most one of them may be given.
    caller : str, default="AutoencoderOutlierDetector"
        Who takes the parameters, as the error messages name it.

    Returns
    -------
    {"fpr", "contamination", "fixed"} or None
        The rule (``"fixed"`` for ``threshold``), or None when none is given.

    Raises
    ------
    sklearn.utils._param_validation.InvalidParameterError
        If a value is outside :data:`THRESHOLD_CONSTRAINTS`, or more than one
        is given (then :class:`hourglass.exceptions.InvalidParameterError`, its
        subclass).

    Examples
    --------
    >>> threshold_rule(fpr=None, contamination=0.1, threshold=None)
    'contamination'
    >>> threshold_rule(fpr=None, contamination=None, threshold=None) is None
    True
    """
    values = {"fpr": fpr, "contamination": contamination, "threshold": threshold}
    validate_parameter_constraints(THRESHOLD_CONSTRAINTS, values, caller_name=caller)
    given = [name for name, value in values.items() if value is not None]
    if len(given) > 1:
        raise InvalidParameterError(
            f"{caller} takes at most one of 'fpr', 'contamination' and 'threshold'; got "
            f"{' and '.join(given)}. Keep the one you want."
        )
    if not given:
        return None
    return "fixed" if given[0] == "threshold" else given[0]


def rule_threshold(
    rule: str,
    *,
    fpr: float | None = None,
    contamination: float | None = None,
    threshold: float | None = None,
    calibration_scores: ArrayLike = (),
    scores: ArrayLike | None = None,
) -> float:
    """The outlier-score threshold that ``rule`` sets.

    Parameters
    ----------
    rule : {"fpr", "contamination", "fixed"}
        As :func:`threshold_rule` names it.
    fpr : float or None
        ``"fpr"``: the false-positive rate (:data:`DEFAULT_FPR` when None);
        the threshold is :func:`conformal_threshold` of ``calibration_scores``.
    contamination : float
        ``"contamination"``: the fraction of ``scores`` above the threshold
        (:func:`contamination_threshold`).
    threshold : float
        ``"fixed"``: the threshold itself.
    calibration_scores : array-like of shape (m,)
        Outlier scores of the calibration samples (rule ``"fpr"``).
    scores : array-like of shape (n,), optional
        Outlier scores of the data (rule ``"contamination"``).

    Returns
    -------
    float
        Outlier scores above it are outliers.

    Examples
    --------
    >>> rule_threshold("contamination", contamination=0.2, scores=[1.0, 2.0, 3.0, 4.0, 5.0])
    4.2
    """
    if rule == "fpr":
        return conformal_threshold(calibration_scores, DEFAULT_FPR if fpr is None else float(fpr))
    if rule == "contamination" and contamination is not None:
        if scores is None:
            raise TypeError("The contamination rule needs the scores of the data.")
        return contamination_threshold(scores, float(contamination))
    if rule == "fixed" and threshold is not None:
        return float(threshold)
    raise ValueError(f"No threshold for rule {rule!r} with the values given.")


def conformal_threshold(calibration_scores: ArrayLike, fpr: float) -> float:
    """Split-conformal threshold with a false-positive rate of at most ``fpr``.

    A new normal sample (exchangeable with the calibration samples) has an error
    strictly above the returned threshold with probability at most ``fpr``. It
    is the ``ceil((1 - fpr) * (m + 1))``-th smallest of the ``m`` calibration
    errors; flagging ``error > threshold`` agrees with flagging
    ``p_value <= fpr`` (see :func:`conformal_p_values`).

    Parameters
    ----------
    calibration_scores : array-like of shape (m,)
        Errors of held-out normal samples (not used for training).
    fpr : float in (0, 1)
        The largest acceptable false-positive rate.

    Returns
    -------
    float
        The threshold. When ``m`` is too small to guarantee ``fpr`` (fewer
        than ``1 / fpr - 1`` samples), the largest calibration error is
        returned with a warning: the guaranteed false-positive rate is then
        ``1 / (m + 1)`` instead of ``fpr``.

    Examples
    --------
    >>> conformal_threshold(np.arange(1.0, 100.0), 0.05)  # m = 99 errors 1..99
    95.0
    """
    values = np.sort(np.asarray(calibration_scores, dtype=np.float64))
    m = values.shape[0]
    if m == 0:
        raise ValueError("conformal_threshold needs at least one calibration score.")
    # rank = ceil((1 - fpr) * (m + 1)) = m + 1 - j in exact arithmetic, where j is the
    # number of attainable p-values (1 + k) / (m + 1) that are <= fpr. Counting j with
    # the very expression conformal_p_values uses keeps "error > threshold" and
    # "p_value <= fpr" in agreement where the float product would round across an
    # integer (e.g. (1 - 0.7) * 10 == 3.0000000000000004).
    attainable = (1.0 + np.arange(m + 1, dtype=np.float64)) / (m + 1.0)
    rank = m + 1 - int(np.count_nonzero(attainable <= fpr))  # 1-based, ascending order
    if rank > m:
        needed = math.ceil(1.0 / fpr) - 1
        warnings.warn(
            f"{m} calibration samples cannot guarantee a false-positive rate of {fpr} (at "
            f"least {needed} are needed); using the largest calibration error as the "
            f"threshold, which guarantees {1.0 / (m + 1):.3g}. Use more training data, a "
            "larger calibration_fraction, or a larger fpr.",
            UserWarning,
            stacklevel=2,
        )
        rank = m
    return float(values[rank - 1])


def conformal_p_values(scores: ArrayLike, calibration_scores: ArrayLike) -> NDArray[np.float64]:
    """Split-conformal p-values of new errors against calibration errors.

    ``p = (1 + #{calibration errors >= error}) / (m + 1)``. For a normal sample,
    ``P(p <= alpha) <= alpha`` for every ``alpha``; small p-values mean
    "unlikely to be normal".

    Examples
    --------
    >>> conformal_p_values([0.5, 10.0], [1.0, 2.0, 3.0])
    array([1.  , 0.25])
    """
    calibration = np.sort(np.asarray(calibration_scores, dtype=np.float64))
    values = np.asarray(scores, dtype=np.float64)
    at_least = calibration.shape[0] - np.searchsorted(calibration, values, side="left")
    p_values: NDArray[np.float64] = (1.0 + at_least) / (calibration.shape[0] + 1.0)
    return p_values


def top_columns(contributions: ArrayLike, names: Sequence[str], k: int = 3) -> list[str]:
    """Describe each row's ``k`` largest column contributions, largest first.

    Parameters
    ----------
    contributions : array-like of shape (n_rows, n_columns)
        Each column's contribution to each row's score, as
        :meth:`~hourglass.AutoencoderOutlierDetector.explain` gives them (1 is
        ordinary for that column; the larger, the more it makes the row abnormal).
    names : sequence of str
        The column names, in the order of ``contributions``' columns.
    k : int, default=3
        How many columns to name per row.

    Returns
    -------
    list of str
        One ``"name (x12.3); name (x4.0); ..."`` per row. Ties keep the column order.

    Examples
    --------
    >>> top_columns([[1.0, 20.0, 3.0]], ["age", "income", "city"], k=2)
    ['income (x20.0); city (x3.0)']
    """
    values = np.asarray(contributions, dtype=np.float64).reshape(-1, len(names))
    return [
        "; ".join(f"{names[j]} (x{row[j]:.1f})" for j in best)
        for row, best in zip(values, top_column_positions(values, k), strict=True)
    ]


def top_column_positions(contributions: ArrayLike, k: int = TOP_COLUMNS) -> NDArray[np.intp]:
    """The positions of each row's ``k`` largest contributions, largest first.

    Parameters
    ----------
    contributions : array-like of shape (n_rows, n_columns)
        As :func:`top_columns` takes them.
    k : int, default=3
        How many positions per row (all of them when there are fewer columns).

    Returns
    -------
    ndarray of shape (n_rows, min(k, n_columns))
        Ties keep the column order.

    Examples
    --------
    >>> top_column_positions([[1.0, 20.0, 3.0]], k=2)
    array([[1, 2]])
    """
    values = np.asarray(contributions, dtype=np.float64)
    positions: NDArray[np.intp] = np.argsort(-values, axis=1, kind="stable")[:, :k]
    return positions


def take_rows(data: Any, positions: NDArray[np.intp]) -> Any:
    """The rows at ``positions`` of an array, a pandas DataFrame or a Series."""
    return data.iloc[positions] if isinstance(data, pd.DataFrame | pd.Series) else data[positions]


def result_column_names(
    *, outlier_score: bool, p_value: bool, top_columns: bool
) -> tuple[str, ...]:
    """The results a model reports by default, in the order of :data:`RESULT_COLUMNS`.

    The reconstruction error and the outlier flag always; the outlier score
    when it differs from the error (``score_type_`` other than ``"error"``), the
    p-value for a model with calibration data, and the top columns for tables.

    Examples
    --------
    >>> result_column_names(outlier_score=False, p_value=True, top_columns=False)
    ('reconstruction_error', 'p_value', 'is_outlier')
    """
    wanted = {"outlier_score": outlier_score, "p_value": p_value, "top_columns": top_columns}
    return tuple(name for name in RESULT_COLUMNS if wanted.get(name, True))


def result_columns(
    errors: NDArray[np.float64],
    scores: NDArray[np.float64],
    *,
    threshold: float,
    calibration_scores: ArrayLike,
    columns: Sequence[str] = RESULT_COLUMNS[:4],
    explain: Callable[[NDArray[np.intp]], pd.DataFrame] | None = None,
) -> dict[str, Any]:
    """The per-sample results of scored samples, one array (or list) per result.

    What ``hourglass score`` writes, :func:`hourglass.dask.score` computes and
    the scoring service answers.

    Parameters
    ----------
    errors : ndarray of shape (n,)
        Reconstruction errors (the higher, the more abnormal).
    scores : ndarray of shape (n,)
        Outlier scores, what the threshold applies to: the errors, or the
        score the detector's ``score_type_`` names.
    threshold : float
        Scores above it are outliers.
    calibration_scores : array-like of shape (m,)
        Outlier scores of the calibration samples, for the p-values.
    columns : sequence of str, default=RESULT_COLUMNS[:4]
        The results to compute, among :data:`RESULT_COLUMNS`, in this order:
        ``reconstruction_error`` (``errors``), ``outlier_score`` (``scores``),
        ``p_value`` (:func:`conformal_p_values`), ``is_outlier`` (1 where
        ``scores > threshold``, int8), ``top_columns`` (for each outlier, its
        :data:`TOP_COLUMNS` largest column contributions as :func:`top_columns`
        describes them; ``""`` for the other rows).
    explain : callable, optional
        ``top_columns`` only: the column contributions of the rows at the
        given positions, as a DataFrame with one column per table column (as
        :meth:`~hourglass.AutoencoderOutlierDetector.explain` gives them).
        Called for the outliers only, never with no rows.

    Returns
    -------
    dict
        ``{name: values}`` in the order of ``columns``.

    Examples
    --------
    >>> errors = np.array([0.5, 3.0])
    >>> results = result_columns(errors, errors, threshold=1.0, calibration_scores=[1.0, 2.0, 4.0])
    >>> results["is_outlier"], results["p_value"]
    (array([0, 1], dtype=int8), array([1. , 0.5]))
    """
    flags = scores > threshold
    results: dict[str, Any] = {}
    for name in columns:
        if name == "reconstruction_error":
            results[name] = errors
        elif name == "outlier_score":
            results[name] = scores
        elif name == "p_value":
            results[name] = conformal_p_values(scores, calibration_scores)
        elif name == "is_outlier":
            results[name] = flags.astype(RESULT_DTYPES[name])
        elif name == "top_columns":
            if explain is None:
                raise TypeError("The top_columns result needs explain.")
            flagged = np.flatnonzero(flags)
            text = [""] * flags.shape[0]
            if flagged.size:  # a row's contributions do not depend on the other rows
                contributions = explain(flagged)
                described = top_columns(
                    contributions.to_numpy(), list(contributions.columns), TOP_COLUMNS
                )
                for row, description in zip(flagged, described, strict=True):
                    text[row] = description
            results[name] = text
        else:
            raise ValueError(f"Unknown result {name!r}; expected one of {list(RESULT_COLUMNS)}.")
    return results
