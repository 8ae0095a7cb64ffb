"""Two-dimensional projections of codes, for maps people can look at."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.decomposition import PCA

from hourglass.exceptions import HourglassError

__all__ = ["PROJECTIONS", "project_2d"]

PROJECTIONS: tuple[str, ...] = ("pca", "umap")


def project_2d(
    codes: ArrayLike, *, method: str = "pca", random_state: int = 0
) -> NDArray[np.float64]:
    """Project codes ``(n, d)`` to ``(n, 2)``: PCA (default) or UMAP.

    Examples
    --------
    >>> project_2d(np.eye(3)).shape
    (3, 2)
    """
    values = np.asarray(codes, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] < 2:
        raise HourglassError(
            f"Need at least two codes of shape (n, d) to project; got {values.shape}."
        )
    if method == "pca":
        if values.shape[1] == 1:
            return np.column_stack([values[:, 0], np.zeros(values.shape[0])])
        # Identical codes have no variance: PCA divides 0 by 0 for its explained-variance
        # ratios (not used here) and projects every code to the origin, which is right.
        with np.errstate(divide="ignore", invalid="ignore"):
            projected: NDArray[np.float64] = PCA(
                n_components=2, random_state=random_state
            ).fit_transform(values)
        return projected
    if method == "umap":
        import umap

        reducer = umap.UMAP(n_components=2, random_state=random_state)
        return np.asarray(reducer.fit_transform(values), dtype=np.float64)
    raise HourglassError(f"Unknown projection {method!r}; expected one of {list(PROJECTIONS)}.")
