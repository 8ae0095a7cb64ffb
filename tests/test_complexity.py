"""Complexity features and the complexity-corrected score."""

from __future__ import annotations

import numpy as np
import pytest

from hourglass.complexity import (
    DEFAULT_FEATURES,
    FEATURE_SETS,
    LOG_EPSILON,
    complexity_features,
    corrected_scores,
    fit_correction,
)


@pytest.mark.parametrize("feature_set", FEATURE_SETS)
def test_a_noisy_image_is_more_complex_than_a_blank_or_a_simple_one(feature_set: str) -> None:
    rng = np.random.default_rng(0)
    blank = np.zeros((8, 8))
    bar = np.zeros((8, 8))
    bar[:, 3:5] = 1.0
    noise = rng.random((8, 8))
    features = complexity_features(np.stack([blank, bar, noise]), feature_set)
    assert features.shape == (3, 2)
    assert np.isfinite(features).all()
    assert (features[0] < features[1]).all()
    assert (features[1] < features[2]).all()


def test_the_gradient_features_are_log_total_variation_and_log_gradient_energy() -> None:
    image = np.array([[0.0, 0.5, 0.5], [0.0, 0.0, 1.0]])
    # Horizontal differences 0.5, 0, 0, 1; vertical 0, -0.5, 0.5.
    features = complexity_features(image[None])
    np.testing.assert_allclose(
        features, [[np.log(2.5 + LOG_EPSILON), np.log(1.75 + LOG_EPSILON)]], rtol=1e-12
    )
    # The zlib set's total variation is of the image quantised to 8 bits (0.5 -> 128/255).
    quantised = np.rint(image * 255) / 255
    zlib_features = complexity_features(image[None], "zlib")
    assert zlib_features[0, 1] == pytest.approx(complexity_features(quantised[None])[0, 0])


def test_the_default_features_are_the_gradient_ones() -> None:
    images = np.random.default_rng(3).random((5, 7, 7))
    assert DEFAULT_FEATURES == "gradient"
    np.testing.assert_array_equal(
        complexity_features(images), complexity_features(images, "gradient")
    )


@pytest.mark.parametrize("feature_set", FEATURE_SETS)
def test_channels_and_out_of_range_values_are_handled(feature_set: str) -> None:
    images = np.random.default_rng(1).normal(0.5, 1.0, (4, 3, 6, 6))
    features = complexity_features(images, feature_set)
    assert features.shape == (4, 2)
    np.testing.assert_array_equal(features, complexity_features(np.clip(images, 0, 1), feature_set))


@pytest.mark.parametrize("feature_set", FEATURE_SETS)
def test_an_images_features_do_not_depend_on_the_other_images(feature_set: str) -> None:
    images = np.random.default_rng(4).random((37, 28, 28)).astype(np.float32)
    together = complexity_features(images, feature_set)
    alone = np.concatenate([complexity_features(image[None], feature_set) for image in images])
    np.testing.assert_array_equal(together, alone)


def test_features_need_images_and_a_known_feature_set() -> None:
    with pytest.raises(ValueError, match="needs images"):
        complexity_features(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="feature_set must be one of"):
        complexity_features(np.zeros((3, 5, 5)), "bzip2")


def test_the_correction_recovers_a_log_linear_relation_and_scores_its_residual() -> None:
    rng = np.random.default_rng(2)
    features = rng.normal(size=(500, 2))
    errors = np.exp(0.8 * features[:, 0] - 0.3 * features[:, 1] - 2.0)
    coefficients = fit_correction(errors, features)
    np.testing.assert_allclose(coefficients, [0.8, -0.3, -2.0], atol=1e-4)
    np.testing.assert_allclose(corrected_scores(errors, features, coefficients), 0.0, atol=1e-4)
    worse = corrected_scores(errors * np.e, features, coefficients)
    np.testing.assert_allclose(worse, 1.0, atol=1e-4)  # e times the expected error: score 1
