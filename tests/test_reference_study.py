"""The reference study: MNIST digits are normal, Fashion-MNIST clothes are outliers.

The real data are found only through ``$HOURGLASS_DATA``; the tests that need
them skip when it is unset. One model is trained per module (about 2 s).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from hourglass import AutoencoderOutlierDetector, reference_study
from hourglass.datasets import load_mnist
from hourglass.exceptions import DatasetError, InvalidParameterError
from hourglass.reference_study import Protocol, load_protocol, outlier_metrics, run_demo


@pytest.fixture(scope="module")
def data_dir() -> Path:
    folder = os.environ.get("HOURGLASS_DATA")
    if not folder:
        pytest.skip("HOURGLASS_DATA is not set: no MNIST / Fashion-MNIST to test on")
    return Path(folder)


@pytest.fixture(scope="module")
def p1(data_dir: Path) -> Protocol:
    return load_protocol("P1", data_dir=data_dir)


@pytest.fixture(scope="module")
def detector(p1: Protocol) -> AutoencoderOutlierDetector:
    """The default detector, trained on MNIST digits for 3 epochs."""
    return AutoencoderOutlierDetector(epochs=3, random_state=0, verbose=0).fit(p1.train)


# ------------------------------------------------------------- integration


@pytest.mark.slow
def test_default_detector_trained_on_mnist_flags_fashion_mnist(
    p1: Protocol, detector: AutoencoderOutlierDetector
) -> None:
    # A quality floor on real data: about 0.98 at the time of writing.
    scores = outlier_metrics(
        detector.reconstruction_error(p1.normal), detector.reconstruction_error(p1.outliers)
    )

    assert scores["auroc"] >= 0.95
    assert scores["average_precision"] >= 0.95


@pytest.mark.slow
def test_the_threshold_keeps_its_false_positive_rate_on_held_out_digits(
    p1: Protocol, detector: AutoencoderOutlierDetector
) -> None:
    flagged_digits = np.mean(detector.predict(p1.normal) == -1)
    flagged_clothes = np.mean(detector.predict(p1.outliers) == -1)

    assert flagged_digits <= 0.03  # fpr=0.01 by default, on 2,000 held-out digits
    assert flagged_clothes > 0.3


# ------------------------------------------------- the reference write-up's bug


def mean_intensity(images: NDArray[np.uint8]) -> NDArray[np.float64]:
    """What the reference write-up reported as Fashion-MNIST's "error"."""
    return np.asarray(images.mean(axis=(1, 2)) / 255, dtype=np.float64)


@pytest.mark.slow
def test_fashion_error_is_the_reconstruction_error_not_the_mean_intensity(
    p1: Protocol, detector: AutoencoderOutlierDetector
) -> None:
    clothes = p1.outliers[:500]

    errors = detector.reconstruction_error(clothes)

    assert not np.allclose(errors, mean_intensity(clothes), atol=1e-3)
    expected = np.abs(clothes / 255 - detector.reconstruct(clothes)).mean(axis=(1, 2))
    np.testing.assert_allclose(errors, expected, rtol=0, atol=1e-6)


# ---------------------------------------------------------------- protocols


def test_p1_trains_on_digits_and_holds_out_digits_and_clothes(p1: Protocol) -> None:
    assert p1.name == "P1"
    assert (p1.normal_name, p1.outlier_name) == ("MNIST", "Fashion-MNIST")
    for images in (p1.train, p1.normal, p1.outliers):
        assert images.dtype == np.uint8
        assert images.shape[1:] == (28, 28)
    assert p1.outliers.shape[0] == 10_000
    assert p1.normal_labels.shape == (p1.normal.shape[0],)
    assert p1.outlier_labels.shape == (10_000,)


def test_p1_without_the_mnist_training_split_uses_the_documented_fixed_split(
    p1: Protocol, data_dir: Path
) -> None:
    try:
        load_mnist("train", data_dir=data_dir, download=False)
    except DatasetError:
        pass
    else:
        pytest.skip("the MNIST training split is present: P1 trains on it")
    images, labels = load_mnist("test", data_dir=data_dir)
    perm = np.random.default_rng(0).permutation(10_000)

    assert "fixed split" in p1.description
    assert (p1.train.shape[0], p1.normal.shape[0]) == (8000, 2000)
    np.testing.assert_array_equal(p1.train, images[perm[:8000]])
    np.testing.assert_array_equal(p1.normal, images[perm[8000:]])
    np.testing.assert_array_equal(p1.normal_labels, labels[perm[8000:]])


def test_p2_trains_on_clothes_and_detects_digits(data_dir: Path) -> None:
    p2 = load_protocol("P2", data_dir=data_dir)

    assert p2.name == "P2"
    assert (p2.normal_name, p2.outlier_name) == ("Fashion-MNIST", "MNIST")
    assert p2.train.shape == (60_000, 28, 28)
    assert p2.normal.shape == (10_000, 28, 28)
    assert p2.outliers.shape == (10_000, 28, 28)
    assert p2.normal_labels.shape == p2.outlier_labels.shape == (10_000,)


def test_unknown_protocol_is_rejected() -> None:
    with pytest.raises(
        InvalidParameterError, match=r"Unknown protocol 'P3'; expected 'P1' or 'P2'"
    ):
        load_protocol("P3")


# ------------------------------------------------------------------ metrics


def test_outlier_metrics_of_a_perfect_separation_are_one() -> None:
    normal = np.array([0.1, 0.2, 0.3])
    outliers = np.array([0.5, 0.9])

    assert outlier_metrics(normal, outliers) == {"auroc": 1.0, "average_precision": 1.0}


def test_outlier_metrics_treat_higher_scores_as_more_abnormal() -> None:
    normal = np.array([0.5, 0.9])
    outliers = np.array([0.1, 0.2, 0.3])

    assert outlier_metrics(normal, outliers)["auroc"] == 0.0


def test_outlier_metrics_of_identical_scores_are_chance() -> None:
    scores = outlier_metrics(np.full(4, 0.5), np.full(4, 0.5))

    assert scores["auroc"] == 0.5
    assert scores["average_precision"] == 0.5


# ---------------------------------------------------------------- run_demo


@pytest.mark.parametrize("train_size", [1, 0, -5])
def test_run_demo_rejects_too_few_training_images_before_loading_data(
    train_size: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_data(*args: object, **kwargs: object) -> Protocol:
        raise AssertionError("run_demo loaded the data before checking its arguments")

    monkeypatch.setattr(reference_study, "load_protocol", no_data)

    with pytest.raises(
        InvalidParameterError, match=f"train_size must be at least 2; got {train_size}"
    ):
        run_demo(data_dir=tmp_path, out=tmp_path / "out", train_size=train_size, verbose=0)
    assert not (tmp_path / "out").exists()


def test_p1_uses_the_whole_mnist_training_split_when_it_is_present(
    data_dir: Path, tmp_path: Path
) -> None:
    # A data folder with a (small, synthetic) MNIST training split beside the real
    # test splits: P1 must train on all of it and evaluate on the whole test split.
    from hourglass.data import write_idx

    mnist = tmp_path / "mnist"
    mnist.mkdir()
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (mnist / name).symlink_to(data_dir / "mnist" / name)
    (tmp_path / "fashion-mnist").symlink_to(data_dir / "fashion-mnist")
    images = np.random.default_rng(0).integers(0, 256, (120, 28, 28), dtype=np.uint8)
    write_idx(mnist / "train-images-idx3-ubyte.gz", images)
    write_idx(mnist / "train-labels-idx1-ubyte.gz", np.arange(120, dtype=np.uint8) % 10)

    protocol = load_protocol("P1", data_dir=tmp_path)

    np.testing.assert_array_equal(protocol.train, images)
    assert protocol.normal.shape == (10000, 28, 28)
    assert "training split" in protocol.description
    assert "fixed split" not in protocol.description
