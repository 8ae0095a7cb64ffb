"""Small data generators shared by test modules (``pythonpath`` includes ``tests/``)."""

from __future__ import annotations

import numpy as np


def bar_images(n: int, seed: int, shape: tuple[int, ...] = (12, 12)) -> np.ndarray:
    """uint8 images of one random horizontal or vertical bar: simple structure to learn.

    ``shape`` is (h, w), or (c, h, w) for the same bar in every channel.
    """
    rng = np.random.default_rng(seed)
    height, width = shape[-2:]
    images = np.zeros((n, height, width), dtype=np.uint8)
    for image, vertical, at in zip(
        images, rng.integers(0, 2, n), rng.integers(1, width - 1, n), strict=True
    ):
        if vertical:
            image[:, at - 1 : at + 1] = 255
        else:
            image[at - 1 : at + 1, :] = 255
    if len(shape) == 3:
        images = np.repeat(images[:, np.newaxis], shape[0], axis=1)
    return images
