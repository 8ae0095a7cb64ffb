"""The self-contained HTML report: every section present, every picture embedded."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import bar_images, mixed_table
from hourglass import AutoencoderOutlierDetector
from hourglass.cli import main
from hourglass.report.html import SECTIONS, build_report


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.images: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "section":
            self.sections.append(values.get("id") or "")
        if tag == "img":
            self.images.append(values.get("src") or "")
        if tag in ("script", "link", "iframe"):
            self.links.append(tag)


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def _assert_self_contained(page: _Page) -> None:
    assert page.images
    assert all(src.startswith("data:image/png;base64,") for src in page.images)
    assert not page.links  # no scripts, style sheets or frames to fetch


def test_image_report_has_every_section_and_embeds_every_picture(tmp_path: Path) -> None:
    normal = bar_images(400, seed=0)
    detector = AutoencoderOutlierDetector(
        latent_dim=6, epochs=5, verbose=0, random_state=0, fpr=0.05
    ).fit(normal)
    noise = np.random.default_rng(1).integers(0, 256, (40, 12, 12), dtype=np.uint8)
    data = np.concatenate([bar_images(100, seed=2), noise])
    labels = np.r_[np.zeros(100), np.ones(40)]
    page = _parse(build_report(detector, data, tmp_path / "r.html", labels=labels, title="T"))
    assert page.sections == list(SECTIONS)
    _assert_self_contained(page)
    text = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert re.search(r"<th>family</th><td>dense</td>", text)


def test_table_and_text_reports(tmp_path: Path) -> None:
    table = mixed_table(300, seed=3)
    model = AutoencoderOutlierDetector(
        arch="tabular", latent_dim=2, epochs=3, verbose=0, random_state=0, fpr=0.05
    ).fit(table)
    page = _parse(build_report(model, table, tmp_path / "t.html"))
    assert page.sections == [s for s in SECTIONS if s != "curves"]  # no labels, no curves
    _assert_self_contained(page)
    assert "top columns" in (tmp_path / "t.html").read_text(encoding="utf-8")


def test_cli_report_with_a_label_column(tmp_path: Path) -> None:
    frame = pd.DataFrame(np.random.default_rng(4).random((200, 4)), columns=list("abcd"))
    frame["is_bad"] = (frame["a"] > 0.9).astype(int)
    frame.to_csv(tmp_path / "rows.csv", index=False)
    assert (
        main(
            [
                "train",
                str(tmp_path / "rows.csv"),
                "-o",
                str(tmp_path / "m"),
                "--drop-columns",
                "is_bad",
                "--epochs",
                "2",
                "--latent-dim",
                "2",
                "-q",
            ]
        )
        == 0
    )
    out = tmp_path / "report.html"
    assert (
        main(
            [
                "report",
                str(tmp_path / "m"),
                str(tmp_path / "rows.csv"),
                "--labels",
                "is_bad",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    page = _parse(out)
    assert page.sections == list(SECTIONS)
    _assert_self_contained(page)
    assert (
        main(
            [
                "report",
                str(tmp_path / "m"),
                str(tmp_path / "rows.csv"),
                "-o",
                str(tmp_path / "r.pdf"),
            ]
        )
        == 2  # a bad option value: a usage error
    )


@pytest.mark.slow
def test_the_demo_writes_a_complete_report(tmp_path: Path) -> None:
    import os

    folder = os.environ.get("HOURGLASS_DATA")
    if not folder:
        pytest.skip("HOURGLASS_DATA is not set")
    assert (
        main(
            [
                "demo",
                "--data-dir",
                folder,
                "--out",
                str(tmp_path),
                "--train-size",
                "1000",
                "--epochs",
                "2",
                "-q",
            ]
        )
        == 0
    )
    page = _parse(tmp_path / "report.html")
    assert page.sections == list(SECTIONS)
    _assert_self_contained(page)
