"""Clustering: the default features of each kind of data, the partition, persistence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits, load_wine, make_moons
from sklearn.metrics import adjusted_rand_score
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import hourglass
from hourglass import Autoencoder, AutoencoderClusterer
from hourglass.clustering import clustering_accuracy
from hourglass.exceptions import InvalidInputError, ModelFileError
from hourglass.families import dense


def _blobs(n_per: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.random((4, 20))
    X = np.concatenate([c + 0.03 * rng.normal(size=(n_per, 20)) for c in centres])
    return X.clip(0, 1).astype(np.float32), np.repeat(np.arange(4), n_per)


# The k-selection tests use dense codes, whose geometry these blobs were planted for.
FAST_AE = Autoencoder(arch="dense", latent_dim=6, epochs=15, verbose=0, random_state=0)


def test_planted_clusters_are_recovered_from_codes() -> None:
    X, y = _blobs(150, seed=0)
    clusterer = AutoencoderClusterer(n_clusters=4, autoencoder=FAST_AE, random_state=0).fit(X)
    assert adjusted_rand_score(y, clusterer.labels_) > 0.95
    np.testing.assert_array_equal(clusterer.predict(X), clusterer.labels_)
    assert clusterer.transform(X).shape == (600, 6)
    assert clusterer.cluster_centers_.shape == (4, 6)
    assert clusterer.embedding_ is not None
    assert clusterer.embedding_.shape == (600, 5)


def test_a_table_is_clustered_on_its_scaled_columns_by_default() -> None:
    X, y = _blobs(150, seed=4)
    X = X * np.linspace(1, 1000, 20)  # columns of very different ranges
    clusterer = AutoencoderClusterer(n_clusters=4, random_state=0).fit(X)
    assert clusterer.autoencoder_ is None
    assert adjusted_rand_score(y, clusterer.labels_) > 0.95
    features = clusterer.transform(X)
    assert features.shape == (600, 20)
    assert features.min() == 0.0
    assert features.max() == 1.0


def test_compact_groups_are_partitioned_on_the_features_themselves() -> None:
    X, y = _blobs(150, seed=4)
    clusterer = AutoencoderClusterer(n_clusters=4, random_state=0).fit(X)
    assert clusterer.embedding_ is not None
    assert clusterer.partitioned_on_ == "features"
    assert adjusted_rand_score(y, clusterer.labels_) == 1.0


def test_groups_only_the_manifold_separates_keep_the_embedding_partition() -> None:
    X, y = make_moons(400, noise=0.05, random_state=0)  # two interleaved crescents
    clusterer = AutoencoderClusterer(n_clusters=2, random_state=0).fit(X)
    assert clusterer.partitioned_on_ == "embedding"
    assert adjusted_rand_score(y, clusterer.labels_) == 1.0


@pytest.mark.parametrize("load", [load_wine, load_digits], ids=["wine", "digits"])
def test_a_table_clusters_at_least_as_well_as_k_means(load) -> None:
    X, y = load(return_X_y=True)
    k = len(np.unique(y))

    def kmeans(columns: np.ndarray) -> float:
        return clustering_accuracy(y, KMeans(k, n_init=10, random_state=0).fit_predict(columns))

    better_kmeans = max(kmeans(X), kmeans(StandardScaler().fit_transform(X)))
    clusterer = AutoencoderClusterer(n_clusters=k, random_state=0).fit(X)
    assert clustering_accuracy(y, clusterer.labels_) >= better_kmeans


def test_predict_gives_new_samples_the_cluster_of_their_neighbours() -> None:
    X, y = _blobs(150, seed=5)
    more, more_y = _blobs(40, seed=5)  # the same centres, new noise
    clusterer = AutoencoderClusterer(n_clusters=4, random_state=0).fit(X)
    np.testing.assert_array_equal(clusterer.predict(X), clusterer.labels_)
    # Each new sample lands in the cluster its planted group went to.
    mapping = {int(t): int(np.bincount(clusterer.labels_[y == t]).argmax()) for t in range(4)}
    expected = np.array([mapping[int(t)] for t in more_y])
    assert (clusterer.predict(more) == expected).mean() > 0.97


def test_the_same_seed_gives_the_same_clusters() -> None:
    X, _ = _blobs(100, seed=6)
    first = AutoencoderClusterer(n_clusters=4, random_state=3).fit(X)
    second = AutoencoderClusterer(n_clusters=4, random_state=3).fit(X)
    np.testing.assert_array_equal(first.labels_, second.labels_)
    np.testing.assert_array_equal(first.embedding_, second.embedding_)


def test_a_mixed_table_with_missing_values_clusters() -> None:
    rng = np.random.default_rng(7)
    group = np.repeat([0, 1, 2], 80)
    frame = pd.DataFrame(
        {
            "amount": rng.normal(group * 10.0, 1.0),
            "kind": np.array(["shop", "atm", "web"])[group],
            "hour": rng.normal(12, 3, group.size),
        }
    )
    frame.loc[::17, "amount"] = np.nan
    frame.loc[::23, "kind"] = None
    clusterer = AutoencoderClusterer(n_clusters=3, random_state=0).fit(frame)
    assert adjusted_rand_score(group, clusterer.labels_) > 0.9
    assert clusterer.transform(frame).shape == (240, 5)  # amount, hour, three kinds
    np.testing.assert_array_equal(clusterer.feature_names_in_, ["amount", "kind", "hour"])
    shuffled = frame[["hour", "kind", "amount"]]  # columns are found by name
    np.testing.assert_array_equal(clusterer.predict(shuffled), clusterer.labels_)


def test_images_are_clustered_on_invariant_conv_codes_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dense, "IMAGE_CLUSTERING_STEPS", 4)
    monkeypatch.setattr(dense, "IMAGE_CLUSTERING_MIN_EPOCHS", 2)
    rng = np.random.default_rng(8)
    images = rng.random((80, 16, 16)).astype(np.float32) * 0.1
    images[:40, 4:12, 7:9] = 1.0  # a bar
    images[40:, 7:9, 4:12] = 1.0  # a dash
    clusterer = AutoencoderClusterer(n_clusters=2, random_state=0).fit(images)
    model = clusterer.autoencoder_
    assert model is not None
    assert (model.arch_, model.invariance, model.latent_dim) == ("conv", 1.0, 32)
    assert model.n_epochs_ == 4  # 4 steps of one batch each
    assert clusterer.transform(images).shape == (80, 32)
    np.testing.assert_array_equal(clusterer.predict(images), clusterer.labels_)


def test_the_image_autoencoder_trains_for_enough_steps_and_epochs() -> None:
    assert dense.image_clustering_epochs(8000) == 13  # 416 steps of 256 images
    assert dense.image_clustering_epochs(60000) == 8  # 8 epochs of 235 steps
    assert dense.image_clustering_epochs(10) == 416
    recipe = dense.DenseFamily().clustering_recipe(8000)
    assert recipe.autoencoder == {
        "arch": "conv",
        "invariance": 1.0,
        "latent_dim": 32,
        "batch_size": 256,
        "epochs": 13,
    }


def test_texts_cluster() -> None:
    texts = [f"the cat sat on mat number {i}" for i in range(30)] + [
        f"zwei hunde laufen im park {i}" for i in range(30)
    ]
    model = Autoencoder(latent_dim=8, epochs=3, verbose=0)
    clusterer = AutoencoderClusterer(n_clusters=2, autoencoder=model, random_state=0).fit(texts)
    assert clusterer.labels_.shape == (60,)
    assert set(clusterer.labels_) <= {0, 1}
    np.testing.assert_array_equal(clusterer.predict(texts), clusterer.labels_)


@pytest.mark.parametrize("method", ["gmm", "kmeans"])
def test_auto_chooses_the_planted_number_of_clusters(method: str) -> None:
    X, _ = _blobs(100, seed=1)
    clusterer = AutoencoderClusterer(
        n_clusters="auto", method=method, max_clusters=8, random_state=0
    ).fit(X)
    assert clusterer.n_clusters_ == 4
    assert sorted(clusterer.selection_) == list(range(2, 9))
    assert max(clusterer.selection_, key=clusterer.selection_.__getitem__) == 4


def test_without_the_manifold_step_the_features_are_partitioned() -> None:
    X, y = _blobs(100, seed=2)
    clusterer = AutoencoderClusterer(n_clusters=4, manifold=None, random_state=0).fit(X)
    assert clusterer.embedding_ is None
    assert clusterer.partitioned_on_ == "features"
    assert adjusted_rand_score(y, clusterer.labels_) > 0.95


def test_a_fitted_autoencoder_is_used_as_it_is() -> None:
    X, _ = _blobs(50, seed=2)
    fitted = Autoencoder(latent_dim=4, epochs=5, verbose=0, random_state=0).fit(X)
    clusterer = AutoencoderClusterer(n_clusters=4, autoencoder=fitted, random_state=0).fit(X)
    assert clusterer.autoencoder_ is fitted
    with pytest.raises(InvalidInputError, match="n_clusters=500 is more than the 200 samples"):
        AutoencoderClusterer(n_clusters=500, autoencoder=fitted).fit(X)


@pytest.mark.parametrize("with_autoencoder", [True, False], ids=["codes", "columns"])
def test_save_and_load_give_the_same_clusters(tmp_path: Path, with_autoencoder: bool) -> None:
    X, _ = _blobs(60, seed=9)
    more, _ = _blobs(10, seed=10)
    clusterer = AutoencoderClusterer(
        n_clusters="auto",
        max_clusters=5,
        autoencoder=FAST_AE if with_autoencoder else None,
        random_state=0,
    ).fit(X)
    clusterer.save(tmp_path / "clusters")
    loaded = hourglass.load(tmp_path / "clusters")
    assert isinstance(loaded, AutoencoderClusterer)
    assert loaded.n_clusters_ == clusterer.n_clusters_
    assert loaded.selection_ == clusterer.selection_
    assert loaded.partitioned_on_ == clusterer.partitioned_on_
    np.testing.assert_array_equal(loaded.labels_, clusterer.labels_)
    np.testing.assert_array_equal(loaded.cluster_centers_, clusterer.cluster_centers_)
    np.testing.assert_array_equal(loaded.transform(more), clusterer.transform(more))
    np.testing.assert_array_equal(loaded.predict(more), clusterer.predict(more))
    np.testing.assert_array_equal(loaded.predict(X), clusterer.labels_)
    assert (loaded.autoencoder_ is None) == (not with_autoencoder)


def test_a_tampered_clusterer_file_is_refused(tmp_path: Path) -> None:
    import json

    X, _ = _blobs(40, seed=11)
    AutoencoderClusterer(n_clusters=3, random_state=0).fit(X).save(tmp_path / "c")
    config_path = tmp_path / "c" / "config.json"
    config = json.loads(config_path.read_text())
    config["state"]["n_clusters_"] = 7  # labels_ use only 3
    config_path.write_text(json.dumps(config))
    with pytest.raises(ModelFileError, match="labels_ must use every cluster"):
        AutoencoderClusterer.load(tmp_path / "c")
    config["state"]["n_clusters_"] = 3
    config["state"]["columns_"] = None  # neither an autoencoder nor columns
    config_path.write_text(json.dumps(config))
    with pytest.raises(ModelFileError, match="either an autoencoder or column features"):
        hourglass.load(tmp_path / "c")


def test_a_clusterer_file_names_what_its_labels_partition(tmp_path: Path) -> None:
    import json

    X, _ = _blobs(40, seed=11)
    AutoencoderClusterer(n_clusters=3, random_state=0).fit(X).save(tmp_path / "c")
    config_path = tmp_path / "c" / "config.json"
    config = json.loads(config_path.read_text())
    config["state"]["partitioned_on_"] = "pixels"
    config_path.write_text(json.dumps(config))
    with pytest.raises(ModelFileError, match="partitioned_on_ must be"):
        hourglass.load(tmp_path / "c")
    del config["state"]["partitioned_on_"]  # a file saved before the attribute existed
    config_path.write_text(json.dumps(config))
    assert hourglass.load(tmp_path / "c").partitioned_on_ == "embedding"


@parametrize_with_checks(
    [
        AutoencoderClusterer(
            n_clusters=3, autoencoder=Autoencoder(latent_dim=2, epochs=2, verbose=0), random_state=0
        ),
        AutoencoderClusterer(n_clusters=3, random_state=0),
    ]
)
def test_sklearn_compatible(estimator, check) -> None:
    check(estimator)


def test_cli_cluster(tmp_path: Path) -> None:
    from hourglass.cli import main

    X, y = _blobs(100, seed=3)
    FAST_AE.fit(X).save(tmp_path / "m")
    np.save(tmp_path / "x.npy", X)
    out = tmp_path / "clusters.csv"
    command = ["cluster", str(tmp_path / "m"), str(tmp_path / "x.npy"), "-o", str(out)]
    assert main([*command, "-k", "auto", "--max-clusters", "6"]) == 0
    table = pd.read_csv(out)
    assert list(table.columns) == ["index", "cluster"]
    assert adjusted_rand_score(y, table["cluster"]) > 0.95
    assert main([*command, "-k", "many"]) == 2


def test_cli_cluster_without_a_model_uses_the_defaults(tmp_path: Path) -> None:
    from hourglass.cli import main

    X, y = _blobs(100, seed=12)
    pd.DataFrame(X, columns=[f"c{i}" for i in range(20)]).to_csv(tmp_path / "x.csv", index=False)
    out = tmp_path / "clusters.csv"
    saved = tmp_path / "clusterer"
    code = main(
        ["cluster", str(tmp_path / "x.csv"), "-k", "4", "-o", str(out), "--save", str(saved)]
    )
    assert code == 0
    labels = pd.read_csv(out)["cluster"].to_numpy()
    expected = AutoencoderClusterer(n_clusters=4, random_state=0).fit(
        pd.read_csv(tmp_path / "x.csv")
    )
    np.testing.assert_array_equal(labels, expected.labels_)
    assert adjusted_rand_score(y, labels) > 0.95
    loaded = hourglass.load(saved)
    np.testing.assert_array_equal(loaded.predict(pd.read_csv(tmp_path / "x.csv")), labels)


def test_a_table_stream_clusters_as_the_table_does(tmp_path: Path) -> None:
    from hourglass.data.stream import Stream

    X, _ = _blobs(60, seed=13)
    frame = pd.DataFrame(X, columns=[f"c{i}" for i in range(20)])
    frame.to_csv(tmp_path / "x.csv", index=False)
    stream = Stream.open(tmp_path / "x.csv")
    from_stream = AutoencoderClusterer(n_clusters=4, random_state=0).fit(stream)
    from_frame = AutoencoderClusterer(n_clusters=4, random_state=0).fit(
        pd.read_csv(tmp_path / "x.csv")
    )
    np.testing.assert_array_equal(from_stream.labels_, from_frame.labels_)
    np.testing.assert_array_equal(from_stream.predict(stream), from_frame.labels_)
