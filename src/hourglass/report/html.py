"""One self-contained HTML report per model and data set: open it offline, send it by mail.

Every picture is a PNG embedded as a ``data:`` URI; there are no scripts, fonts
or style sheets to fetch. Sections: the model card, training curves, the score
distribution with the threshold, ROC and precision-recall curves (when labels
are given), the most abnormal samples (images with their reconstructions,
table rows with their top columns, texts with their score), a 2-D map of the
codes, and clusters of the codes (:class:`~hourglass.AutoencoderClusterer` with the
model) with their sizes and example members.

The page's markup is the Jinja2 template ``templates/report.html.j2`` beside
this module, rendered with autoescaping on; this module computes what the
sections hold (pictures, tables, lists of text) and leaves all markup to it.
"""

from __future__ import annotations

import base64
import os
import platform
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

import jinja2
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from numpy.typing import NDArray
from sklearn.metrics import auc, precision_recall_curve, roc_curve

from hourglass._atomic import atomic_file
from hourglass._version import __version__
from hourglass.exceptions import InvalidInputError
from hourglass.projection import project_2d
from hourglass.report.figures import code_map, error_histogram, image_grid

__all__ = ["SECTIONS", "build_report"]

#: Section ids, in page order (some appear only when they apply).
SECTIONS = ("model", "training", "scores", "curves", "outliers", "map", "clusters")
_MAX_MAP_POINTS = 5000
_TEMPLATE = "report.html.j2"


@dataclass(frozen=True)
class _Image:
    """A picture, as a ``data:`` URI, with its text alternative."""

    kind: ClassVar[str] = "image"
    uri: str
    alt: str


@dataclass(frozen=True)
class _Table:
    """A table of text cells; with ``row_headers``, each row's first cell labels the row."""

    kind: ClassVar[str] = "table"
    rows: Sequence[Sequence[str]]
    header: Sequence[str] = ()
    row_headers: bool = False


@dataclass(frozen=True)
class _List:
    """A bulleted list of text items."""

    kind: ClassVar[str] = "list"
    items: Sequence[str]


_Block = _Image | _Table | _List


@dataclass(frozen=True)
class _Section:
    id: str
    heading: str
    blocks: Sequence[_Block]


@cache
def _template() -> jinja2.Template:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("hourglass.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return environment.get_template(_TEMPLATE)


def _png(draw: Callable[[Path], Any]) -> str:
    """Run ``draw(path)`` into a temporary PNG and return it as a data URI."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "figure.png"
        draw(path)
        data = path.read_bytes()
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _figure(draw_axes: Callable[[Any], None], size: tuple[float, float] = (6.5, 4.0)) -> str:
    def draw(path: Path) -> None:
        figure = Figure(figsize=size)
        FigureCanvasAgg(figure)
        draw_axes(figure.add_subplot())
        figure.savefig(path, format="png", dpi=100, bbox_inches="tight")

    return _png(draw)


def _is_images(model: Any) -> bool:
    return bool(model.family_.input_kind(model.input_shape_) == "images")


def _training_curves(model: Any) -> str:
    history = model.history_

    def draw(axes: Any) -> None:
        epochs = np.arange(1, len(history["loss"]) + 1)
        axes.plot(epochs, history["loss"], marker="o", label="training loss")
        if "val_loss" in history:
            axes.plot(epochs, history["val_loss"], marker="o", label="validation loss")
        axes.set_xlabel("epoch")
        axes.set_ylabel(f"loss ({model.loss_})")
        axes.set_title("Training curves")
        axes.grid(alpha=0.25)
        axes.legend(frameon=False)

    return _figure(draw)


def _curves(scores: NDArray[np.float64], labels: NDArray[Any]) -> str:
    fpr, tpr, _ = roc_curve(labels, scores)
    precision, recall, _ = precision_recall_curve(labels, scores)

    def draw(path: Path) -> None:
        figure = Figure(figsize=(10.0, 4.0))
        FigureCanvasAgg(figure)
        left, right = figure.subplots(1, 2)
        left.plot(fpr, tpr, label=f"AUROC {auc(fpr, tpr):.3f}")
        left.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
        left.set_xlabel("false-positive rate")
        left.set_ylabel("true-positive rate")
        left.set_title("ROC curve (label 1 = outlier)")
        left.legend(frameon=False)
        right.plot(recall, precision, label=f"area {auc(recall, precision):.3f}")
        right.axhline(labels.mean(), linestyle="--", color="grey", label="chance")
        right.set_xlabel("recall")
        right.set_ylabel("precision")
        right.set_title("Precision-recall curve")
        right.legend(frameon=False)
        for axes in (left, right):
            axes.grid(alpha=0.25)
        figure.savefig(path, format="png", dpi=100, bbox_inches="tight")

    return _png(draw)


def _pick(data: Any, indices: NDArray[np.int64]) -> Any:
    if hasattr(data, "iloc"):
        return data.iloc[indices]
    if isinstance(data, list):
        return [data[i] for i in indices]
    return np.asarray(data)[indices]


def _outliers_section(
    model: Any, data: Any, scores: NDArray[np.float64], k: int
) -> tuple[_Block, ...]:
    worst = np.argsort(-scores, kind="stable")[:k]
    if _is_images(model):
        originals = np.asarray(_pick(data, worst))
        reconstructions = model.reconstruct(originals)
        captions = [[f"#{i}\n{scores[i]:.3g}" for i in worst], []]
        uri = _png(
            lambda path: image_grid(
                [("original", originals), ("reconstructed", reconstructions)],
                path,
                title=f"The {len(worst)} most abnormal samples",
                captions=captions,
            )
        )
        return (_Image(uri, "most abnormal samples with their reconstructions"),)
    rows: list[tuple[str, ...]] = []
    if model.family_.explains:
        contributions = model.explain(_pick(data, worst)).to_numpy()
        columns = model.table_schema_.columns
        for rank, (i, row) in enumerate(zip(worst, contributions, strict=True), start=1):
            top = np.argsort(-row)[:3]
            named = "; ".join(f"{columns[j]} (x{row[j]:.1f})" for j in top)
            rows.append((str(rank), str(i), f"{scores[i]:.4g}", named))
        header = ("rank", "row", "score", "top columns")
    else:
        items = _pick(data, worst)
        if hasattr(items, "to_numpy"):  # DataFrame rows, not its column names
            items = list(items.to_numpy())
        for rank, (i, item) in enumerate(zip(worst, items, strict=True), start=1):
            text = item if isinstance(item, str) else np.array2string(np.asarray(item), threshold=8)
            rows.append((str(rank), str(i), f"{scores[i]:.4g}", str(text)[:200]))
        header = ("rank", "sample", "score", "content")
    return (_Table(rows, header=header),)


def _clusters_section(
    model: Any, data: Any, codes: NDArray[np.float32], k: int
) -> tuple[_Block, ...]:
    from hourglass.estimators import AutoencoderClusterer

    k = max(2, min(k, codes.shape[0] - 1))
    clusterer = AutoencoderClusterer(n_clusters=k, autoencoder=model, random_state=0).fit(data)
    clusters, k = clusterer.labels_, clusterer.n_clusters_
    sizes = np.bincount(clusters, minlength=k)
    table = _Table([(str(c), f"{sizes[c]:,}") for c in range(k)], header=("cluster", "samples"))
    if _is_images(model):
        rows = []
        for c in range(k):
            members = np.flatnonzero(clusters == c)[:10]
            rows.append((f"cluster {c}", np.asarray(_pick(data, members))))
        uri = _png(lambda path: image_grid(rows, path, title="Example members of each cluster"))
        return table, _Image(uri, "example members of each cluster")
    examples = []
    for c in range(k):
        members = np.flatnonzero(clusters == c)[:3]
        shown = (
            [str(item)[:80] for item in _pick(data, members)]
            if isinstance(data, list)
            else [str(int(i)) for i in members]
        )
        examples.append(f"cluster {c}: {' | '.join(shown)}")
    return table, _List(examples)


def _binary_labels(labels: Any, n_samples: int) -> NDArray[np.int64]:
    """``labels`` as 0/1 ints, one per sample; raise if they are anything else."""
    values = np.asarray(labels).reshape(-1)
    if values.shape[0] != n_samples:
        raise InvalidInputError(
            f"labels has {values.shape[0]} values but the data has {n_samples} samples; give "
            "one label per sample."
        )
    try:
        numbers = values.astype(np.float64)
    except (TypeError, ValueError):
        numbers = np.full(values.shape, np.nan)
    unexpected = values[~np.isin(numbers, (0.0, 1.0))]
    if unexpected.size:
        shown = sorted({str(v) for v in unexpected[:1000]})[:5]
        raise InvalidInputError(
            f"labels must be 1 for outliers and 0 for normal samples; got other values, such "
            f"as {', '.join(shown)}. Convert them first (e.g. labels == 'fraud')."
        )
    return numbers.astype(np.int64)


def build_report(
    model: Any,
    data: Any,
    path: str | os.PathLike[str],
    *,
    labels: Any = None,
    title: str = "hourglass report",
    n_outliers: int = 12,
    n_clusters: int = 8,
) -> Path:
    """Write a self-contained HTML report on ``model`` applied to ``data``.

    Parameters
    ----------
    model : Autoencoder or AutoencoderOutlierDetector
        A fitted model of any family.
    data : array-like, DataFrame or list of str
        Data for the model.
    path : str or path-like
        The HTML file to write (atomically).
    labels : array-like of shape (n_samples,), optional
        1 for outliers, 0 for normal samples: adds ROC and precision-recall curves.
    title : str
        Page title.
    n_outliers, n_clusters : int
        How many abnormal samples to show; how many clusters of codes.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    InvalidInputError
        If ``data`` does not suit the model, or ``labels`` are not one 0 or 1
        per sample.
    """
    scores = model.reconstruction_error(data)
    codes = model.transform(data)
    if labels is not None:
        labels = _binary_labels(labels, len(scores))
    threshold = getattr(model, "threshold_", None)
    sections = [
        _Section("model", "Model card", (_model_card(model, scores, codes, threshold),)),
        _Section("training", "Training", (_Image(_training_curves(model), "training curves"),)),
        _Section("scores", "Scores", (_scores_section(model, scores, labels, threshold),)),
    ]
    if labels is not None and len(np.unique(np.asarray(labels))) == 2:
        curves = _Image(_curves(scores, np.asarray(labels).astype(int)), "ROC and PR curves")
        sections.append(_Section("curves", "ROC and precision-recall", (curves,)))
    sections += [
        _Section(
            "outliers", "Most abnormal samples", _outliers_section(model, data, scores, n_outliers)
        ),
        _Section("map", "Map of the codes", (_map_section(scores, codes, labels, threshold),)),
        _Section(
            "clusters", "Clusters of the codes", _clusters_section(model, data, codes, n_clusters)
        ),
    ]
    page = _template().render(title=title, sections=sections)
    with atomic_file(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return Path(path)


def _model_card(
    model: Any, scores: NDArray[np.float64], codes: NDArray[np.float32], threshold: float | None
) -> _Table:
    params = model.get_params()
    card = {
        "family": model.arch_,
        "class": type(model).__name__,
        "sample shape": str(tuple(model.input_shape_)),
        "samples in this report": f"{len(scores):,}",
        "score": model.metric_,
        "threshold": "—" if threshold is None else f"{threshold:.6g}",
        "latent dimension": str(codes.shape[1]),
        "epochs trained": str(model.n_epochs_),
        "training time": f"{model.fit_time_:.1f} s",
        "parameters": ", ".join(f"{k}={v!r}" for k, v in sorted(params.items())),
        "hourglass": __version__,
        "python": platform.python_version(),
    }
    return _Table(list(card.items()), row_headers=True)


def _scores_section(
    model: Any, scores: NDArray[np.float64], labels: Any, threshold: float | None
) -> _Image:
    groups: dict[str, Any] = {"all samples": scores}
    if labels is not None:
        truth = np.asarray(labels).astype(int)
        groups = {"normal (label 0)": scores[truth == 0], "outliers (label 1)": scores[truth == 1]}
    histogram = _png(
        lambda p: error_histogram(
            groups,
            p,
            threshold=threshold,
            xlabel=f"score ({model.metric_}; higher = more abnormal)",
            title="Score distribution",
        )
    )
    return _Image(histogram, "score histogram")


def _map_section(
    scores: NDArray[np.float64], codes: NDArray[np.float32], labels: Any, threshold: float | None
) -> _Image:
    shown = np.arange(len(scores))
    if shown.size > _MAX_MAP_POINTS:
        shown = np.sort(np.random.default_rng(0).choice(shown.size, _MAX_MAP_POINTS, replace=False))
    color = None
    if labels is not None:
        truth = np.asarray(labels).astype(int)[shown]
        color = np.where(truth == 1, "outlier (label 1)", "normal (label 0)")
    elif threshold is not None:
        color = np.where(scores[shown] > threshold, "outlier", "inlier")
    points = project_2d(codes[shown])
    map_uri = _png(
        lambda p: code_map(
            points,
            p,
            groups=color,
            title="Codes (PCA)",
            legend_title="" if color is None else "group",
        )
    )
    return _Image(map_uri, "2-D map of the codes")
