"""``score_type``: the complexity-corrected outlier score of image detectors."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import hourglass
from helpers import bar_images, mixed_table
from hourglass import AutoencoderOutlierDetector
from hourglass.exceptions import InvalidInputError
from hourglass.reference_study import load_protocol, outlier_metrics

SETTINGS = {"latent_dim": 4, "epochs": 5, "fpr": 0.05, "verbose": 0, "random_state": 0}


def textured(n: int, seed: int) -> np.ndarray:
    """Busy images: a bar plus strong pixel noise (hard to reconstruct, hard to compress)."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 160, (n, 12, 12))
    return np.clip(bar_images(n, seed).astype(int) + noise, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training images, held-out normal images, and other images (plain bars)."""
    return textured(600, 0), textured(100, 1), bar_images(100, 2)


@pytest.fixture(scope="module")
def data_dir() -> Path:
    folder = os.environ.get("HOURGLASS_DATA")
    if not folder:
        pytest.skip("HOURGLASS_DATA is not set: no MNIST / Fashion-MNIST to test on")
    return Path(folder)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("protocol", "epochs", "error_floor", "complexity_floor"),
    [("P1", 5, 0.98, 0.99), ("P2", 3, 0.85, 0.99)],
)
def test_the_complexity_score_catches_outliers_in_both_directions(
    data_dir: Path, protocol: str, epochs: int, error_floor: float, complexity_floor: float
) -> None:
    """P2 is the hard direction: MNIST digits are simpler than the clothes the model knows.

    Measured with the gradient features: P1 error 0.992, complexity 0.997; P2 error 0.933,
    complexity 0.999.
    """
    p = load_protocol(protocol, data_dir=data_dir)
    detector = AutoencoderOutlierDetector(epochs=epochs, random_state=0, verbose=0).fit(p.train)
    assert detector.score_type_ == "complexity"
    error = outlier_metrics(
        detector.reconstruction_error(p.normal), detector.reconstruction_error(p.outliers)
    )
    corrected = outlier_metrics(
        detector.outlier_score(p.normal), detector.outlier_score(p.outliers)
    )
    assert error["auroc"] >= error_floor
    assert corrected["auroc"] >= complexity_floor
    assert corrected["auroc"] > error["auroc"]
    assert np.mean(detector.predict(p.normal) == -1) <= 0.02  # fpr=0.01 by default


def test_the_score_is_consistent_across_methods_and_save_and_load(data, tmp_path) -> None:
    train, normal, simple = data
    detector = AutoencoderOutlierDetector(**SETTINGS).fit(train)
    X = np.concatenate([normal, simple])
    scores = detector.outlier_score(X)
    np.testing.assert_array_equal(detector.score_samples(X), -scores)
    np.testing.assert_array_equal(detector.predict(X) == -1, scores > detector.threshold_)
    assert detector.calibration_scores_.shape == (120,)
    assert detector.complexity_coef_.shape == (3,)
    detector.save(tmp_path / "model")
    loaded = hourglass.load(tmp_path / "model")
    assert loaded.score_type_ == "complexity"
    np.testing.assert_array_equal(loaded.outlier_score(X), scores)
    np.testing.assert_array_equal(loaded.p_values(X), detector.p_values(X))


def test_the_error_score_is_the_reconstruction_error(data) -> None:
    train, normal, _ = data
    detector = AutoencoderOutlierDetector(**SETTINGS, score_type="error").fit(train)
    np.testing.assert_array_equal(
        detector.outlier_score(normal), detector.reconstruction_error(normal)
    )


@pytest.mark.parametrize(
    ("params", "expected"),
    [({}, "complexity"), ({"threshold": 0.1}, "error"), ({"score_type": "error"}, "error")],
)
def test_auto_uses_the_complexity_score_for_images_without_a_fixed_threshold(
    params, expected
) -> None:
    settings = {**SETTINGS, "epochs": 1}
    if "threshold" in params:
        settings.pop("fpr")
    detector = AutoencoderOutlierDetector(**settings, **params).fit(bar_images(200, 0))
    assert detector.score_type_ == expected


def test_tables_and_flat_rows_use_the_distance_or_the_error() -> None:
    rows = np.random.default_rng(0).random((200, 6), dtype=np.float32)
    assert AutoencoderOutlierDetector(**SETTINGS).fit(rows).score_type_ == "distance"
    table = AutoencoderOutlierDetector(**SETTINGS, arch="tabular").fit(mixed_table(200, 0))
    assert table.score_type_ == "distance"
    dense = AutoencoderOutlierDetector(**SETTINGS, arch="dense").fit(rows)
    assert dense.score_type_ == "error"


def test_the_complexity_score_needs_images() -> None:
    rows = np.random.default_rng(0).random((200, 6), dtype=np.float32)
    with pytest.raises(InvalidInputError, match="score_type='complexity' measures"):
        AutoencoderOutlierDetector(**SETTINGS, score_type="complexity").fit(rows)


def test_float_images_with_a_linear_output_are_scaled_to_their_range() -> None:
    images = bar_images(200, 0).astype(np.float32) * 4 - 100  # values in [-100, 920]
    detector = AutoencoderOutlierDetector(**{**SETTINGS, "epochs": 1}).fit(images)
    assert detector.output_activation_ == "linear"
    assert np.isfinite(detector.outlier_score(images[:20])).all()


def test_uint8_images_and_the_same_images_as_floats_get_the_same_score(data) -> None:
    train, normal, _ = data
    detector = AutoencoderOutlierDetector(**SETTINGS).fit(train)
    as_floats = normal.astype(np.float32) / 255
    np.testing.assert_allclose(
        detector.outlier_score(as_floats), detector.outlier_score(normal), rtol=1e-5
    )
    np.testing.assert_allclose(
        detector.outlier_score(normal.reshape(len(normal), -1)), detector.outlier_score(normal)
    )


@pytest.mark.parametrize("score_type", ["error", "complexity"])
def test_errors_and_scores_are_the_error_and_the_score_from_one_pass(data, score_type) -> None:
    train, normal, _ = data
    detector = AutoencoderOutlierDetector(**SETTINGS, score_type=score_type).fit(train)
    errors, scores = detector.errors_and_scores(normal)
    np.testing.assert_array_equal(errors, detector.reconstruction_error(normal))
    np.testing.assert_array_equal(scores, detector.outlier_score(normal))
