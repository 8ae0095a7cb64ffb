from __future__ import annotations

import dataclasses
import gzip
import os
from pathlib import Path

import numpy as np
import pytest

import hourglass.datasets
from hourglass.data import registry, write_idx
from hourglass.datasets import load_fashion_mnist, load_mnist
from hourglass.exceptions import DatasetError

IMAGES, LABELS = "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No network, no real cache, no system folders."""
    monkeypatch.setenv("HOURGLASS_CACHE", str(tmp_path / "cache"))
    for name, info in list(registry.DATASETS.items()):
        replaced = dataclasses.replace(info, mirrors=(), system_dirs=())
        monkeypatch.setitem(registry.DATASETS, name, replaced)
    return tmp_path


def write_split(folder: Path, n_images: int = 5, n_labels: int = 5) -> None:
    write_idx(folder / IMAGES, np.full((n_images, 28, 28), 3, dtype=np.uint8))
    write_idx(folder / LABELS, np.arange(n_labels, dtype=np.uint8))


def test_public_names() -> None:
    assert {"load_mnist", "load_fashion_mnist", "list_datasets", "default_cache_dir"} <= set(
        hourglass.datasets.__all__
    )
    for name in hourglass.datasets.__all__:
        assert getattr(hourglass.datasets, name).__doc__


@pytest.mark.parametrize("load", [load_mnist, load_fashion_mnist])
@pytest.mark.parametrize("in_subfolder", [False, True])
def test_data_dir_directly_or_in_the_dataset_subfolder(
    isolated: Path, load: object, in_subfolder: bool
) -> None:
    name = "mnist" if load is load_mnist else "fashion-mnist"
    folder = isolated / "mine" / name if in_subfolder else isolated / "mine"
    write_split(folder)

    images, labels = load("test", data_dir=isolated / "mine", download=False)  # type: ignore[operator]

    assert images.shape == (5, 28, 28)
    assert images.dtype == np.uint8
    assert labels.tolist() == [0, 1, 2, 3, 4]


def test_truncated_local_file_names_the_file(isolated: Path) -> None:
    write_split(isolated)
    content = (isolated / IMAGES).read_bytes()
    (isolated / IMAGES).write_bytes(content[: len(content) // 2])
    with pytest.raises(DatasetError, match=rf"{IMAGES} is a damaged gzip file.*MNIST images"):
        load_mnist("test", data_dir=isolated, download=False)


def test_local_file_with_short_payload_names_the_file(isolated: Path) -> None:
    write_split(isolated)
    header = b"\x00\x00\x08\x03" + (5).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    (isolated / IMAGES).write_bytes(gzip.compress(header + bytes(100)))
    with pytest.raises(DatasetError, match=rf"{IMAGES} is truncated.*needs 3920 bytes.*got 100"):
        load_mnist("test", data_dir=isolated, download=False)


def test_local_file_with_wrong_dimensions(isolated: Path) -> None:
    write_split(isolated)
    write_idx(isolated / IMAGES, np.zeros((5, 27, 27), dtype=np.uint8))
    with pytest.raises(
        DatasetError,
        match=r"expected a uint8 array of shape \(n, 28, 28\), "
        r"got a uint8 array of shape \(5, 27, 27\)",
    ):
        load_mnist("test", data_dir=isolated, download=False)


def test_labels_of_wrong_dtype(isolated: Path) -> None:
    write_split(isolated)
    write_idx(isolated / LABELS, np.arange(5, dtype=np.int32))
    with pytest.raises(
        DatasetError, match=rf"{LABELS} does not hold MNIST labels.*got a int32 array"
    ):
        load_mnist("test", data_dir=isolated, download=False)


def test_mismatched_image_and_label_counts(isolated: Path) -> None:
    write_split(isolated, n_images=5, n_labels=4)
    with pytest.raises(DatasetError, match=r"holds 5 images but .* holds 4 labels"):
        load_mnist("test", data_dir=isolated, download=False)


# -- the real files ------------------------------------------------------------------------------


@pytest.fixture
def real_data() -> Path:
    if not os.environ.get("HOURGLASS_DATA"):
        pytest.skip(
            "HOURGLASS_DATA is not set: point it at the shared data folder to run this test"
        )
    return Path(os.environ["HOURGLASS_DATA"])


@pytest.mark.parametrize("load", [load_mnist, load_fashion_mnist])
def test_real_test_split(real_data: Path, load: object) -> None:
    images, labels = load("test", download=False)  # type: ignore[operator]

    assert images.shape == (10000, 28, 28)
    assert images.dtype == labels.dtype == np.uint8
    assert labels.shape == (10000,)
    assert np.bincount(labels).tolist() == (
        [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
        if load is load_mnist
        else [1000] * 10
    )
    assert images.max() == 255
