"""The :class:`AutoencoderClusterer`: clustering in an autoencoder's code space."""

from __future__ import annotations

from numbers import Integral
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin, _fit_context, clone
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.mixture import GaussianMixture
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from tqdm import tqdm

from hourglass.estimators._base import BaseAutoencoder
from hourglass.estimators._params import seed_from
from hourglass.estimators.autoencoder import Autoencoder
from hourglass.exceptions import InvalidInputError, NotFittedError

__all__ = ["AutoencoderClusterer"]

#: Codes used to compute silhouette scores when choosing k (bounds the O(n^2) cost).
SILHOUETTE_SAMPLE = 5000


class AutoencoderClusterer(ClusterMixin, TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Cluster samples by the codes of an autoencoder.

    Trains an autoencoder (or takes a fitted one), encodes the data, and
    clusters the codes with k-means or a Gaussian mixture.

    Parameters
    ----------
    n_clusters : int or "auto", default=8
        Number of clusters. ``"auto"`` tries 2 to ``max_clusters`` and keeps the
        best silhouette score (k-means) or the lowest BIC (mixture);
        ``selection_`` records every score.
    method : {"kmeans", "gmm"}, default="kmeans"
        The clustering of the codes.
    max_clusters : int, default=15
        Largest k tried by ``n_clusters="auto"``.
    autoencoder : Autoencoder or None, default=None
        The model whose codes are clustered. A fitted one is used as is; an
        unfitted one is cloned (given ``random_state`` if it has none) and
        trained on ``X``; ``None`` trains
        ``Autoencoder(random_state=random_state, verbose=verbose)``.
    random_state : int or None, default=None
        Seeds the autoencoder (when trained here) and the clustering.
    verbose : int, default=0
        Passed to an autoencoder trained here.

    Attributes
    ----------
    autoencoder_ : Autoencoder
        The fitted model.
    labels_ : ndarray of shape (n_samples,)
        Cluster of each training sample.
    n_clusters_ : int
        The number of clusters used.
    cluster_centers_ : ndarray of shape (n_clusters_, latent_dim)
        Cluster means in code space.
    selection_ : dict of int to float
        With ``n_clusters="auto"``: the silhouette score (higher is better) or
        BIC (lower is better) of every k tried.

    Examples
    --------
    >>> import numpy as np
    >>> from hourglass import AutoencoderClusterer
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(c, 0.05, (100, 6)) for c in (0.2, 0.5, 0.8)])
    >>> clusterer = AutoencoderClusterer(n_clusters=3, random_state=0).fit(X.astype("float32"))
    >>> np.bincount(clusterer.labels_).tolist()
    [100, 100, 100]
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "n_clusters": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "method": [StrOptions({"kmeans", "gmm"})],
        "max_clusters": [Interval(Integral, 2, None, closed="left")],
        "autoencoder": [BaseAutoencoder, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        n_clusters: int | str = 8,
        method: str = "kmeans",
        max_clusters: int = 15,
        autoencoder: BaseAutoencoder | None = None,
        random_state: Any = None,
        verbose: int = 0,
    ) -> None:
        self.n_clusters = n_clusters
        self.method = method
        self.max_clusters = max_clusters
        self.autoencoder = autoencoder
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        inner = self.autoencoder if self.autoencoder is not None else Autoencoder()
        tags.input_tags.allow_nan = inner.__sklearn_tags__().input_tags.allow_nan
        return tags

    def _model(self, k: int, seed: int) -> KMeans | GaussianMixture:
        if self.method == "gmm":
            return GaussianMixture(n_components=k, covariance_type="full", random_state=seed)
        return KMeans(n_clusters=k, n_init=10, random_state=seed)

    def _choose_k(self, codes: NDArray[np.float32], seed: int) -> int:
        upper = min(int(self.max_clusters), codes.shape[0] - 1)
        if upper < 2:
            raise InvalidInputError(
                f"n_clusters='auto' needs at least 3 samples to compare clusterings; got "
                f"{codes.shape[0]}."
            )
        rng = np.random.default_rng(seed)
        sample = codes
        if codes.shape[0] > SILHOUETTE_SAMPLE:
            sample = codes[rng.choice(codes.shape[0], SILHOUETTE_SAMPLE, replace=False)]
        self.selection_: dict[int, float] = {}
        for k in tqdm(range(2, upper + 1), desc="choosing k", disable=not self.verbose):
            model = self._model(k, seed).fit(codes)
            if self.method == "gmm":
                self.selection_[k] = float(model.bic(codes))
            else:
                labels = model.predict(sample)
                if len(np.unique(labels)) < 2:
                    self.selection_[k] = -1.0
                    continue
                self.selection_[k] = float(silhouette_score(sample, labels))
        pick = min if self.method == "gmm" else max
        return int(pick(self.selection_, key=self.selection_.__getitem__))

    @_fit_context(prefer_skip_nested_validation=False)  # type: ignore[untyped-decorator]
    def fit(self, X: Any, y: Any = None) -> AutoencoderClusterer:
        """Train (or take) the autoencoder, encode ``X`` and cluster the codes.

        Parameters
        ----------
        X : array-like, DataFrame or list of str
            Data for the autoencoder's family.
        y : None
            Ignored.

        Returns
        -------
        self : AutoencoderClusterer
        """
        seed = seed_from(self.random_state) % (2**31 - 1)
        model = self.autoencoder
        if model is None:
            model = Autoencoder(random_state=seed, verbose=self.verbose)
        if hasattr(model, "module_"):
            self.autoencoder_ = model  # already fitted: take it as it is
        else:
            model = clone(model)
            if model.random_state is None:  # one seed makes the whole pipeline reproducible
                model.set_params(random_state=seed)
            self.autoencoder_ = model.fit(X)
        codes = self.autoencoder_.transform(X)
        if self.n_clusters == "auto":
            k = self._choose_k(codes, seed)
        else:
            k = int(self.n_clusters)
            if k > codes.shape[0]:
                raise InvalidInputError(
                    f"n_clusters={k} is more than the {codes.shape[0]} samples; use fewer "
                    "clusters or n_clusters='auto'."
                )
        self._clustering = self._model(k, seed).fit(codes)
        self.n_clusters_ = k
        self.labels_ = self._clustering.predict(codes).astype(np.int64)
        centers = getattr(self._clustering, "cluster_centers_", None)
        self.cluster_centers_ = centers if centers is not None else self._clustering.means_
        self.n_features_in_ = self.autoencoder_.n_features_in_
        return self

    def _check_fitted(self) -> None:
        """Raise hourglass's NotFittedError (also scikit-learn's) before ``fit``."""
        try:
            check_is_fitted(self, "labels_")
        except Exception as error:  # scikit-learn's NotFittedError
            raise NotFittedError(str(error)) from None

    def transform(self, X: Any) -> NDArray[np.float32]:
        """The autoencoder's codes of ``X``, shape (n_samples, latent_dim)."""
        self._check_fitted()
        return self.autoencoder_.transform(X)

    def predict(self, X: Any) -> NDArray[np.int64]:
        """The cluster of each sample of ``X``."""
        self._check_fitted()
        labels: NDArray[np.int64] = self._clustering.predict(self.transform(X)).astype(np.int64)
        return labels
