"""Complexity features and the complexity-corrected score."""

from __future__ import annotations

import numpy as np
import pytest

from hourglass.complexity import complexity_features, corrected_scores, fit_correction


def test_a_noisy_image_is_more_complex_than_a_blank_or_a_simple_one() -> None:
    rng = np.random.default_rng(0)
    blank = np.zeros((8, 8))
    bar = np.zeros((8, 8))
    bar[:, 3:5] = 1.0
    noise = rng.random((8, 8))
    features = complexity_features(np.stack([blank, bar, noise]))
    assert features.shape == (3, 2)
    assert np.isfinite(features).all()
    assert features[0, 0] < features[1, 0] < features[2, 0]  # compressed size
    assert features[0, 1] < features[1, 1] < features[2, 1]  # total variation


def test_channels_and_out_of_range_values_are_handled() -> None:
    images = np.random.default_rng(1).normal(0.5, 1.0, (4, 3, 6, 6))
    features = complexity_features(images)
    assert features.shape == (4, 2)
    np.testing.assert_array_equal(features, complexity_features(np.clip(images, 0, 1)))


def test_features_need_images() -> None:
    with pytest.raises(ValueError, match="needs images"):
        complexity_features(np.zeros((3, 5)))


def test_the_correction_recovers_a_log_linear_relation_and_scores_its_residual() -> None:
    rng = np.random.default_rng(2)
    features = rng.normal(size=(500, 2))
    errors = np.exp(0.8 * features[:, 0] - 0.3 * features[:, 1] - 2.0)
    coefficients = fit_correction(errors, features)
    np.testing.assert_allclose(coefficients, [0.8, -0.3, -2.0], atol=1e-4)
    np.testing.assert_allclose(corrected_scores(errors, features, coefficients), 0.0, atol=1e-4)
    worse = corrected_scores(errors * np.e, features, coefficients)
    np.testing.assert_allclose(worse, 1.0, atol=1e-4)  # e times the expected error: score 1
