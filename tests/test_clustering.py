"""The shared steps of clustering: embedding, partition, choice of k, vote, accuracy."""

from __future__ import annotations

import numpy as np
import pytest

from hourglass import clustering
from hourglass.exceptions import InvalidInputError


def _groups(sizes: list[int], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 5, (len(sizes), 8))
    points = np.concatenate(
        [c + rng.normal(0, 0.2, (n, 8)) for c, n in zip(centres, sizes, strict=True)]
    )
    return points.astype(np.float32), np.repeat(np.arange(len(sizes)), sizes)


def test_the_embedding_keeps_groups_apart_and_is_reproducible() -> None:
    points, truth = _groups([60, 60, 60])
    embedding = clustering.manifold_embedding(points, 15, random_state=0)
    assert embedding.shape == (180, clustering.MANIFOLD_COMPONENTS)
    assert embedding.dtype == np.float32
    np.testing.assert_array_equal(embedding, clustering.manifold_embedding(points, 15, 0))
    labels, k = clustering.partition(embedding, 3, "gmm", random_state=0)
    assert k == 3
    assert clustering.clustering_accuracy(truth, labels) == 1.0


def test_the_neighbour_graph_is_exact_with_each_sample_first() -> None:
    rng = np.random.default_rng(1)
    points = rng.normal(size=(120, 5)).astype(np.float32)
    points[7] = points[3]  # an exact duplicate is still listed after the sample itself
    indices, distances = clustering.neighbour_graph(points, 6)
    assert indices.shape == distances.shape == (120, 6)
    assert indices.dtype == np.int32
    assert distances.dtype == np.float32
    np.testing.assert_array_equal(indices[:, 0], np.arange(120))
    np.testing.assert_array_equal(distances[:, 0], 0.0)
    assert indices[3, 1] == 7
    assert indices[7, 1] == 3
    assert distances[3, 1] < 1e-3
    pairwise = np.linalg.norm(points[:, None, :] - points[None, :, :], axis=2)
    np.fill_diagonal(pairwise, -1.0)  # the sample itself comes first
    expected = np.sort(pairwise, axis=1)[:, :6]
    expected[:, 0] = 0.0
    np.testing.assert_allclose(distances, expected, atol=1e-4)
    assert np.all(np.diff(distances[:, 1:], axis=1) >= 0)  # nearest first
    np.testing.assert_allclose(
        distances, np.linalg.norm(points[indices] - points[:, None, :], axis=2), atol=1e-4
    )
    with pytest.raises(ValueError, match="n_neighbors must be from 1 to 120"):
        clustering.neighbour_graph(points, 121)


def test_the_embedding_skips_umaps_approximate_search_up_to_the_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import umap.umap_

    searched: list[int] = []
    search = umap.umap_.nearest_neighbors

    def spy(data: np.ndarray, *args: object, **kwargs: object) -> object:
        searched.append(len(data))
        return search(data, *args, **kwargs)

    monkeypatch.setattr(umap.umap_, "nearest_neighbors", spy)
    points, truth = _groups([60, 60, 60], seed=2)
    exact = clustering.manifold_embedding(points, 15, random_state=0)
    assert searched == []  # the exact graph went in: no NN-descent, no compilation
    labels, _ = clustering.partition(exact, 3, "gmm", random_state=0)
    assert clustering.clustering_accuracy(truth, labels) == 1.0
    monkeypatch.setattr(clustering, "EXACT_NEIGHBORS_LIMIT", 100)
    approximate = clustering.manifold_embedding(points, 15, random_state=0)
    assert searched == [180]  # above the limit UMAP searches itself
    labels, _ = clustering.partition(approximate, 3, "gmm", random_state=0)
    assert clustering.clustering_accuracy(truth, labels) == 1.0


@pytest.mark.parametrize("method", clustering.METHODS)
def test_the_features_partition_replaces_an_embedding_partition_it_agrees_with(
    method: str,
) -> None:
    points, truth = _groups([60, 60, 60], seed=3)
    nearly = truth.copy()
    nearly[[0, 60, 120]] = [1, 2, 0]  # three samples the embedding put in the wrong group
    labels = clustering.agreeing_feature_partition(points, nearly, method, random_state=0)
    assert labels is not None
    assert clustering.clustering_accuracy(truth, labels) == 1.0
    np.testing.assert_array_equal(np.unique(labels), [0, 1, 2])


def test_an_embedding_partition_the_features_disagree_with_is_left() -> None:
    # Two rings around one centre: UMAP separates them, a mixture of the features cannot.
    rng = np.random.default_rng(4)
    angles = rng.uniform(0, 2 * np.pi, 300)
    radii = np.repeat([1.0, 3.0], 150) + rng.normal(0, 0.05, 300)
    rings = np.column_stack([radii * np.cos(angles), radii * np.sin(angles)]).astype(np.float32)
    truth = np.repeat([0, 1], 150)
    assert clustering.agreeing_feature_partition(rings, truth, "gmm", random_state=0) is None


def test_the_check_needs_more_samples_per_group_than_features() -> None:
    points, truth = _groups([4, 4], seed=5)  # 8 features, 4 samples per group
    assert clustering.agreeing_feature_partition(points, truth, "gmm", random_state=0) is None
    assert clustering.agreeing_feature_partition(points[:, :3], truth, "gmm", 0) is not None


def test_the_manifold_step_needs_more_samples_than_twice_the_neighbours() -> None:
    assert not clustering.manifold_applies(60, 30)
    assert clustering.manifold_applies(61, 30)


@pytest.mark.parametrize("method", clustering.METHODS)
def test_labels_are_consecutive_even_when_a_component_is_left_empty(method: str) -> None:
    points = np.repeat(np.eye(2, dtype=np.float32), 10, axis=0)  # two distinct points
    labels, k = clustering.partition(points, 5, method, random_state=0)
    assert k == len(np.unique(labels))
    np.testing.assert_array_equal(np.unique(labels), np.arange(k))


@pytest.mark.parametrize("method", clustering.METHODS)
def test_choose_k_keeps_the_highest_silhouette(method: str) -> None:
    points, _ = _groups([40, 40, 40, 40, 40], seed=1)
    k, selection = clustering.choose_k(points, method, 8, random_state=0)
    assert k == 5
    assert sorted(selection) == list(range(2, 9))
    assert selection[5] == max(selection.values())


def test_choose_k_needs_three_samples() -> None:
    with pytest.raises(InvalidInputError, match="at least 3 samples"):
        clustering.choose_k(np.zeros((2, 3), np.float32), "gmm", 10, random_state=0)


def test_the_vote_gives_training_samples_their_own_cluster() -> None:
    points, truth = _groups([30, 30], seed=2)
    labels = truth.copy()
    labels[0] = 1  # a training sample that disagrees with its neighbours keeps its label
    vote = clustering.NeighbourVote(points, labels)
    np.testing.assert_array_equal(vote.predict(points), labels)
    nearby = points[:5] + 0.01
    np.testing.assert_array_equal(vote.predict(nearby[1:]), [0, 0, 0, 0])


def test_clustering_accuracy_matches_clusters_to_labels_one_to_one() -> None:
    assert clustering.clustering_accuracy([0, 0, 1, 1], [5, 5, 7, 7]) == 1.0
    assert clustering.clustering_accuracy([0, 0, 0, 0], [0, 0, 1, 1]) == 0.5
    assert clustering.clustering_accuracy(["a", "b", "c"], [0, 0, 0]) == pytest.approx(1 / 3)
    with pytest.raises(InvalidInputError, match="differ in length"):
        clustering.clustering_accuracy([0, 1], [0])
