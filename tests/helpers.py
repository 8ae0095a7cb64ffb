"""Small data generators shared by test modules (``pythonpath`` includes ``tests/``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, settings

from hourglass.nn.fused import FUSED_ACTIVATIONS

#: Every (hidden activation, output activation, loss) the fused dense step supports.
FUSED_CASES = [
    (activation, output, loss)
    for activation in FUSED_ACTIVATIONS
    for output in ("sigmoid", "linear")
    for loss in ("bce", "mse", "mae")
    if not (loss == "bce" and output == "linear")
]


def bar_images(n: int, seed: int, shape: tuple[int, ...] = (12, 12)) -> np.ndarray:
    """uint8 images of one random horizontal or vertical bar: simple structure to learn.

    ``shape`` is (h, w), or (c, h, w) for the same bar in every channel.
    """
    rng = np.random.default_rng(seed)
    height, width = shape[-2:]
    images = np.zeros((n, height, width), dtype=np.uint8)
    for image, vertical, at in zip(
        images, rng.integers(0, 2, n), rng.integers(1, width - 1, n), strict=True
    ):
        if vertical:
            image[:, at - 1 : at + 1] = 255
        else:
            image[at - 1 : at + 1, :] = 255
    if len(shape) == 3:
        images = np.repeat(images[:, np.newaxis], shape[0], axis=1)
    return images


def mixed_table(n: int, seed: int) -> pd.DataFrame:
    """A table with related numeric and categorical columns, booleans and missing values."""
    rng = np.random.default_rng(seed)
    age = rng.normal(40, 10, n).round()
    income = (age * 1000 + rng.normal(0, 2000, n)).round(-2)
    city = np.where(age > 45, "north", np.where(age > 35, "centre", "south")).astype(object)
    owner = age + rng.normal(0, 5, n) > 40
    frame = pd.DataFrame({"age": age, "income": income, "city": city, "owner": owner})
    frame.loc[rng.random(n) < 0.05, "income"] = np.nan
    frame.loc[rng.random(n) < 0.05, "city"] = None
    return frame


def bounded_properties(max_examples: int, *also_suppress: HealthCheck) -> settings:
    """Hypothesis settings for a bounded, deterministic budget (same examples every run).

    No deadline (CI machines are noisy), no example database, and the "too slow"
    health check off, plus ``also_suppress``.
    """
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[*also_suppress, HealthCheck.too_slow],
    )


#: Small dense-family settings for tests about that family (arch="auto", the default,
#: trains the tabular family on 2-D arrays; see test_families.py).
DENSE_FAST: dict[str, Any] = {
    "arch": "dense",
    "latent_dim": 2,
    "epochs": 2,
    "batch_size": 32,
    "verbose": 0,
}


#: Debian's packages of the browser the rendering tests drive.
CHROMIUM_PACKAGES = ("chromium", "chromium-driver")


def headless_chromium(what: str, window_size: str) -> Any:
    """A selenium driver of headless Chromium that records the browser console.

    Installs Debian's ``chromium`` and ``chromium-driver`` when they are missing
    and the tests run as root (as in CI); elsewhere fails, naming ``what`` needs
    them and the command to run.
    """
    import os
    import shutil
    import subprocess

    import pytest
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    found = shutil.which("chromium"), shutil.which("chromedriver")
    if None in found and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env, timeout=600)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", *CHROMIUM_PACKAGES],
            check=False,
            env=env,
            timeout=900,
        )
        found = shutil.which("chromium"), shutil.which("chromedriver")
    chromium, chromedriver = found
    if chromium is None or chromedriver is None:
        pytest.fail(
            f"{what} needs headless Chromium: apt-get install chromium chromium-driver "
            "(Debian's packages)."
        )
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--window-size={window_size}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(chromedriver), options=options)
