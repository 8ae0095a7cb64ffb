"""Nearest neighbours among code vectors, with bounded memory."""

from __future__ import annotations

from numbers import Integral

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

from hourglass.exceptions import InvalidParameterError

__all__ = ["NEIGHBOR_METRICS", "nearest_codes"]

NEIGHBOR_METRICS: tuple[str, ...] = ("cosine", "euclidean")
_QUERY_CHUNK = 1024  # queries compared at once: memory ~ chunk x references


def nearest_codes(
    queries: ArrayLike, references: ArrayLike, k: int, *, metric: str = "cosine"
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """The ``k`` nearest references of each query.

    Parameters
    ----------
    queries : array-like of shape (n_queries, d)
    references : array-like of shape (n_references, d)
    k : int
        Neighbours per query (capped at ``n_references``).
    metric : {"cosine", "euclidean"}
        Cosine similarity (higher = closer) or Euclidean distance (lower = closer).

    Returns
    -------
    indices : ndarray of shape (n_queries, k)
        Rows of ``references``, nearest first.
    scores : ndarray of shape (n_queries, k)
        Their cosine similarities or Euclidean distances.

    Raises
    ------
    InvalidParameterError
        If ``metric`` is unknown or ``k`` is not a positive int.

    Examples
    --------
    >>> idx, sim = nearest_codes([[1.0, 0.0]], [[0.0, 1.0], [2.0, 0.1], [1.0, 1.0]], 2)
    >>> idx.tolist()
    [[1, 2]]
    """
    if metric not in NEIGHBOR_METRICS:
        raise InvalidParameterError(
            f"Unknown metric {metric!r}; expected one of {list(NEIGHBOR_METRICS)}."
        )
    if isinstance(k, bool) or not isinstance(k, Integral) or k < 1:
        raise InvalidParameterError(f"k must be a positive int (neighbours per query); got {k!r}.")
    q = torch.as_tensor(np.asarray(queries, dtype=np.float64))
    r = torch.as_tensor(np.asarray(references, dtype=np.float64))
    k = max(1, min(int(k), r.shape[0]))
    if metric == "cosine":
        q, r = torch.nn.functional.normalize(q, dim=1), torch.nn.functional.normalize(r, dim=1)
    indices, scores = [], []
    for start in range(0, q.shape[0], _QUERY_CHUNK):
        chunk = q[start : start + _QUERY_CHUNK]
        if metric == "cosine":
            best = (chunk @ r.T).topk(k, dim=1)
        else:
            best = torch.cdist(chunk, r).topk(k, dim=1, largest=False)
        indices.append(best.indices)
        scores.append(best.values)
    return torch.cat(indices).numpy().astype(np.int64), torch.cat(scores).numpy()
