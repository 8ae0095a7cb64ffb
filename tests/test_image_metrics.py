"""PSNR and SSIM."""

from __future__ import annotations

import numpy as np
import pytest

from hourglass.image_metrics import psnr, ssim


def test_psnr_of_a_known_error_and_of_identical_images() -> None:
    clean = np.zeros((2, 8, 8))
    np.testing.assert_allclose(psnr(clean, clean + 0.1), [20.0, 20.0])
    np.testing.assert_allclose(psnr(clean, clean + 25.5, data_range=255.0), [20.0, 20.0])
    assert np.isinf(psnr(clean, clean)).all()


def test_ssim_is_one_for_identical_images_and_falls_with_noise() -> None:
    rng = np.random.default_rng(0)
    clean = rng.random((3, 28, 28))
    assert ssim(clean, clean) == pytest.approx(1.0)
    slightly = np.clip(clean + 0.05 * rng.standard_normal(clean.shape), 0, 1)
    badly = np.clip(clean + 0.5 * rng.standard_normal(clean.shape), 0, 1)
    assert (ssim(clean, badly) < ssim(clean, slightly)).all()
    assert (ssim(clean, slightly) < 1.0).all()


def test_ssim_ignores_brightness_offsets_less_than_psnr_does() -> None:
    rng = np.random.default_rng(1)
    clean = 0.2 + 0.6 * rng.random((1, 16, 16))
    shifted = clean + 0.1
    assert ssim(clean, shifted)[0] > 0.8
    assert psnr(clean, shifted)[0] == pytest.approx(20.0)


def test_a_single_image_is_accepted_and_other_shapes_are_not() -> None:
    image = np.ones((5, 5))
    assert psnr(image, image * 0.5).shape == (1,)
    with pytest.raises(ValueError, match=r"\(n, h, w\)"):
        psnr(np.ones(5), np.ones(5))
