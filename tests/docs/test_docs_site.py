"""The built documentation site as a reader sees it: rendered by headless Chromium.

These tests check a site that is already built; they do not build it (a build runs
the whole gallery). ``make docs`` runs them right after its Sphinx build, with
``HOURGLASS_DOCS_SITE`` naming the output folder, and ``make test`` leaves
``tests/docs`` out. Run by hand after a build::

    HOURGLASS_DOCS_SITE=docs/_build/html python -m pytest tests/docs

A missing site is a failure that says how to build it, never a skip. Chromium and
its driver are Debian's ``chromium`` and ``chromium-driver``, installed when missing
and the tests run as root (as in CI), as for the HTML report's browser test.
"""

from __future__ import annotations

import functools
import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import headless_chromium

DEFAULT_SITE = Path(__file__).resolve().parents[2] / "docs" / "_build" / "html"

#: The pages rendered: the home page, the gallery's index (one thumbnail per
#: example) and one example's page with its figures.
PAGES = ("index.html", "auto_examples/index.html", "auto_examples/plot_denoising.html")


@pytest.fixture(scope="module")
def site() -> Path:
    folder = Path(os.environ.get("HOURGLASS_DOCS_SITE", DEFAULT_SITE))
    if not (folder / "index.html").is_file():
        pytest.fail(
            f"No built documentation in {folder}: run `make docs` (which builds the site "
            "and then runs these tests), or point HOURGLASS_DOCS_SITE at a built site."
        )
    return folder


@pytest.fixture(scope="module")
def base_url(site: Path) -> Iterator[str]:
    """Serve the site over HTTP on localhost, as a reader's browser would fetch it."""

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    handler = functools.partial(QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    driver = headless_chromium("The documentation's browser tests", "1280,1000")
    yield driver
    driver.quit()


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_every_image_without_console_errors(
    browser, base_url: str, site: Path, page: str
) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    assert (site / page).is_file(), f"{page} is missing from the built site {site}"
    browser.get_log("browser")  # drop what earlier pages logged
    browser.get(f"{base_url}/{page}")
    assert "hourglass" in browser.title
    # Bring every image into view (some are loaded lazily), then wait until each
    # has finished loading, successfully or not.
    browser.execute_script(
        "for (const image of document.images) { image.loading = 'eager'; image.scrollIntoView(); }"
    )
    WebDriverWait(browser, 30).until(
        lambda driver: driver.execute_script(
            "return Array.from(document.images).every(image => image.complete);"
        )
    )
    images = browser.execute_script(
        "return Array.from(document.images).map(image => [image.src, image.naturalWidth]);"
    )
    assert [src for src, width in images if width == 0] == []
    if page.startswith("auto_examples/"):
        assert len(images) >= 1, f"{page} shows no figure"
    stylesheets = browser.execute_script("return document.styleSheets.length;")
    assert stylesheets >= 1, "the theme's stylesheets did not load"
    # The browser asks every server for /favicon.ico by itself; the site sets none.
    problems = [
        entry
        for entry in browser.get_log("browser")
        if entry["level"] == "SEVERE" and "/favicon.ico " not in entry["message"]
    ]
    assert problems == []


def test_gallery_lists_every_example(site: Path) -> None:
    examples = sorted(Path(__file__).resolve().parents[2].glob("examples/plot_*.py"))
    gallery = (site / "auto_examples" / "index.html").read_text(encoding="utf-8")
    assert len(examples) >= 8
    missing = [path.stem for path in examples if f"{path.stem}.html" not in gallery]
    assert missing == []
