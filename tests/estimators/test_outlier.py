"""The outlier detector: score conventions, the three threshold rules, calibration, p-values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sklearn.exceptions
from sklearn.utils._param_validation import InvalidParameterError

from helpers import DENSE_FAST
from hourglass import AutoencoderOutlierDetector
from hourglass.exceptions import HourglassError, InvalidInputError, NotFittedError
from hourglass.scoring import conformal_p_values, conformal_threshold

FAST = DENSE_FAST  # these tests are about the dense family

# Normal data lie near a 2-D plane in R^10; outliers do not.
_PLANE = np.random.default_rng(0).normal(size=(2, 10))


def _normal(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, 2)) @ _PLANE + 0.05 * rng.normal(size=(n, 10))).astype(np.float32)


def _outliers(n: int, seed: int, spread: np.ndarray) -> np.ndarray:
    """Far from the plane: isotropic noise three times the normal data's spread."""
    return (3.0 * np.random.default_rng(seed).normal(size=(n, 10)) * spread).astype(np.float32)


@pytest.fixture(scope="module")
def train_data() -> np.ndarray:
    return _normal(5000, seed=1)


@pytest.fixture(scope="module")
def detector(train_data: np.ndarray) -> AutoencoderOutlierDetector:
    """fpr=0.05 with 1000 calibration samples (20% of 5000)."""
    return AutoencoderOutlierDetector(
        arch="dense",
        latent_dim=2,
        hidden_dims=(16,),
        epochs=10,
        learning_rate=1e-2,
        fpr=0.05,
        verbose=0,
        random_state=0,
    ).fit(train_data)


@pytest.fixture(scope="module")
def small_data() -> np.ndarray:
    return _normal(200, seed=2)


@pytest.fixture(scope="module")
def mixed(train_data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """4000 fresh normal samples and 50 planted outliers."""
    return _normal(4000, seed=3), _outliers(50, seed=4, spread=train_data.std(axis=0))


# ------------------------------------------------------------ score conventions


def test_score_samples_is_the_negated_reconstruction_error(
    detector: AutoencoderOutlierDetector, mixed: tuple[np.ndarray, np.ndarray]
) -> None:
    X = np.concatenate(mixed)

    np.testing.assert_array_equal(detector.score_samples(X), -detector.reconstruction_error(X))
    np.testing.assert_array_equal(
        detector.reconstruction_error(X), detector.reconstruction_error(X, metric="mae")
    )


def test_score_samples_uses_the_metric(small_data: np.ndarray) -> None:
    detector = AutoencoderOutlierDetector(
        **FAST, metric="mse", contamination=0.1, random_state=0
    ).fit(small_data)

    np.testing.assert_array_equal(
        detector.score_samples(small_data),
        -detector.reconstruction_error(small_data, metric="mse"),
    )


def test_decision_function_and_predict_follow_the_threshold(
    detector: AutoencoderOutlierDetector, mixed: tuple[np.ndarray, np.ndarray]
) -> None:
    X = np.concatenate(mixed)
    errors = detector.reconstruction_error(X)

    assert detector.offset_ == -detector.threshold_
    np.testing.assert_array_equal(
        detector.decision_function(X), detector.score_samples(X) - detector.offset_
    )
    labels = detector.predict(X)
    assert labels.dtype == np.int64
    assert set(np.unique(labels)) == {-1, 1}
    np.testing.assert_array_equal(labels, np.where(errors > detector.threshold_, -1, 1))


# ----------------------------------------------------------------- the fpr rule


def test_fpr_rule_stores_the_calibration(
    detector: AutoencoderOutlierDetector, train_data: np.ndarray
) -> None:
    assert detector.threshold_method_ == "fpr"
    assert detector.n_calibration_ == math.ceil(0.2 * len(train_data)) == 1000
    assert detector.calibration_scores_.shape == (1000,)
    assert detector.threshold_ == conformal_threshold(detector.calibration_scores_, 0.05)


def test_fpr_rule_controls_false_positives_on_fresh_normal_data(
    detector: AutoencoderOutlierDetector, mixed: tuple[np.ndarray, np.ndarray]
) -> None:
    fresh_normal, _ = mixed

    false_positive_rate = np.mean(detector.predict(fresh_normal) == -1)

    assert 0.02 <= false_positive_rate <= 0.08


def test_planted_outliers_are_caught(
    detector: AutoencoderOutlierDetector, mixed: tuple[np.ndarray, np.ndarray]
) -> None:
    fresh_normal, outliers = mixed

    assert (detector.predict(outliers) == -1).all()
    # Every planted outlier scores worse than every normal sample.
    assert detector.score_samples(outliers).max() < detector.score_samples(fresh_normal).min()
    # Above every calibration error: the smallest possible p-value, 1 / (m + 1).
    np.testing.assert_allclose(detector.p_values(outliers), 1 / 1001)


def test_p_values_are_conformal_against_the_calibration(
    detector: AutoencoderOutlierDetector, mixed: tuple[np.ndarray, np.ndarray]
) -> None:
    fresh_normal, _ = mixed

    p_values = detector.p_values(fresh_normal)

    np.testing.assert_array_equal(
        p_values,
        conformal_p_values(
            detector.reconstruction_error(fresh_normal), detector.calibration_scores_
        ),
    )
    assert ((p_values > 0) & (p_values <= 1)).all()
    assert np.mean(p_values <= 0.2) == pytest.approx(0.2, abs=0.05)  # about uniform
    # Flagging agrees with the p-values at the calibrated rate.
    np.testing.assert_array_equal(detector.predict(fresh_normal) == -1, p_values <= 0.05)


def test_default_rule_is_fpr_one_percent(small_data: np.ndarray) -> None:
    with pytest.warns(UserWarning, match="cannot guarantee a false-positive rate of 0.01"):
        detector = AutoencoderOutlierDetector(**FAST, random_state=0).fit(small_data)

    assert detector.threshold_method_ == "fpr"
    with pytest.warns(UserWarning, match="cannot guarantee"):  # 40 samples < 99 needed
        expected = conformal_threshold(detector.calibration_scores_, 0.01)
    assert detector.threshold_ == expected == detector.calibration_scores_.max()


def test_too_few_calibration_samples_warn_at_fit(small_data: np.ndarray) -> None:
    with pytest.warns(UserWarning, match=r"40 calibration samples cannot guarantee.*0\.01"):
        AutoencoderOutlierDetector(**FAST, fpr=0.01, random_state=0).fit(small_data)


# ------------------------------------------------------- the other two rules


@pytest.mark.parametrize("calibration_fraction", [0.0, 0.2])
def test_contamination_rule_flags_that_fraction_of_the_training_data(
    small_data: np.ndarray, calibration_fraction: float
) -> None:
    detector = AutoencoderOutlierDetector(
        **FAST, contamination=0.1, calibration_fraction=calibration_fraction, random_state=0
    ).fit(small_data)

    assert detector.threshold_method_ == "contamination"
    assert int(np.sum(detector.predict(small_data) == -1)) == 20  # 10% of 200
    assert detector.n_calibration_ == round(calibration_fraction * 200)


def test_without_calibration_there_are_no_p_values(small_data: np.ndarray) -> None:
    detector = AutoencoderOutlierDetector(
        **FAST, contamination=0.1, calibration_fraction=0.0, random_state=0
    ).fit(small_data)

    assert detector.n_calibration_ == 0
    assert detector.calibration_scores_.shape == (0,)
    with pytest.raises(HourglassError, match="calibration_fraction=0"):
        detector.p_values(small_data)


def test_threshold_rule_uses_the_given_value(small_data: np.ndarray) -> None:
    detector = AutoencoderOutlierDetector(**FAST, threshold=0.5, random_state=0).fit(small_data)
    errors = detector.reconstruction_error(small_data)

    assert detector.threshold_method_ == "fixed"
    assert detector.threshold_ == 0.5
    assert detector.offset_ == -0.5
    np.testing.assert_array_equal(detector.predict(small_data), np.where(errors > 0.5, -1, 1))


# ----------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "rules",
    [
        {"fpr": 0.1, "contamination": 0.1},
        {"fpr": 0.1, "threshold": 1.0},
        {"contamination": 0.1, "threshold": 1.0},
    ],
)
def test_two_threshold_rules_are_rejected(small_data: np.ndarray, rules: dict[str, float]) -> None:
    with pytest.raises(InvalidParameterError, match="at most one of 'fpr', 'contamination'"):
        AutoencoderOutlierDetector(**FAST, **rules).fit(small_data)


@pytest.mark.parametrize("fpr", [None, 0.1])
def test_fpr_rule_needs_calibration_data(small_data: np.ndarray, fpr: float | None) -> None:
    with pytest.raises(InvalidParameterError, match="calibration_fraction=0"):
        AutoencoderOutlierDetector(**FAST, fpr=fpr, calibration_fraction=0.0).fit(small_data)


def test_calibration_must_leave_training_samples() -> None:
    with pytest.raises(InvalidInputError, match="got 1 sample"):
        AutoencoderOutlierDetector(**FAST).fit(np.zeros((1, 3), dtype=np.float32))


@pytest.mark.parametrize("output_activation", ["auto", "linear"])
def test_bce_metric_on_linear_data_is_rejected(
    small_data: np.ndarray, output_activation: str
) -> None:
    with pytest.raises(InvalidInputError, match="metric='bce' needs"):
        AutoencoderOutlierDetector(
            **FAST,
            metric="bce",
            output_activation=output_activation,
            contamination=0.1,
            random_state=0,
        ).fit(small_data)


def test_bce_metric_on_unit_data_works() -> None:
    X = np.random.default_rng(0).random((100, 5), dtype=np.float32)

    detector = AutoencoderOutlierDetector(**FAST, metric="bce", fpr=0.1, random_state=0).fit(X)

    np.testing.assert_array_equal(
        detector.score_samples(X), -detector.reconstruction_error(X, metric="bce")
    )


@pytest.mark.parametrize(
    "method", ["score_samples", "decision_function", "predict", "p_values", "transform"]
)
def test_methods_before_fit_raise_not_fitted(method: str) -> None:
    with pytest.raises(NotFittedError) as error:
        getattr(AutoencoderOutlierDetector(), method)(np.zeros((2, 3), dtype=np.float32))
    assert isinstance(error.value, sklearn.exceptions.NotFittedError)


def test_fit_returns_self(small_data: np.ndarray) -> None:
    detector = AutoencoderOutlierDetector(**FAST, fpr=0.1, random_state=0)

    assert detector.fit(small_data) is detector


def test_same_random_state_gives_identical_scores(small_data: np.ndarray) -> None:
    first = AutoencoderOutlierDetector(**FAST, fpr=0.1, random_state=5).fit(small_data)
    second = AutoencoderOutlierDetector(**FAST, fpr=0.1, random_state=5).fit(small_data)

    np.testing.assert_array_equal(first.calibration_scores_, second.calibration_scores_)
    np.testing.assert_array_equal(first.score_samples(small_data), second.score_samples(small_data))
    assert first.threshold_ == second.threshold_
