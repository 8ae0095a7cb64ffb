"""``invariance=``: codes that group images by content, not position."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import KMeans

from helpers import bar_images
from hourglass import Autoencoder, AutoencoderOutlierDetector, load
from hourglass.exceptions import InvalidInputError


def _bars(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Bar images and whether each bar is vertical."""
    images = bar_images(n, seed, shape=(16, 16))
    vertical = (images.sum(axis=1) > 0).sum(axis=1) <= 3  # a vertical bar fills few columns
    return images, vertical


def _orientation_agreement(codes: np.ndarray, vertical: np.ndarray) -> float:
    clusters = KMeans(2, n_init=10, random_state=0).fit_predict(codes)
    agreement = float(np.mean(clusters == vertical))
    return max(agreement, 1 - agreement)


@pytest.fixture(scope="module")
def bars() -> tuple[np.ndarray, np.ndarray]:
    return _bars(600, seed=0)


def test_invariant_codes_cluster_bars_by_orientation_not_position(bars) -> None:
    images, vertical = bars
    settings = {"arch": "conv", "latent_dim": 8, "epochs": 15, "verbose": 0, "random_state": 0}
    invariant = Autoencoder(**settings, invariance=1.0).fit(images)
    plain = Autoencoder(**settings).fit(images)
    assert _orientation_agreement(invariant.transform(images), vertical) > 0.95
    assert _orientation_agreement(plain.transform(images), vertical) < 0.9


def test_invariant_codes_are_unit_vectors_and_survive_save_and_load(bars, tmp_path) -> None:
    images, _ = bars
    model = Autoencoder(latent_dim=4, epochs=2, invariance=0.5, verbose=0, random_state=0)
    model.fit(images[:100])
    codes = model.transform(images[:50])
    np.testing.assert_allclose(np.linalg.norm(codes, axis=1), 1.0, rtol=1e-5)
    assert set(model.history_) >= {"loss", "mae", "contrastive"}
    model.save(tmp_path / "model")
    np.testing.assert_array_equal(load(tmp_path / "model").transform(images[:50]), codes)


def test_training_with_invariance_is_reproducible(bars) -> None:
    images, _ = bars
    settings = {"latent_dim": 4, "epochs": 2, "invariance": 1.0, "verbose": 0, "random_state": 3}
    first = Autoencoder(**settings).fit(images[:200]).transform(images[:20])
    second = Autoencoder(**settings).fit(images[:200]).transform(images[:20])
    np.testing.assert_array_equal(first, second)


def test_the_outlier_detector_accepts_invariance(bars) -> None:
    images, _ = bars
    detector = AutoencoderOutlierDetector(epochs=1, invariance=1.0, verbose=0, random_state=0)
    assert detector.fit(images).predict(images[:10]).shape == (10,)


@pytest.mark.parametrize(
    ("arch", "data"),
    [
        ("dense", np.random.default_rng(0).random((50, 12), dtype=np.float32)),
        ("vae", bar_images(50, 0)),
        ("sequence", ["some text", "more text"] * 10),
    ],
)
def test_invariance_needs_images_and_a_dense_or_conv_model(arch, data) -> None:
    with pytest.raises(InvalidInputError, match="invariance="):
        Autoencoder(arch=arch, epochs=1, invariance=1.0, verbose=0).fit(data)
