"""Errors, thresholds, p-values and result rows, checked against hand computations."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.utils._param_validation import InvalidParameterError

from hourglass.scoring import (
    DEFAULT_FPR,
    RESULT_COLUMNS,
    conformal_p_values,
    conformal_threshold,
    contamination_threshold,
    per_sample_error,
    result_column_names,
    result_columns,
    rule_threshold,
    take_rows,
    threshold_rule,
    top_column_positions,
    top_columns,
)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _bce(p: np.ndarray, t: np.ndarray) -> np.ndarray:
    return -(t * np.log(p) + (1.0 - t) * np.log(1.0 - p))


@pytest.fixture
def batch() -> tuple[np.ndarray, np.ndarray]:
    """Logits of moderate size and targets in [0, 1], shape (4, 2, 3)."""
    rng = np.random.default_rng(0)
    logits = rng.uniform(-4.0, 4.0, size=(4, 2, 3))
    targets = rng.random((4, 2, 3))
    return logits, targets


def _error(values: np.ndarray, targets: np.ndarray, metric: str, from_logits: bool) -> np.ndarray:
    result = per_sample_error(
        torch.from_numpy(values), torch.from_numpy(targets), metric, from_logits=from_logits
    )
    assert result.shape == (values.shape[0],)
    return result.numpy()


def test_mae_and_mse_of_outputs(batch: tuple[np.ndarray, np.ndarray]) -> None:
    logits, targets = batch
    outputs = _sigmoid(logits)
    diff = (outputs - targets).reshape(4, -1)

    np.testing.assert_allclose(_error(outputs, targets, "mae", False), np.abs(diff).mean(axis=1))
    np.testing.assert_allclose(_error(outputs, targets, "mse", False), (diff**2).mean(axis=1))


@pytest.mark.parametrize("metric", ["mae", "mse"])
def test_mae_and_mse_from_logits_apply_the_sigmoid(
    batch: tuple[np.ndarray, np.ndarray], metric: str
) -> None:
    logits, targets = batch

    np.testing.assert_allclose(
        _error(logits, targets, metric, True), _error(_sigmoid(logits), targets, metric, False)
    )


def test_bce_from_logits_matches_hand_computation(batch: tuple[np.ndarray, np.ndarray]) -> None:
    logits, targets = batch
    expected = _bce(_sigmoid(logits), targets).reshape(4, -1).mean(axis=1)

    np.testing.assert_allclose(_error(logits, targets, "bce", True), expected, rtol=1e-10)


def test_bce_from_logits_equals_bce_from_probabilities(
    batch: tuple[np.ndarray, np.ndarray],
) -> None:
    logits, targets = batch

    np.testing.assert_allclose(
        _error(logits, targets, "bce", True),
        _error(_sigmoid(logits), targets, "bce", False),
        rtol=1e-6,
    )


def test_bce_of_saturated_outputs_is_large_but_finite() -> None:
    outputs = np.array([[0.0, 1.0]])
    targets = np.array([[1.0, 0.0]])

    error = _error(outputs, targets, "bce", False)

    assert np.isfinite(error).all()
    assert error[0] == pytest.approx(-math.log(1e-7), rel=1e-6)


def test_perfect_reconstruction_has_zero_mae_and_mse() -> None:
    outputs = np.random.default_rng(1).random((3, 5))

    assert (_error(outputs, outputs, "mae", False) == 0).all()
    assert (_error(outputs, outputs, "mse", False) == 0).all()


def test_unknown_metric_is_rejected() -> None:
    x = torch.zeros(2, 3)

    with pytest.raises(ValueError, match="Unknown error metric 'rmse'"):
        per_sample_error(x, x, "rmse", from_logits=False)


@pytest.mark.parametrize("contamination", [0.01, 0.05, 0.1, 0.25, 0.5])
@pytest.mark.parametrize("n", [200, 1000])
def test_contamination_threshold_flags_exactly_that_fraction(contamination: float, n: int) -> None:
    scores = np.random.default_rng(n).exponential(size=n)

    threshold = contamination_threshold(scores, contamination)

    assert int(np.sum(scores > threshold)) == round(contamination * n)


def test_contamination_threshold_interpolates() -> None:
    assert contamination_threshold([5.0, 1.0, 3.0, 2.0, 4.0], 0.2) == pytest.approx(4.2)


def test_conformal_threshold_is_the_conformal_order_statistic() -> None:
    # m = 99 errors 1..99: rank ceil(0.95 * 100) = 95.
    assert conformal_threshold(np.arange(99.0, 0.0, -1.0), 0.05) == 95.0
    # m = 9, fpr = 0.3: rank ceil(0.7 * 10) = 7 (the float product 0.7 * 10 is exact);
    # fpr = 0.7: rank ceil(0.3 * 10) = 3, although (1 - 0.7) * 10 > 3 in floating point.
    assert conformal_threshold(np.arange(1.0, 10.0), 0.3) == 7.0
    assert conformal_threshold(np.arange(1.0, 10.0), 0.7) == 3.0


@pytest.mark.parametrize("m", [9, 10, 19, 20, 49, 99, 100, 250, 999])
def test_conformal_threshold_agrees_with_p_values(m: int) -> None:
    rng = np.random.default_rng(m)
    calibration = rng.normal(size=m)
    new = rng.normal(size=5000)  # continuous: no ties with the calibration scores

    p_values = conformal_p_values(new, calibration)
    for fpr in (0.01, 0.05, 0.1, 0.18, 0.2, 0.25, 0.3, 0.45, 0.5, 0.7, 0.95):
        if fpr * (m + 1) < 1:
            continue  # too few calibration samples: tested separately
        threshold = conformal_threshold(calibration, fpr)
        np.testing.assert_array_equal(new > threshold, p_values <= fpr, err_msg=f"fpr={fpr}")


def test_p_values_follow_the_formula_and_count_ties() -> None:
    calibration = [1.0, 2.0, 3.0]

    p_values = conformal_p_values([0.5, 2.0, 2.5, 10.0], calibration)

    # (1 + #{calibration >= score}) / (m + 1); the tie at 2.0 counts.
    np.testing.assert_allclose(p_values, [4 / 4, 3 / 4, 2 / 4, 1 / 4])


def test_p_values_of_exchangeable_normal_data_are_uniform() -> None:
    rng = np.random.default_rng(0)
    m, draws = 99, 4000
    p_values = np.array(
        [conformal_p_values(rng.normal(size=1), rng.normal(size=m))[0] for _ in range(draws)]
    )

    assert p_values.min() >= 1 / (m + 1)
    assert p_values.max() <= 1.0
    # P(p <= alpha) = alpha exactly when alpha * (m + 1) is an integer.
    for alpha in (0.05, 0.1, 0.25, 0.5):
        assert np.mean(p_values <= alpha) == pytest.approx(alpha, abs=0.025)


def test_conformal_threshold_controls_the_false_positive_rate() -> None:
    rng = np.random.default_rng(1)
    fpr, m, draws = 0.1, 49, 4000
    flagged = [rng.normal() > conformal_threshold(rng.normal(size=m), fpr) for _ in range(draws)]

    # Exactly floor(0.1 * 50) / 50 = 0.1 in expectation.
    assert np.mean(flagged) == pytest.approx(0.1, abs=0.025)


def test_too_few_calibration_samples_warn_and_use_the_largest() -> None:
    calibration = np.array([0.3, 0.9, 0.1, 0.5])

    with pytest.warns(UserWarning, match=r"4 calibration samples cannot guarantee.*0\.05"):
        threshold = conformal_threshold(calibration, 0.05)

    assert threshold == 0.9


def test_enough_calibration_samples_do_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        conformal_threshold(np.arange(19.0), 0.05)  # 0.05 * 20 = 1: just enough


def test_conformal_threshold_needs_a_calibration_score() -> None:
    with pytest.raises(ValueError, match="at least one calibration score"):
        conformal_threshold([], 0.1)


# ------------------------------------------------------------- threshold rules


@pytest.mark.parametrize(
    ("values", "rule"),
    [
        ({}, None),
        ({"fpr": 0.05}, "fpr"),
        ({"contamination": 0.5}, "contamination"),
        ({"threshold": -3.0}, "fixed"),
    ],
)
def test_threshold_rule_names_the_rule_given(values: dict[str, float], rule: str | None) -> None:
    arguments = {"fpr": None, "contamination": None, "threshold": None, **values}

    assert threshold_rule(**arguments) == rule


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"contamination": 0.7},
            "The 'contamination' parameter of AutoencoderOutlierDetector must be a float in the "
            "range (0.0, 0.5] or None. Got 0.7 instead.",
        ),
        ({"fpr": 1.0}, "The 'fpr' parameter of AutoencoderOutlierDetector must be a float"),
        ({"threshold": math.nan}, "The 'threshold' parameter of AutoencoderOutlierDetector"),
        (
            {"fpr": 0.1, "threshold": 1.0},
            "AutoencoderOutlierDetector takes at most one of 'fpr', 'contamination' and "
            "'threshold'; got fpr and threshold. Keep the one you want.",
        ),
    ],
)
def test_threshold_rule_refuses_bad_values_as_parameter_errors(
    values: dict[str, float], message: str
) -> None:
    arguments = {"fpr": None, "contamination": None, "threshold": None, **values}

    with pytest.raises(InvalidParameterError) as refused:
        threshold_rule(**arguments)

    assert str(refused.value).startswith(message)


def test_rule_threshold_applies_each_rule() -> None:
    calibration = np.arange(1.0, 100.0)
    scores = np.array([5.0, 1.0, 3.0, 2.0, 4.0])

    assert rule_threshold("fpr", fpr=0.05, calibration_scores=calibration) == 95.0
    assert rule_threshold("fpr", calibration_scores=calibration) == conformal_threshold(
        calibration, DEFAULT_FPR
    )
    assert rule_threshold("contamination", contamination=0.2, scores=scores) == pytest.approx(4.2)
    assert rule_threshold("fixed", threshold=2.5) == 2.5
    with pytest.raises(TypeError, match="needs the scores"):
        rule_threshold("contamination", contamination=0.2)


# ----------------------------------------------------------------- result rows


def test_result_column_names_keep_the_order_of_the_scores_table() -> None:
    assert result_column_names(outlier_score=True, p_value=True, top_columns=True) == RESULT_COLUMNS
    assert result_column_names(outlier_score=False, p_value=False, top_columns=False) == (
        "reconstruction_error",
        "is_outlier",
    )


def test_result_columns_follow_the_threshold_and_the_p_value_formula() -> None:
    errors = np.array([0.5, 3.0, 1.0])
    scores = np.array([-1.0, 2.0, 1.0])  # e.g. complexity-corrected errors
    calibration = np.array([0.0, 1.0, 3.0])

    results = result_columns(
        errors, scores, threshold=1.0, calibration_scores=calibration, columns=RESULT_COLUMNS[:4]
    )

    assert list(results) == list(RESULT_COLUMNS[:4])
    assert results["reconstruction_error"] is errors
    assert results["outlier_score"] is scores
    np.testing.assert_array_equal(results["p_value"], conformal_p_values(scores, calibration))
    np.testing.assert_array_equal(results["p_value"], [1.0, 0.5, 0.75])
    assert results["is_outlier"].dtype == np.int8
    np.testing.assert_array_equal(results["is_outlier"], [0, 1, 0])  # strictly above


def test_result_columns_describe_the_top_columns_of_outliers_only() -> None:
    contributions = pd.DataFrame(
        [[1.0, 9.0, 2.0], [5.0, 1.0, 7.0], [1.0, 1.0, 1.0]], columns=["a", "b", "c"]
    )
    asked: list[list[int]] = []

    def explain(rows: np.ndarray) -> pd.DataFrame:
        asked.append(rows.tolist())
        return take_rows(contributions, rows)

    scores = np.array([2.0, 0.0, 3.0])
    results = result_columns(
        scores,
        scores,
        threshold=1.0,
        calibration_scores=[],
        columns=["top_columns"],
        explain=explain,
    )

    assert asked == [[0, 2]]
    assert results["top_columns"] == [
        "b (x9.0); c (x2.0); a (x1.0)",
        "",
        "a (x1.0); b (x1.0); c (x1.0)",
    ]


def test_result_columns_of_no_rows_are_empty() -> None:
    empty = np.empty(0, dtype=np.float64)

    def explain(rows: np.ndarray) -> pd.DataFrame:
        raise AssertionError("explain was called without outliers")

    results = result_columns(
        empty,
        empty,
        threshold=1.0,
        calibration_scores=[1.0],
        columns=RESULT_COLUMNS,
        explain=explain,
    )

    assert results["top_columns"] == []
    with pytest.raises(TypeError, match="needs explain"):
        result_columns(empty, empty, threshold=1.0, calibration_scores=[], columns=["top_columns"])
    assert results["p_value"].shape == results["is_outlier"].shape == (0,)


def test_top_column_positions_agree_with_top_columns() -> None:
    contributions = np.random.default_rng(0).random((20, 5))
    contributions[3] = 1.0  # ties keep the column order
    names = list("abcde")

    positions = top_column_positions(contributions, 3)

    assert positions.shape == (20, 3)
    assert positions[3].tolist() == [0, 1, 2]
    described = [
        "; ".join(f"{names[j]} (x{row[j]:.1f})" for j in best)
        for row, best in zip(contributions, positions, strict=True)
    ]
    assert described == top_columns(contributions, names, 3)
