"""The HTML report as a person sees it: rendered by headless Chromium.

The set-up installs Debian's ``chromium`` and ``chromium-driver`` when they are
missing and the tests run as root (as in CI); elsewhere it fails with the
command to run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from helpers import bar_images
from hourglass import AutoencoderOutlierDetector
from hourglass.cli import main
from hourglass.report.html import build_report

PACKAGES = ("chromium", "chromium-driver")


def _ensure_chromium() -> tuple[str, str]:
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if (browser is None or driver is None) and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env, timeout=600)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", *PACKAGES], check=False, env=env, timeout=900
        )
        browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.fail(
            "This test needs headless Chromium: apt-get install chromium chromium-driver "
            "(Debian's packages)."
        )
    return browser, driver


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, chromedriver = _ensure_chromium()
    options = webdriver.ChromeOptions()
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1100,1600",
    ):
        options.add_argument(argument)
    options.binary_location = chromium
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
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
