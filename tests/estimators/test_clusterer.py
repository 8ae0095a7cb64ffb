"""Clustering autoencoder codes."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score
from sklearn.utils.estimator_checks import parametrize_with_checks

from hourglass import Autoencoder, AutoencoderClusterer
from hourglass.exceptions import InvalidInputError


def _blobs(n_per: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.random((4, 20))
    X = np.concatenate([c + 0.03 * rng.normal(size=(n_per, 20)) for c in centres])
    return X.clip(0, 1).astype(np.float32), np.repeat(np.arange(4), n_per)


# The k-selection tests use dense codes, whose geometry these blobs were planted for.
FAST_AE = Autoencoder(arch="dense", latent_dim=6, epochs=15, verbose=0, random_state=0)


def test_planted_clusters_are_recovered() -> None:
    X, y = _blobs(150, seed=0)
    clusterer = AutoencoderClusterer(n_clusters=4, autoencoder=FAST_AE, random_state=0).fit(X)
    assert adjusted_rand_score(y, clusterer.labels_) > 0.95
    np.testing.assert_array_equal(clusterer.predict(X), clusterer.labels_)
    assert clusterer.transform(X).shape == (600, 6)
    assert clusterer.cluster_centers_.shape == (4, 6)


@pytest.mark.parametrize(("method", "score"), [("kmeans", "silhouette"), ("gmm", "bic")])
def test_auto_chooses_the_planted_number_of_clusters(method: str, score: str) -> None:
    X, _ = _blobs(100, seed=1)
    clusterer = AutoencoderClusterer(
        n_clusters="auto", method=method, max_clusters=8, autoencoder=FAST_AE, random_state=0
    ).fit(X)
    assert clusterer.n_clusters_ == 4
    assert sorted(clusterer.selection_) == list(range(2, 9))


def test_a_fitted_autoencoder_is_used_as_it_is() -> None:
    X, _ = _blobs(50, seed=2)
    fitted = Autoencoder(latent_dim=4, epochs=5, verbose=0, random_state=0).fit(X)
    clusterer = AutoencoderClusterer(n_clusters=4, autoencoder=fitted, random_state=0).fit(X)
    assert clusterer.autoencoder_ is fitted
    with pytest.raises(InvalidInputError, match="n_clusters=500 is more than the 200 samples"):
        AutoencoderClusterer(n_clusters=500, autoencoder=fitted).fit(X)


@parametrize_with_checks(
    [
        AutoencoderClusterer(
            n_clusters=3, autoencoder=Autoencoder(latent_dim=2, epochs=2, verbose=0), random_state=0
        )
    ]
)
def test_sklearn_compatible(estimator, check) -> None:
    check(estimator)


def test_cli_cluster(tmp_path) -> None:
    import pandas as pd

    from hourglass.cli import main

    X, y = _blobs(100, seed=3)
    FAST_AE.fit(X).save(tmp_path / "m")
    np.save(tmp_path / "x.npy", X)
    out = tmp_path / "clusters.csv"
    assert (
        main(
            [
                "cluster",
                str(tmp_path / "m"),
                str(tmp_path / "x.npy"),
                "-k",
                "auto",
                "--max-clusters",
                "6",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    table = pd.read_csv(out)
    assert list(table.columns) == ["index", "cluster"]
    assert adjusted_rand_score(y, table["cluster"]) > 0.95
    assert (
        main(
            ["cluster", str(tmp_path / "m"), str(tmp_path / "x.npy"), "-k", "many", "-o", str(out)]
        )
        == 2
    )
