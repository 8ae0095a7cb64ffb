"""Figures: each writes a valid, non-blank PNG, atomically, whatever the image dtype."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.image import imread
from numpy.typing import NDArray

from hourglass.report import error_histogram, figures, image_grid, ranked_images

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def read_png(path: Path) -> NDArray[np.float32]:
    """The pixels of a PNG, after checking it is one and is not blank."""
    assert path.read_bytes()[:8] == PNG_MAGIC
    pixels = np.asarray(imread(path))
    assert pixels.ndim == 3
    assert pixels.shape[2] in (3, 4)
    assert pixels.std() > 0
    return pixels


def digits(n: int = 6, side: int = 12) -> NDArray[np.uint8]:
    """``n`` uint8 images with a bright square of growing size on black."""
    images = np.zeros((n, side, side), dtype=np.uint8)
    for i in range(n):
        images[i, 2 : 3 + i, 2 : 3 + i] = 255
    return images


def leftovers(folder: Path, keep: Sequence[str]) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


# -------------------------------------------------------------- error_histogram


@pytest.fixture(scope="module")
def errors() -> dict[str, NDArray[np.float64]]:
    rng = np.random.default_rng(0)
    return {"normal": rng.gamma(2.0, 0.01, 500), "outliers": rng.gamma(5.0, 0.02, 200)}


def test_error_histogram_writes_a_png(
    errors: dict[str, NDArray[np.float64]], tmp_path: Path
) -> None:
    path = tmp_path / "histogram.png"

    written = error_histogram(errors, path, threshold=0.05, title="errors")

    assert written == path
    read_png(path)
    assert leftovers(tmp_path, keep=["histogram.png"]) == []


def test_error_histogram_accepts_lists_and_str_paths(tmp_path: Path) -> None:
    path = error_histogram({"a": [0.1, 0.2, 0.2, 0.4]}, str(tmp_path / "h.png"))

    assert path == tmp_path / "h.png"
    read_png(path)


def test_error_histogram_draws_a_finite_threshold(
    errors: dict[str, NDArray[np.float64]], tmp_path: Path
) -> None:
    without = read_png(error_histogram(errors, tmp_path / "none.png"))
    with_line = read_png(error_histogram(errors, tmp_path / "line.png", threshold=0.05))

    assert without.shape != with_line.shape or not np.array_equal(without, with_line)


@pytest.mark.parametrize("threshold", [np.inf, -np.inf, np.nan])
def test_error_histogram_does_not_draw_a_non_finite_threshold(
    errors: dict[str, NDArray[np.float64]], threshold: float, tmp_path: Path
) -> None:
    without = read_png(error_histogram(errors, tmp_path / "none.png"))

    infinite = read_png(error_histogram(errors, tmp_path / "inf.png", threshold=threshold))

    np.testing.assert_array_equal(infinite, without)


def test_error_histogram_ignores_non_finite_errors(tmp_path: Path) -> None:
    path = tmp_path / "h.png"

    error_histogram({"a": np.array([0.1, 0.2, np.inf, 0.3]), "b": [0.5, np.nan, 0.6]}, path)

    read_png(path)


# ------------------------------------------------------------------ image_grid


def test_image_grid_writes_a_png(tmp_path: Path) -> None:
    path = tmp_path / "grid.png"

    written = image_grid(
        [("originals", digits()), ("copies", digits())],
        path,
        title="a grid",
        captions=[[f"#{i}" for i in range(6)], ["x"]],
    )

    assert written == path
    read_png(path)
    assert leftovers(tmp_path, keep=["grid.png"]) == []


def test_image_grid_shows_uint8_and_float_images_alike(tmp_path: Path) -> None:
    images = digits()

    as_uint8 = read_png(image_grid([("row", images)], tmp_path / "uint8.png"))
    as_float = read_png(image_grid([("row", images / 255.0)], tmp_path / "float.png"))
    as_float32 = read_png(
        image_grid([("row", (images / 255.0).astype(np.float32))], tmp_path / "f32.png")
    )

    np.testing.assert_allclose(as_float, as_uint8, atol=1 / 255)
    np.testing.assert_allclose(as_float32, as_uint8, atol=1 / 255)


def test_image_grid_accepts_channel_first_images_and_ragged_rows(tmp_path: Path) -> None:
    images = digits()

    flat = read_png(image_grid([("a", images), ("b", images[:2])], tmp_path / "flat.png"))
    channel = read_png(
        image_grid([("a", images[:, None]), ("b", images[:2, None])], tmp_path / "chan.png")
    )

    np.testing.assert_array_equal(channel, flat)


# --------------------------------------------------------------- ranked_images


class GridSpy:
    """Stands in for ``image_grid``; records what it was asked to draw."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, NDArray[Any]]] = []
        self.captions: list[list[str]] = []
        self.title = ""

    def __call__(
        self,
        rows: Sequence[tuple[str, Any]],
        path: Any,
        *,
        title: str = "",
        captions: Sequence[Sequence[str]] | None = None,
    ) -> Path:
        self.rows = [(label, np.asarray(images)) for label, images in rows]
        self.captions = [list(row) for row in captions or []]
        self.title = title
        return Path(path)


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> GridSpy:
    grid = GridSpy()
    monkeypatch.setattr(figures, "image_grid", grid)
    return grid


def test_ranked_images_shows_the_highest_scores_first(spy: GridSpy, tmp_path: Path) -> None:
    images = digits(6)
    scores = np.array([0.2, 0.9, 0.1, 0.5, 0.7, 0.3])

    ranked_images(images, scores, tmp_path / "worst.png", k=4, per_row=2, title="worst")

    assert [label for label, _ in spy.rows] == ["#1-2", "#3-4"]
    shown = np.concatenate([row for _, row in spy.rows])
    np.testing.assert_array_equal(shown, images[[1, 4, 3, 5]])
    assert spy.captions == [["error 0.900", "error 0.700"], ["error 0.500", "error 0.300"]]
    assert spy.title == "worst"


def test_ranked_images_captions_labels_and_score_name(spy: GridSpy, tmp_path: Path) -> None:
    scores = np.array([0.25, 0.75, 0.5])

    ranked_images(digits(3), scores, tmp_path / "w.png", labels=[7, 8, 9], k=10, score_name="mae")

    assert [label for label, _ in spy.rows] == ["#1-3"]
    assert spy.captions == [["label 8\nmae 0.750", "label 9\nmae 0.500", "label 7\nmae 0.250"]]


def test_ranked_images_keeps_the_order_of_ties(spy: GridSpy, tmp_path: Path) -> None:
    images = digits(4)

    ranked_images(images, [1.0, 2.0, 1.0, 2.0], tmp_path / "w.png", k=4)

    np.testing.assert_array_equal(spy.rows[0][1], images[[1, 3, 0, 2]])


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_ranked_images_writes_a_png(dtype: type, tmp_path: Path) -> None:
    images = digits(12).astype(dtype)
    if dtype is not np.uint8:
        images = images / 255

    path = ranked_images(images, np.arange(12.0), tmp_path / "worst.png", labels=np.arange(12))

    assert path == tmp_path / "worst.png"
    read_png(path)
    assert leftovers(tmp_path, keep=["worst.png"]) == []


# ------------------------------------------------------------------- atomicity


def test_a_failed_render_leaves_the_previous_file_and_no_temporary_file(
    errors: dict[str, NDArray[np.float64]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "histogram.png"
    path.write_bytes(b"the previous figure")

    def broken_savefig(self: Figure, *args: object, **kwargs: object) -> None:
        Path(str(args[0])).write_bytes(b"half a PNG")
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken_savefig)

    with pytest.raises(OSError, match="disk full"):
        error_histogram(errors, path)
    assert path.read_bytes() == b"the previous figure"
    assert leftovers(tmp_path, keep=["histogram.png"]) == []


def test_rewriting_a_figure_replaces_it_without_leftovers(tmp_path: Path) -> None:
    path = tmp_path / "grid.png"

    image_grid([("a", digits())], path)
    first = path.read_bytes()
    image_grid([("a", digits()[::-1])], path)

    assert path.read_bytes() != first
    read_png(path)
    assert leftovers(tmp_path, keep=["grid.png"]) == []
