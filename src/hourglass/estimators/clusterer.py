"""The :class:`AutoencoderClusterer`: clusters found in an autoencoder's code space."""

from __future__ import annotations

import os
from numbers import Integral
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from numpy.typing import NDArray
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin, _fit_context, clone
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _num_samples, check_is_fitted

from hourglass import clustering, persistence
from hourglass.data.stream import Stream
from hourglass.estimators._base import BaseAutoencoder
from hourglass.estimators._input import prepare_table
from hourglass.estimators._params import seed_from
from hourglass.estimators._state import (
    check_model_class,
    estimator_contents,
    estimator_from_file,
)
from hourglass.estimators.autoencoder import Autoencoder
from hourglass.exceptions import InvalidInputError, ModelFileError, NotFittedError
from hourglass.families import choose_family
from hourglass.families._family import ClusteringRecipe
from hourglass.tabular import ColumnFeatures

__all__ = ["AutoencoderClusterer"]

#: Prefix of the inner autoencoder's tensors in a saved clusterer.
AUTOENCODER_PREFIX = "autoencoder."


def _in_memory(X: Any) -> Any:
    """A table stream read whole: clustering holds every sample's features in memory anyway."""
    return X.read(as_frame=True) if isinstance(X, Stream) else X


class AutoencoderClusterer(ClusterMixin, TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Find clusters in data: codes, a manifold embedding, a Gaussian mixture.

    ``fit`` works in three steps (:mod:`hourglass.clustering`):

    1. **Features.** Each sample becomes a vector. By default the kind of data
       decides: images are encoded by a convolutional autoencoder trained with
       the invariance term (a shifted, rotated or rescaled image keeps its
       code), texts by the default text autoencoder, and tables are used as
       they are, numbers min-max scaled and categories one-hot (no
       autoencoder's codes clustered tables better). Pass ``autoencoder`` to
       cluster the codes of a model of your choice instead.
    2. **Manifold.** UMAP embeds the features in 5 dimensions, where each
       dense region becomes a compact blob (``manifold=None`` skips it).
    3. **Partition.** A Gaussian mixture with full covariances (or k-means)
       splits the embedding into ``n_clusters`` groups; ``n_clusters="auto"``
       keeps the k from 2 to ``max_clusters`` with the highest silhouette.
       The same partition fitted on the features themselves is kept instead
       where the two nearly agree (adjusted Rand index of at least 0.85): the
       groups are then compact in feature space, and a partition that sees
       every feature settles the samples between groups better
       (``partitioned_on_`` says which was kept).

    ``predict`` labels new samples by a distance-weighted vote of their 10
    nearest training samples in feature space, so a training sample gets the
    cluster ``fit`` gave it.

    Parameters
    ----------
    n_clusters : int or "auto", default=8
        Number of clusters. ``"auto"`` tries 2 to ``max_clusters`` and keeps
        the k whose partition has the highest silhouette score on the
        embedding; ``selection_`` records every score.
    method : {"gmm", "kmeans"}, default="gmm"
        The partition of the embedding: a Gaussian mixture with full
        covariances, or k-means.
    manifold : {"umap"} or None, default="umap"
        The manifold step. ``None`` partitions the features themselves (as do
        data sets with fewer than twice as many samples as UMAP's neighbours).
    max_clusters : int, default=15
        Largest k tried by ``n_clusters="auto"``.
    autoencoder : Autoencoder or None, default=None
        The model whose codes are clustered. A fitted one is used as it is; an
        unfitted one is cloned (given ``random_state`` if it has none) and
        trained on ``X``; ``None`` uses the default for the data (step 1).
    random_state : int or None, default=None
        Seeds the autoencoder (when trained here), UMAP and the partition.
    verbose : int, default=0
        Progress bars of the autoencoder's training and of the choice of k.

    Attributes
    ----------
    autoencoder_ : Autoencoder or None
        The fitted model whose codes were clustered; ``None`` for tables
        clustered on their columns.
    labels_ : ndarray of shape (n_samples,)
        Cluster of each training sample, from 0 to ``n_clusters_ - 1``.
    n_clusters_ : int
        The number of clusters found: ``n_clusters`` (or the k chosen), less
        any mixture component that ended up empty.
    cluster_centers_ : ndarray of shape ``(n_clusters_, n_features_out)``
        The mean features (codes) of each cluster's training samples.
    features_ : ndarray of shape (n_samples, n_features_out)
        The training samples' features, which ``predict`` compares new samples with.
    embedding_ : ndarray of shape (n_samples, 5) or None
        The training samples' manifold embedding (``None`` without the manifold step).
    selection_ : dict of int to float
        With ``n_clusters="auto"``: the silhouette score of every k tried.
    partitioned_on_ : {"embedding", "features"}
        What ``labels_`` partition: the manifold embedding, or the features
        themselves (without the manifold step, or where their own partition
        nearly agreed with the embedding's).
    n_features_in_ : int
        Number of features (or table columns) seen during ``fit``.
    feature_names_in_ : ndarray of shape ``(n_features_in_,)``
        Column names of a DataFrame seen during ``fit``.
    columns_ : hourglass.tabular.ColumnFeatures or None
        For tables clustered on their own columns: the min-max scaling of the
        numbers and the one-hot encoding of the categories, fitted on the
        training rows; ``None`` when codes were clustered.

    Examples
    --------
    >>> import numpy as np
    >>> from hourglass import AutoencoderClusterer
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(c, 0.05, (100, 6)) for c in (0.2, 0.5, 0.8)])
    >>> clusterer = AutoencoderClusterer(n_clusters=3, random_state=0).fit(X)
    >>> np.bincount(clusterer.labels_).tolist()
    [100, 100, 100]
    >>> bool((clusterer.predict(X) == clusterer.labels_).all())
    True
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "n_clusters": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "method": [StrOptions(set(clustering.METHODS))],
        "manifold": [StrOptions({"umap"}), None],
        "max_clusters": [Interval(Integral, 2, None, closed="left")],
        "autoencoder": [BaseAutoencoder, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        n_clusters: int | str = 8,
        method: str = "gmm",
        manifold: str | None = "umap",
        max_clusters: int = 15,
        autoencoder: BaseAutoencoder | None = None,
        random_state: Any = None,
        verbose: int = 0,
    ) -> None:
        self.n_clusters = n_clusters
        self.method = method
        self.manifold = manifold
        self.max_clusters = max_clusters
        self.autoencoder = autoencoder
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        inner = self.autoencoder if self.autoencoder is not None else Autoencoder()
        tags.input_tags.allow_nan = inner.__sklearn_tags__().input_tags.allow_nan
        return tags

    # ------------------------------------------------------------- features

    def _recipe(self, X: Any) -> ClusteringRecipe:
        """The default way to cluster ``X``, from the family that would train on it."""
        model = self.autoencoder if self.autoencoder is not None else Autoencoder()
        family = model.family_ if hasattr(model, "module_") else choose_family(model, X)
        n_samples = X.n_rows if isinstance(X, Stream) else _num_samples(X)
        return family.clustering_recipe(n_samples)

    def _fit_features(self, X: Any, recipe: ClusteringRecipe, seed: int) -> NDArray[np.float32]:
        """Fit what turns samples into features (step 1); the training features."""
        self.columns_: ColumnFeatures | None = None
        model = self.autoencoder
        if model is None and recipe.autoencoder is None:
            self.autoencoder_ = None
            table = prepare_table(self, _in_memory(X), reset=True)  # a stream is read once
            self.columns_ = ColumnFeatures.fit(table)
            return self.columns_.transform(table)
        if model is None:
            model = Autoencoder(**recipe.autoencoder, verbose=self.verbose)  # type: ignore[arg-type]
        if hasattr(model, "module_"):
            self.autoencoder_ = model  # already fitted: take it as it is
        else:
            model = clone(model)
            if model.random_state is None:  # one seed makes the whole pipeline reproducible
                model.set_params(random_state=seed)
            self.autoencoder_ = model.fit(X)
        self.n_features_in_ = self.autoencoder_.n_features_in_
        if hasattr(self.autoencoder_, "feature_names_in_"):
            self.feature_names_in_ = self.autoencoder_.feature_names_in_
        return self._features(X)

    def _features(self, X: Any) -> NDArray[np.float32]:
        """Features of ``X``: the autoencoder's codes, or the table's scaled columns."""
        if self.autoencoder_ is not None:
            return self.autoencoder_.transform(X)
        assert self.columns_ is not None
        return self.columns_.transform(prepare_table(self, _in_memory(X), reset=False))

    # ------------------------------------------------------------------ fit

    @_fit_context(prefer_skip_nested_validation=False)  # type: ignore[untyped-decorator]
    def fit(self, X: Any, y: Any = None) -> AutoencoderClusterer:
        """Find the clusters of ``X``.

        Parameters
        ----------
        X : array-like, DataFrame or list of str
            Images of shape (n, h, w) or (n, c, h, w), a table (2-D array or
            DataFrame), texts, or whatever ``autoencoder`` takes.
        y : None
            Ignored.

        Returns
        -------
        self : AutoencoderClusterer
        """
        seed = seed_from(self.random_state) % (2**31 - 1)
        recipe = self._recipe(X)
        features = self._fit_features(X, recipe, seed)
        n = features.shape[0]
        if self.n_clusters != "auto" and int(self.n_clusters) > n:
            raise InvalidInputError(
                f"n_clusters={self.n_clusters} is more than the {n} samples; use fewer "
                "clusters or n_clusters='auto'."
            )
        points = features
        self.embedding_: NDArray[np.float32] | None = None
        if self.manifold == "umap" and clustering.manifold_applies(n, recipe.n_neighbors):
            points = self.embedding_ = clustering.manifold_embedding(
                features, recipe.n_neighbors, seed
            )
        if self.n_clusters == "auto":
            k, self.selection_ = clustering.choose_k(
                points, self.method, self.max_clusters, seed, verbose=self.verbose
            )
        else:
            k = int(self.n_clusters)
        labels, k = clustering.partition(points, k, self.method, seed)
        self.partitioned_on_ = "features" if self.embedding_ is None else "embedding"
        if self.embedding_ is not None:
            confirmed = clustering.agreeing_feature_partition(features, labels, self.method, seed)
            if confirmed is not None:
                labels, k = confirmed, int(confirmed.max()) + 1
                self.partitioned_on_ = "features"
        self._set_clusters(features, labels, k)
        return self

    def _set_clusters(
        self, features: NDArray[np.float32], labels: NDArray[np.int64], k: int
    ) -> None:
        self.features_ = np.ascontiguousarray(features, dtype=np.float32)
        self.labels_ = labels
        self.n_clusters_ = k
        sums = np.zeros((k, features.shape[1]), dtype=np.float64)
        np.add.at(sums, labels, features)
        counts = np.bincount(labels, minlength=k)[:, None]
        self.cluster_centers_ = (sums / counts).astype(np.float32)
        self._vote = clustering.NeighbourVote(self.features_, labels)

    # ------------------------------------------------------------ inference

    def _check_fitted(self) -> None:
        """Raise hourglass's NotFittedError (also scikit-learn's) before ``fit``."""
        try:
            check_is_fitted(self, "labels_")
        except Exception as error:  # scikit-learn's NotFittedError
            raise NotFittedError(str(error)) from None

    def transform(self, X: Any) -> NDArray[np.float32]:
        """The features ``X`` is clustered by: the autoencoder's codes (or scaled columns).

        Parameters
        ----------
        X : array-like, pandas.DataFrame or list of str
            Data of the kind the clusterer was fitted on.

        Returns
        -------
        ndarray of shape (n_samples, n_features_out), float32
        """
        self._check_fitted()
        return self._features(X)

    def predict(self, X: Any) -> NDArray[np.int64]:
        """The cluster of each sample of ``X`` (the vote of its nearest training samples).

        Parameters
        ----------
        X : array-like, pandas.DataFrame or list of str
            Data of the kind the clusterer was fitted on.

        Returns
        -------
        ndarray of shape (n_samples,), int64
        """
        self._check_fitted()
        return self._vote.predict(self._features(X))

    # ---------------------------------------------------------- persistence

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save the fitted clusterer (its autoencoder included) to the directory ``path``.

        The model file is written as the other estimators' are (JSON and
        safetensors, atomically). The ``autoencoder`` parameter is not saved:
        the fitted ``autoencoder_`` is.

        Parameters
        ----------
        path : str or path-like
            The directory to write; a model already there is replaced.

        Returns
        -------
        pathlib.Path
            The directory written.
        """
        self._check_fitted()
        params = persistence.json_params(self.get_params(deep=False))
        params["autoencoder"] = None
        state: dict[str, Any] = {
            "n_clusters_": self.n_clusters_,
            "n_features_in_": int(self.n_features_in_),
            "columns_": None if self.columns_ is None else self.columns_.to_json(),
            "partitioned_on_": self.partitioned_on_,
        }
        if hasattr(self, "selection_"):
            state["selection_"] = {str(k): v for k, v in self.selection_.items()}
        if hasattr(self, "feature_names_in_"):
            state["feature_names_in_"] = [str(name) for name in self.feature_names_in_]
        tensors = {
            "features_": torch.from_numpy(self.features_),
            "labels_": torch.from_numpy(self.labels_),
        }
        if self.embedding_ is not None:
            tensors["embedding_"] = torch.from_numpy(self.embedding_)
        if self.autoencoder_ is not None:
            inner_params, inner_state, inner_tensors = estimator_contents(self.autoencoder_)
            state["autoencoder_"] = {
                "class": type(self.autoencoder_).__name__,
                "params": inner_params,
                "state": inner_state,
            }
            tensors.update({AUTOENCODER_PREFIX + k: v for k, v in inner_tensors.items()})
        return persistence.write_model_dir(
            path, class_name=type(self).__name__, params=params, state=state, tensors=tensors
        )

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], *, device: str | None = None
    ) -> AutoencoderClusterer:
        """Load a clusterer saved with :meth:`save`.

        Parameters
        ----------
        path : str or path-like
            The model directory.
        device : str, optional
            Overrides the saved autoencoder's ``device`` parameter.

        Raises
        ------
        ModelFileError
            The directory does not hold a valid clusterer.
        """
        model = persistence.read_model_dir(path)
        check_model_class(model, cls, path)
        try:
            clusterer = cls(**model.params)
            clusterer._validate_params()
            clusterer._restore(model, path, device)
        except (LookupError, TypeError, ValueError, ArithmeticError, RuntimeError) as error:
            if isinstance(error, ModelFileError):
                raise
            raise ModelFileError(
                f"{path} is inconsistent: it does not describe a valid {cls.__name__} "
                f"({type(error).__name__}: {persistence.short_repr(str(error))}). Re-save it."
            ) from None
        return clusterer

    def _restore(
        self, model: persistence.ModelFile, path: str | os.PathLike[str], device: str | None
    ) -> None:
        """Set the fitted attributes from a model file (ValueError where invalid)."""
        from hourglass.estimators import _CLASSES

        state = model.state
        self.autoencoder_ = None
        inner = state.get("autoencoder_")
        if inner is not None:
            inner_cls = _CLASSES.get(inner["class"])
            if not (isinstance(inner_cls, type) and issubclass(inner_cls, BaseAutoencoder)):
                name = persistence.short_repr(inner["class"])
                raise ValueError(f"the autoencoder's class {name} is not an autoencoder's")
            inner_file = persistence.ModelFile(
                class_name=inner["class"],
                params=inner["params"],
                state=inner["state"],
                tensors={
                    k.removeprefix(AUTOENCODER_PREFIX): v
                    for k, v in model.tensors.items()
                    if k.startswith(AUTOENCODER_PREFIX)
                },
                library_version=model.library_version,
            )
            self.autoencoder_ = estimator_from_file(inner_cls, inner_file, path, device)
        columns = state["columns_"]
        self.columns_ = None if columns is None else ColumnFeatures.from_json(columns)
        if (self.autoencoder_ is None) == (self.columns_ is None):
            raise ValueError("a clusterer has either an autoencoder or column features")
        self.n_features_in_ = persistence.check_int(
            state["n_features_in_"], "n_features_in_", low=1
        )
        if "feature_names_in_" in state:
            names = state["feature_names_in_"]
            if not isinstance(names, list) or len(names) != self.n_features_in_:
                raise ValueError(f"feature_names_in_ must list {self.n_features_in_} names")
            self.feature_names_in_ = np.asarray([str(n) for n in names], dtype=object)
        if "selection_" in state:
            self.selection_ = {
                persistence.check_int(int(k), "selection_", low=2): persistence.check_real(
                    v, "selection_"
                )
                for k, v in state["selection_"].items()
            }
        arrays = {k: v.numpy() for k, v in model.tensors.items() if k.endswith("_")}
        width = (
            self.columns_.width if self.columns_ is not None else self.autoencoder_.latent_dim  # type: ignore[union-attr]
        )
        features = persistence.check_array(arrays, "features_", (None, width))
        features = features.astype(np.float32)
        if features.shape[0] == 0 or not np.isfinite(features).all():
            raise ValueError("features_ must hold finite features of at least one sample")
        labels = persistence.check_array(arrays, "labels_", (features.shape[0],))
        if labels.dtype != np.int64:
            raise ValueError("labels_ must be int64")
        k = persistence.check_int(state["n_clusters_"], "n_clusters_", low=1)
        if not np.array_equal(np.unique(labels), np.arange(k)):
            raise ValueError(f"labels_ must use every cluster from 0 to {k - 1}")
        self.embedding_ = None
        if "embedding_" in arrays:
            embedding = persistence.check_array(
                arrays, "embedding_", (features.shape[0], clustering.MANIFOLD_COMPONENTS)
            )
            self.embedding_ = embedding.astype(np.float32)
        # Files saved before the check on the features partitioned the embedding when there was one.
        default_space = "features" if self.embedding_ is None else "embedding"
        self.partitioned_on_ = state.get("partitioned_on_", default_space)
        if self.partitioned_on_ not in ("embedding", "features"):
            raise ValueError("partitioned_on_ must be 'embedding' or 'features'")
        if self.partitioned_on_ == "embedding" and self.embedding_ is None:
            raise ValueError("labels_ cannot partition an embedding that is not saved")
        self._set_clusters(features, labels.astype(np.int64), k)
