"""Denoising autoencoders: trained on corrupted input, they restore the clean data."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.utils._param_validation import InvalidParameterError

from helpers import bar_images
from hourglass import Autoencoder, load
from hourglass.image_metrics import psnr


def _strokes(n: int, seed: int) -> np.ndarray:
    """Bar images as float32 in [0, 1]."""
    return bar_images(n, seed).astype(np.float32) / 255


def _noisy(images: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(images.shape).astype(np.float32)
    return np.clip(images + sigma * noise, 0.0, 1.0)


@pytest.fixture(scope="module")
def denoiser() -> Autoencoder:
    return Autoencoder(
        latent_dim=16, noise="gaussian", noise_strength=0.4, epochs=40, verbose=0, random_state=0
    ).fit(_strokes(2000, seed=0))


def test_denoising_raises_psnr_well_above_the_noisy_input(denoiser: Autoencoder) -> None:
    clean = _strokes(300, seed=1)
    noisy = _noisy(clean, 0.4, seed=2)
    before = psnr(clean, noisy).mean()
    after = psnr(clean, denoiser.denoise(noisy)).mean()
    assert after > before + 6.0


def test_denoise_is_reconstruct_and_is_saved_with_the_model(
    denoiser: Autoencoder, tmp_path
) -> None:
    noisy = _noisy(_strokes(50, seed=3), 0.4, seed=4)
    np.testing.assert_array_equal(denoiser.denoise(noisy), denoiser.reconstruct(noisy))
    restored = load(denoiser.save(tmp_path / "model"))
    assert restored.get_params()["noise"] == "gaussian"
    assert restored.get_params()["noise_strength"] == 0.4
    np.testing.assert_array_equal(restored.denoise(noisy), denoiser.denoise(noisy))


@pytest.mark.parametrize("noise", ["gaussian", "salt_pepper", "mask"])
def test_training_with_noise_is_reproducible(noise: str) -> None:
    X = _strokes(300, seed=5)
    fits = [
        Autoencoder(
            latent_dim=4, noise=noise, noise_strength=0.2, epochs=2, verbose=0, random_state=3
        ).fit(X, validation_data=X[:50])
        for _ in range(2)
    ]
    np.testing.assert_array_equal(fits[0].reconstruct(X), fits[1].reconstruct(X))
    for key in ("loss", "val_loss"):  # logged sums may differ in the last digits only
        assert fits[0].history_[key] == pytest.approx(fits[1].history_[key], rel=1e-6)


def test_validation_loss_is_measured_on_corrupted_inputs() -> None:
    X = _strokes(400, seed=6)
    plain = Autoencoder(latent_dim=4, epochs=3, verbose=0, random_state=0)
    noisy = Autoencoder(
        latent_dim=4, epochs=3, verbose=0, random_state=0, noise="mask", noise_strength=0.9
    )
    # Same weights up to the corruption; hiding 90% of every input must cost loss.
    plain.fit(X, validation_data=X)
    noisy.fit(X, validation_data=X)
    assert noisy.history_["val_loss"][-1] > plain.history_["val_loss"][-1]


def test_a_fraction_above_one_is_rejected_for_fraction_noises() -> None:
    X = _strokes(100, seed=7)
    with pytest.raises(InvalidParameterError, match=r"'noise_strength'.*must be in \(0, 1\]"):
        Autoencoder(noise="mask", noise_strength=1.5, epochs=1, verbose=0).fit(X)
    Autoencoder(noise="gaussian", noise_strength=1.5, epochs=1, verbose=0).fit(X)  # a std: fine


@pytest.mark.parametrize("arch", ["conv", "vae", "conv_vae"])
def test_every_image_family_trains_as_a_denoiser(arch: str) -> None:
    clean = _strokes(1000, seed=8)
    model = Autoencoder(
        arch=arch,
        latent_dim=8,
        noise="gaussian",
        noise_strength=0.3,
        epochs=30,
        learning_rate=3e-3,
        verbose=0,
        random_state=0,
    ).fit(clean)
    test = _strokes(50, seed=9)
    noisy = _noisy(test, 0.3, seed=10)
    denoised = model.denoise(noisy)
    assert denoised.shape == noisy.shape
    assert psnr(test, denoised).mean() > psnr(test, noisy).mean() + 6.0
