"""Reconstruction errors, thresholds and conformal p-values.

Everything here is a plain function of arrays, so it can be tested (and
reused by reports and services) without a model.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "ERROR_METRICS",
    "conformal_p_values",
    "conformal_threshold",
    "contamination_threshold",
    "per_sample_error",
    "top_columns",
]

#: Names accepted wherever a reconstruction-error metric is chosen.
ERROR_METRICS: tuple[str, ...] = ("mae", "mse", "bce")


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
    out = []
    for row in values:
        best = np.argsort(-row, kind="stable")[:k]
        out.append("; ".join(f"{names[j]} (x{row[j]:.1f})" for j in best))
    return out
