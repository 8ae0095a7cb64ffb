"""Similarity search in code space, shared by every estimator that encodes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from hourglass.exceptions import InvalidInputError, InvalidParameterError
from hourglass.neighbors import NEIGHBOR_METRICS, nearest_codes

__all__ = ["SimilarityMixin"]


class SimilarityMixin:
    """:meth:`set_index`, :meth:`nearest` and :meth:`most_similar` on top of ``transform``."""

    reference_codes_: NDArray[np.float32]

    if TYPE_CHECKING:

        def transform(self, X: Any) -> NDArray[np.float32]: ...

    def set_index(self, X_ref: Any) -> Any:
        """Keep the codes of a reference set for :meth:`nearest` (saved with the model).

        Parameters
        ----------
        X_ref : array-like or list of str
            Data shaped like the training data.

        Returns
        -------
        self
        """
        self.reference_codes_ = self.transform(X_ref)
        return self

    def nearest(
        self, X_query: Any, k: int = 5, *, metric: str = "cosine", index: Any = None
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Nearest neighbours of each query among reference samples, in code space.

        Parameters
        ----------
        X_query : array-like, list of str or Stream
            Data shaped like the training data (a stream is encoded piece by piece).
        k : int, default=5
            Neighbours per query.
        metric : {"cosine", "euclidean"}, default="cosine"
            Cosine similarity (higher = closer) or Euclidean distance of codes.
        index : array-like, list of str or Stream, optional
            The reference samples; default: those given to :meth:`set_index`.

        Returns
        -------
        indices : ndarray of shape (n_queries, k)
            Positions in the reference set, nearest first.
        scores : ndarray of shape (n_queries, k)
            Cosine similarities or Euclidean distances.
        """
        if index is not None:
            references = self.transform(index)
        elif hasattr(self, "reference_codes_"):
            references = self.reference_codes_
        else:
            raise InvalidInputError(
                "nearest needs reference samples: pass index=X_ref, or call set_index(X_ref) "
                "once (the codes are then saved with the model)."
            )
        if metric not in NEIGHBOR_METRICS:
            raise InvalidParameterError(
                f"Unknown metric {metric!r}; expected one of {list(NEIGHBOR_METRICS)}."
            )
        return nearest_codes(self.transform(X_query), references, k, metric=metric)

    def most_similar(
        self, query: Any, corpus: Any, k: int = 5
    ) -> list[list[tuple[int, float, Any]]]:
        """The ``k`` items of ``corpus`` whose codes are closest to each query's (cosine).

        Works for every family: images, table rows and sentences
        (``most_similar(["a query"], sentences)``).

        Parameters
        ----------
        query, corpus : array-like or list of str
            Data shaped like the training data.
        k : int, default=5
            Neighbours per query (at most ``len(corpus)``).

        Returns
        -------
        list of lists of (index, similarity, item)
            Per query, the nearest corpus items first: their index in
            ``corpus``, the cosine similarity of the codes (1 = same direction)
            and the item itself.
        """
        indices, similarities = self.nearest(query, k, index=corpus)
        pick = corpus.iloc.__getitem__ if hasattr(corpus, "iloc") else corpus.__getitem__
        return [
            [(int(i), float(v), pick(int(i))) for i, v in zip(row, values, strict=True)]
            for row, values in zip(indices, similarities, strict=True)
        ]
