"""The HTML report as a person sees it: rendered by headless Chromium.

The set-up installs Debian's ``chromium`` and ``chromium-driver`` when they are
missing and the tests run as root (as in CI); elsewhere it fails with the
command to run.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from helpers import bar_images, headless_chromium
from hourglass import AutoencoderOutlierDetector
from hourglass.cli import main
from hourglass.report.html import build_report


@pytest.fixture(scope="module")
def browser():
    driver = headless_chromium("The report's browser test", "1100,1600")
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's report on the real data when it is available, else a synthetic one."""
    folder = tmp_path_factory.mktemp("browser")
    data_dir = os.environ.get("HOURGLASS_DATA")
    if data_dir:
        argv = [
            "demo",
            "--data-dir",
            data_dir,
            "--out",
            str(folder),
            "--train-size",
            "1000",
            "--epochs",
            "2",
            "-q",
        ]
        assert main(argv) == 0
        return folder / "report.html"
    detector = AutoencoderOutlierDetector(
        latent_dim=6, epochs=3, fpr=0.05, verbose=0, random_state=0
    ).fit(bar_images(400, seed=0))
    noise = np.random.default_rng(1).integers(0, 256, (30, 12, 12), dtype=np.uint8)
    data = np.concatenate([bar_images(100, seed=2), noise])
    return build_report(
        detector, data, folder / "report.html", labels=np.r_[np.zeros(100), np.ones(30)]
    )


def test_report_renders_with_every_image_decoded_and_no_console_errors(
    browser, report: Path, tmp_path: Path
) -> None:
    browser.get(report.as_uri())
    assert browser.title.startswith("hourglass")
    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.complete, i.naturalWidth]);"
    )
    expected = report.read_text(encoding="utf-8").count("<img ")
    assert len(images) == expected >= 5
    assert all(complete and width > 0 for complete, width in images)
    sections = browser.execute_script(
        "return Array.from(document.querySelectorAll('section')).map(s => s.id);"
    )
    assert "scores" in sections
    assert "outliers" in sections
    problems = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    assert problems == []
    screenshot = tmp_path / "report.png"
    assert browser.save_screenshot(str(screenshot))
    picture = imread(screenshot)
    assert picture.shape[0] > 500
    assert picture.std() > 0
