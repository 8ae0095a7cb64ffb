"""Figures that show what a model does: error distributions and image grids.

Every function renders with matplotlib's object-oriented API on an Agg canvas
(no pyplot global state, no display needed) and writes a PNG atomically.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from hourglass._atomic import atomic_file

__all__ = ["code_map", "error_histogram", "image_grid", "ranked_images"]

_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")


def _save(figure: Figure, path: str | os.PathLike[str]) -> Path:
    FigureCanvasAgg(figure)
    with atomic_file(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    return Path(path)


def error_histogram(
    errors: dict[str, ArrayLike],
    path: str | os.PathLike[str],
    *,
    threshold: float | None = None,
    threshold_label: str = "threshold",
    bins: int = 50,
    xlabel: str = "reconstruction error",
    title: str = "Reconstruction error",
) -> Path:
    """Overlaid histograms of several error distributions, with a threshold line.

    Parameters
    ----------
    errors : dict of str to array-like
        One distribution per legend entry.
    path : str or path-like
        Where to write the PNG.
    threshold : float, optional
        Drawn as a vertical dashed line.
    threshold_label : str
        Its legend entry.
    bins : int, default=50
        Number of bins, shared by all distributions.
    xlabel, title : str
        Axis label and title.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    arrays = {name: np.asarray(values, dtype=np.float64) for name, values in errors.items()}
    finite = np.concatenate([a[np.isfinite(a)] for a in arrays.values()])
    edges = np.histogram_bin_edges(finite, bins=bins)
    figure = Figure(figsize=(7.5, 4.2))
    axes = figure.add_subplot()
    for (name, values), color in zip(arrays.items(), _COLORS, strict=False):
        axes.hist(
            values, bins=list(edges), alpha=0.55, color=color, label=f"{name} (n={values.size:,})"
        )
    if threshold is not None and np.isfinite(threshold):
        axes.axvline(
            threshold,
            color="black",
            linestyle="--",
            linewidth=1.2,
            label=f"{threshold_label} = {threshold:.4g}",
        )
    axes.set_xlabel(xlabel)
    axes.set_ylabel("number of samples")
    axes.set_title(title)
    axes.legend(frameon=False)
    axes.grid(alpha=0.25)
    return _save(figure, path)


def image_grid(
    rows: Sequence[tuple[str, ArrayLike]],
    path: str | os.PathLike[str],
    *,
    title: str = "",
    captions: Sequence[Sequence[str]] | None = None,
) -> Path:
    """A grid of grey-level images, one labelled row per entry.

    Parameters
    ----------
    rows : sequence of (label, images)
        ``images`` has shape (k, h, w) (or (k, 1, h, w)) with values in [0, 1]
        or 0..255; every row shows its first ``k`` images.
    path : str or path-like
        Where to write the PNG.
    title : str
        Figure title.
    captions : sequence of sequences of str, optional
        A caption under each image, row by row.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    prepared = [(label, np.asarray(images)) for label, images in rows]
    n_cols = max(images.shape[0] for _, images in prepared)
    n_rows = len(prepared)
    figure = Figure(figsize=(1.15 * n_cols + 1.2, 1.3 * n_rows + 0.5))
    grid = figure.subplots(n_rows, n_cols, squeeze=False)
    for r, (label, images) in enumerate(prepared):
        images = images.reshape(images.shape[0], images.shape[-2], images.shape[-1])
        vmax = 255.0 if images.dtype == np.uint8 else 1.0
        for c in range(n_cols):
            axes = grid[r][c]
            axes.set_xticks([])
            axes.set_yticks([])
            for spine in axes.spines.values():
                spine.set_visible(False)
            if c < images.shape[0]:
                axes.imshow(images[c], cmap="gray", vmin=0.0, vmax=vmax)
                if captions is not None and c < len(captions[r]):
                    axes.set_xlabel(captions[r][c], fontsize=8)
            if c == 0:
                axes.set_ylabel(label, fontsize=9, rotation=0, ha="right", va="center")
    if title:
        figure.suptitle(title)
    return _save(figure, path)


def ranked_images(
    images: ArrayLike,
    scores: ArrayLike,
    path: str | os.PathLike[str],
    *,
    labels: ArrayLike | None = None,
    k: int = 20,
    per_row: int = 10,
    title: str = "Largest reconstruction errors",
    score_name: str = "error",
) -> Path:
    """The ``k`` images with the highest scores, highest first, captioned.

    Parameters
    ----------
    images : array-like of shape (n, h, w)
        The images.
    scores : array-like of shape (n,)
        Higher = shown first.
    path : str or path-like
        Where to write the PNG.
    labels : array-like of shape (n,), optional
        Shown in each caption.
    k, per_row : int
        How many images, and how many per row.
    title, score_name : str
        Figure title, and the score's name in captions.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    images = np.asarray(images)
    scores = np.asarray(scores, dtype=np.float64)
    label_values = None if labels is None else np.asarray(labels)
    order = np.argsort(-scores, kind="stable")[:k]
    rows: list[tuple[str, ArrayLike]] = []
    captions: list[list[str]] = []
    for start in range(0, order.size, per_row):
        chunk = order[start : start + per_row]
        rows.append((f"#{start + 1}-{start + chunk.size}", images[chunk]))
        captions.append(
            [
                (f"label {label_values[i]}\n" if label_values is not None else "")
                + f"{score_name} {scores[i]:.3f}"
                for i in chunk
            ]
        )
    return image_grid(rows, path, title=title, captions=captions)


def code_map(
    points: ArrayLike,
    path: str | os.PathLike[str],
    *,
    groups: ArrayLike | None = None,
    title: str = "Codes in two dimensions",
    xlabel: str = "component 1",
    ylabel: str = "component 2",
    legend_title: str = "",
) -> Path:
    """A scatter plot of 2-D points, coloured by group (label, cluster or outlier flag).

    Parameters
    ----------
    points : array-like of shape (n, 2)
        The projected codes.
    path : str or path-like
        Where to write the PNG.
    groups : array-like of shape (n,), optional
        One colour and legend entry per distinct value.
    title, xlabel, ylabel, legend_title : str
        Texts of the figure.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    xy = np.asarray(points, dtype=np.float64)
    figure = Figure(figsize=(7.0, 6.0))
    axes = figure.add_subplot()
    size = max(5.0, min(30.0, 12000.0 / max(1, xy.shape[0])))  # readable at any n
    if groups is None:
        axes.scatter(xy[:, 0], xy[:, 1], s=size, alpha=0.6, color=_COLORS[0], linewidths=0)
    else:
        values = np.asarray(groups)
        names = sorted(set(values.tolist()), key=str)
        colormap = colormaps["tab20" if len(names) > 10 else "tab10"]
        palette = [colormap(i % colormap.N) for i in range(len(names))]
        for i, name in enumerate(names):
            chosen = values == name
            axes.scatter(
                xy[chosen, 0],
                xy[chosen, 1],
                s=size,
                alpha=0.7,
                linewidths=0,
                color=palette[i % len(palette)],
                label=f"{name} ({int(chosen.sum()):,})",
            )
        axes.legend(
            title=legend_title or None,
            markerscale=max(1.0, 12.0 / size),
            fontsize=8,
            frameon=False,
            loc="best",
        )
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(alpha=0.25)
    return _save(figure, path)
