"""A sample's scores, codes and reconstructions never depend on what it is scored with.

Scored alone, in any batch, at any position, with any companions, on one thread
or several: the same bits. CI runs this module under every kernel set
(``ATEN_CPU_CAPABILITY=default``, ``avx2``, ``avx512``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from test_determinism import FAMILIES, family_data, fit_detector

from helpers import mixed_table
from hourglass import AutoencoderOutlierDetector

N_ROWS = 300
METHODS = ("score_samples", "transform", "reconstruct")


def reference_images(n: int, seed: int) -> np.ndarray:
    """28x28 uint8 images with strokes and noise, the reference model's input shape."""
    rng = np.random.default_rng(seed)
    images = (rng.random((n, 28, 28)) * 60).astype(np.uint8)
    for image, row, column in zip(
        images, rng.integers(4, 24, n), rng.integers(4, 24, n), strict=True
    ):
        image[row - 2 : row + 2, :] = 255
        image[:, column - 1 : column + 1] = 200
    return images


def random_pieces(rng: np.random.Generator, n: int) -> Iterator[np.ndarray]:
    """A shuffled order of ``range(n)`` cut into consecutive pieces of 1 to 100 rows."""
    order = rng.permutation(n)
    start = 0
    while start < n:
        size = int(rng.integers(1, 101))
        yield order[start : start + size]
        start += size


def rows_of(data: Any, indices: np.ndarray) -> Any:
    if isinstance(data, pd.DataFrame):
        return data.iloc[indices]
    if isinstance(data, list):
        return [data[i] for i in indices]
    return data[indices]


def as_array(result: Any) -> np.ndarray:
    """Any method's output as an array to compare bit for bit (tables: their values)."""
    if isinstance(result, pd.DataFrame):
        return result.to_numpy(dtype=object)
    return np.asarray(result)


def assert_same_bits(a: np.ndarray, b: np.ndarray) -> None:
    assert a.shape == b.shape
    if a.dtype.kind == "f":
        # Bit patterns, so that -0.0 differs from 0.0 and NaNs compare.
        assert np.array_equal(a.view(f"u{a.dtype.itemsize}"), b.view(f"u{b.dtype.itemsize}"))
    else:
        assert np.array_equal(a, b)


def check_pieces(method: Callable[[Any], Any], data: Any, n: int, rng: np.random.Generator) -> None:
    whole = as_array(method(data))
    pieced = np.empty_like(whole)
    for indices in random_pieces(rng, n):
        pieced[indices] = as_array(method(rows_of(data, indices)))
    assert_same_bits(pieced, whole)


@pytest.fixture(scope="module")
def image_model() -> tuple[AutoencoderOutlierDetector, np.ndarray]:
    """The reference model's shapes: dense 784 -> 64 -> 784, sigmoid output."""
    images = reference_images(N_ROWS, 0)
    model = AutoencoderOutlierDetector(
        arch="dense", epochs=1, verbose=0, random_state=0, fpr=0.1
    ).fit(images)
    return model, reference_images(N_ROWS, 1)


@pytest.fixture(scope="module")
def table_model() -> tuple[AutoencoderOutlierDetector, pd.DataFrame]:
    model = AutoencoderOutlierDetector(
        arch="tabular", epochs=2, fpr=0.1, verbose=0, random_state=0
    ).fit(mixed_table(N_ROWS, 0))
    return model, mixed_table(N_ROWS, 1)


def model_and_data(kind: str, request: pytest.FixtureRequest) -> tuple[Any, Any]:
    return request.getfixturevalue(f"{'image' if kind == 'images' else 'table'}_model")


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("kind", ["images", "table"])
def test_random_partitions_give_the_bits_of_the_whole(
    kind: str, method: str, request: pytest.FixtureRequest
) -> None:
    model, data = model_and_data(kind, request)
    for seed in range(3):
        check_pieces(getattr(model, method), data, N_ROWS, np.random.default_rng(seed))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("kind", ["images", "table"])
def test_every_row_alone_gives_the_bits_of_the_whole(
    kind: str, method: str, request: pytest.FixtureRequest
) -> None:
    model, data = model_and_data(kind, request)
    whole = as_array(getattr(model, method)(data))
    for i in range(N_ROWS):
        assert_same_bits(
            as_array(getattr(model, method)(rows_of(data, np.array([i])))), whole[i : i + 1]
        )


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_the_thread_count_does_not_change_the_bits(
    threads: int, image_model: tuple[AutoencoderOutlierDetector, np.ndarray]
) -> None:
    model, images = image_model
    many = np.concatenate([images] * 4)  # several blocks, computed side by side
    expected = model.score_samples(many)
    model.set_params(num_threads=threads)
    try:
        assert_same_bits(model.score_samples(many), expected)
    finally:
        model.set_params(num_threads=None)


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_is_batch_invariant(family: str) -> None:
    data = family_data(family)
    model = fit_detector(family, data, epochs=1, seed=1)
    n = len(data)
    for method in METHODS:
        check_pieces(getattr(model, method), data, n, np.random.default_rng(7))
        whole = as_array(getattr(model, method)(data))
        for i in (0, n // 2, n - 1):
            assert_same_bits(
                as_array(getattr(model, method)(rows_of(data, np.array([i])))), whole[i : i + 1]
            )


@pytest.mark.parametrize("arch", ["sequence", "transformer"])
def test_texts_of_different_lengths_score_as_they_would_alone(arch: str) -> None:
    """Texts are grouped by length: a long companion changes nothing for a short text."""
    texts = ["ab", "the cat sat on the mat " * 6, "a dog ran far away", "x" * 200, "hi there"] * 8
    model = AutoencoderOutlierDetector(
        arch=arch,
        hidden_dims=(16,),
        latent_dim=4,
        epochs=1,
        fpr=0.2,
        verbose=0,
        random_state=0,
    ).fit(texts)
    rng = np.random.default_rng(3)
    for method in METHODS:
        check_pieces(getattr(model, method), texts, len(texts), rng)
