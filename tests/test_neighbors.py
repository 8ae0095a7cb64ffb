"""Nearest neighbours in code space: the search, persistence, the CLI, and real MNIST retrieval."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hourglass import Autoencoder, load
from hourglass.cli import main
from hourglass.exceptions import InvalidInputError, InvalidParameterError
from hourglass.neighbors import nearest_codes


def test_nearest_codes_by_cosine_and_euclidean() -> None:
    references = np.array([[1.0, 0.0], [0.0, 1.0], [3.0, 0.2], [-1.0, 0.0]])
    idx, sim = nearest_codes([[2.0, 0.0]], references, 2)
    assert idx.tolist() == [[0, 2]]
    assert sim[0, 0] == pytest.approx(1.0)
    idx, dist = nearest_codes([[2.0, 0.0]], references, 3, metric="euclidean")
    assert idx.tolist() == [[0, 2, 1]]
    np.testing.assert_allclose(dist[0], [1.0, np.hypot(1.0, 0.2), np.sqrt(5.0)])
    assert nearest_codes([[1.0, 0.0]], references, 99)[0].shape == (1, 4)  # k capped


@pytest.mark.parametrize(
    ("k", "metric", "message"),
    [
        (0, "cosine", "k must be a positive int (neighbours per query); got 0."),
        (2.5, "cosine", "k must be a positive int"),
        (2, "manhattan", "Unknown metric 'manhattan'; expected one of"),
    ],
)
def test_arguments_that_cannot_work_are_parameter_errors(
    k: object, metric: str, message: str
) -> None:
    with pytest.raises(InvalidParameterError, match=re.escape(message)):
        nearest_codes([[1.0, 0.0]], [[1.0, 0.0]], k, metric=metric)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def model_and_data() -> tuple[Autoencoder, np.ndarray]:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 12))
    X = np.concatenate([c + 0.05 * rng.normal(size=(100, 12)) for c in centres]).astype(np.float32)
    model = Autoencoder(latent_dim=8, epochs=30, verbose=0, random_state=0).fit(X)
    return model, X


def test_nearest_uses_the_saved_index(model_and_data, tmp_path: Path) -> None:
    model, X = model_and_data
    with pytest.raises(InvalidInputError, match="needs reference samples"):
        model.nearest(X[:2])
    model.set_index(X)
    indices, _ = model.nearest(X[[0, 150]], k=5, metric="euclidean")
    assert indices[:, 0].tolist() == [0, 150]  # a sample is its own nearest neighbour
    assert (indices // 100 == np.array([[0], [1]])).all()  # the others share its cluster
    restored = load(model.save(tmp_path / "m"))
    np.testing.assert_array_equal(
        restored.nearest(X[[0, 150]], k=5, metric="euclidean")[0], indices
    )


def test_cli_neighbors(model_and_data, tmp_path: Path, capsys) -> None:
    model, X = model_and_data
    model.save(tmp_path / "m")
    np.save(tmp_path / "q.npy", X[[5, 250]])
    np.save(tmp_path / "ref.npy", X)
    argv = [
        "neighbors",
        str(tmp_path / "m"),
        str(tmp_path / "q.npy"),
        "--reference",
        str(tmp_path / "ref.npy"),
        "-k",
        "2",
        "-o",
        str(tmp_path / "n.csv"),
    ]
    assert main(argv) == 0
    table = pd.read_csv(tmp_path / "n.csv")
    assert list(table.columns) == ["query", "rank", "reference_index", "similarity"]
    assert (table["reference_index"] // 100 == table["query"].map({0: 0, 1: 2})).all()
    assert (
        main(
            [
                "neighbors",
                str(tmp_path / "m"),
                str(tmp_path / "q.npy"),
                "--reference",
                str(tmp_path / "ref.npy"),
                "--metric",
                "euclidean",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.splitlines()[-1].startswith("query 1: 250 (0.000)")
    with pytest.raises(InvalidParameterError, match="Unknown metric 'manhattan'"):
        model.nearest(X[:2], index=X, metric="manhattan")

    assert main([*argv[:-2], "-k", "0"]) == 2  # a bad option value: a usage error

    err = capsys.readouterr().err
    assert err.startswith("hourglass neighbors: error: k must be a positive int")


@pytest.mark.slow
def test_code_space_retrieval_matches_raw_pixels_on_mnist() -> None:
    """64-dimensional codes retrieve same-label digits as well as 784 raw pixels do."""
    folder = os.environ.get("HOURGLASS_DATA")
    if not folder:
        pytest.skip("HOURGLASS_DATA is not set: no MNIST to test on")
    from hourglass.datasets import load_mnist

    images, labels = load_mnist("test", data_dir=folder)
    perm = np.random.default_rng(0).permutation(10000)
    reference, queries = perm[:8000], perm[8000:]
    model = Autoencoder(random_state=0, verbose=0).fit(images[reference])
    indices, _ = model.nearest(images[queries], k=1, index=images[reference])
    code_agreement = np.mean(labels[reference][indices[:, 0]] == labels[queries])
    pixels = images.reshape(10000, -1).astype(np.float64)
    raw_indices, _ = nearest_codes(pixels[queries], pixels[reference], 1)
    raw_agreement = np.mean(labels[reference][raw_indices[:, 0]] == labels[queries])
    print(f"1-NN label agreement: codes {code_agreement:.4f}, raw pixels {raw_agreement:.4f}")
    assert raw_agreement == pytest.approx(0.964, abs=0.002)  # the figure quoted in the issue
    assert code_agreement >= raw_agreement - 0.01
