"""Image quality: PSNR and SSIM of restored images against clean ones.

Both compare each image separately and return one value per image; average
them for a data set. Images are arrays of shape (n, h, w) with values in
``[0, data_range]``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.ndimage import uniform_filter

__all__ = ["psnr", "ssim"]


def _as_images(images: ArrayLike) -> NDArray[np.float64]:
    array = np.asarray(images, dtype=np.float64)
    if array.ndim == 2:
        array = array[np.newaxis]
    if array.ndim != 3:
        raise ValueError(f"Expected images of shape (n, h, w); got shape {array.shape}.")
    return array


def psnr(clean: ArrayLike, restored: ArrayLike, *, data_range: float = 1.0) -> NDArray[np.float64]:
    """Peak signal-to-noise ratio of each image, in decibels (higher is better).

    ``10 * log10(data_range**2 / MSE)``; identical images give ``inf``.

    Examples
    --------
    >>> clean = np.zeros((1, 4, 4))
    >>> psnr(clean, clean + 0.1).round(6)
    array([20.])
    """
    a, b = _as_images(clean), _as_images(restored)
    mse = np.mean((a - b) ** 2, axis=(1, 2))
    with np.errstate(divide="ignore"):
        return np.asarray(10.0 * np.log10(data_range**2 / mse), dtype=np.float64)


def ssim(
    clean: ArrayLike, restored: ArrayLike, *, data_range: float = 1.0, window: int = 7
) -> NDArray[np.float64]:
    """Structural similarity (Wang et al., 2004) of each image, in [-1, 1] (higher is better).

    Local means, variances and covariance over ``window`` × ``window`` uniform
    windows (sample statistics), constants ``K1 = 0.01`` and ``K2 = 0.03``, the
    mean over the windows that fit inside the image: the usual defaults (those
    of scikit-image's ``structural_similarity`` for grey images).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> image = rng.random((1, 28, 28))
    >>> float(ssim(image, image)[0])
    1.0
    """
    a, b = _as_images(clean), _as_images(restored)
    size = (1, window, window)  # filter within each image, not across images
    n_pixels = window * window
    correction = n_pixels / (n_pixels - 1)  # sample, not population, (co)variances
    mean_a, mean_b = uniform_filter(a, size), uniform_filter(b, size)
    var_a = correction * (uniform_filter(a * a, size) - mean_a**2)
    var_b = correction * (uniform_filter(b * b, size) - mean_b**2)
    cov = correction * (uniform_filter(a * b, size) - mean_a * mean_b)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    index = ((2 * mean_a * mean_b + c1) * (2 * cov + c2)) / (
        (mean_a**2 + mean_b**2 + c1) * (var_a + var_b + c2)
    )
    margin = (window - 1) // 2  # windows that would cross the border are left out
    inner = index[:, margin : a.shape[1] - margin, margin : a.shape[2] - margin]
    return np.asarray(inner.mean(axis=(1, 2)), dtype=np.float64)
