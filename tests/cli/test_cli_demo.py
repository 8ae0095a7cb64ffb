"""``hourglass demo``: the reference study end to end, on the real data sets.

The data are found only through ``$HOURGLASS_DATA`` (a folder with ``mnist/``
and ``fashion-mnist/``); the tests that need them skip when it is unset.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.image import imread

import hourglass
from hourglass import reference_study
from hourglass.cli import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FIGURES = ("histogram.png", "reconstructions.png", "worst.png")
TRAIN_SIZE = 2000
# 2,000 images for 3 epochs (75 optimiser steps) under-train the model (AUROC
# about 0.89); 10 epochs reach about 0.97 in a few seconds.
EPOCHS = 10


@pytest.fixture(scope="module")
def data_dir() -> Path:
    folder = os.environ.get("HOURGLASS_DATA")
    if not folder:
        pytest.skip("HOURGLASS_DATA is not set: no MNIST / Fashion-MNIST to run the demo on")
    return Path(folder)


@pytest.fixture(scope="module")
def demo(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The demo's output folder, and what it printed with ``-q``."""
    out = tmp_path_factory.mktemp("demo")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(
            [
                *("demo", "--data-dir", str(data_dir), "--out", str(out)),
                *("--train-size", str(TRAIN_SIZE), "--epochs", str(EPOCHS), "-q"),
            ]
        )
    assert code == 0
    return out, printed.getvalue()


@pytest.fixture(scope="module")
def metrics(demo: tuple[Path, str]) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((demo[0] / "metrics.json").read_text(encoding="utf-8"))
    return result


@pytest.mark.slow
def test_demo_writes_its_files_and_nothing_else(demo: tuple[Path, str]) -> None:
    out, printed = demo

    expected = ["metrics.json", "model", "report.html", *FIGURES]
    assert sorted(p.name for p in out.iterdir()) == sorted(expected)
    assert printed == ""  # -q


@pytest.mark.slow
@pytest.mark.parametrize("name", FIGURES)
def test_demo_figures_are_valid_pngs(demo: tuple[Path, str], name: str) -> None:
    path = demo[0] / name

    assert path.read_bytes()[:8] == PNG_MAGIC
    pixels = imread(path)
    assert pixels.ndim == 3
    assert pixels.shape[2] in (3, 4)
    assert min(pixels.shape[:2]) > 100
    assert pixels.std() > 0


@pytest.mark.slow
def test_demo_metrics_have_the_documented_keys(metrics: dict[str, Any]) -> None:
    assert {
        "protocol",
        "training_data",
        "n_train",
        "n_calibration",
        "n_eval_mnist",
        "n_eval_fashion",
        "epochs",
        "seed",
        "final_training_loss",
        "training_seconds",
        "training_images_per_second",
        "scoring_seconds_all_metrics",
        "scores",
        "threshold",
        "reference_threshold",
        "versions",
    } <= set(metrics)
    assert set(metrics["scores"]) == {"mae", "mse", "bce"}
    for score in metrics["scores"].values():
        assert set(score) == {"auroc", "average_precision"}
    for key in ("threshold", "reference_threshold"):
        assert {"metric", "value", "fraction_mnist_above", "fraction_fashion_above"} <= set(
            metrics[key]
        )
    assert metrics["reference_threshold"]["value"] == reference_study.REFERENCE_THRESHOLD
    assert {"hourglass", "torch", "numpy", "scikit-learn", "matplotlib", "python"} <= set(
        metrics["versions"]
    )
    assert metrics["versions"]["hourglass"] == hourglass.__version__


@pytest.mark.slow
def test_demo_metrics_describe_the_run(metrics: dict[str, Any]) -> None:
    assert metrics["n_train"] + metrics["n_calibration"] == TRAIN_SIZE
    assert metrics["n_calibration"] == TRAIN_SIZE // 5
    assert metrics["n_eval_fashion"] == 10_000
    assert metrics["epochs"] == EPOCHS
    assert metrics["seed"] == 0
    assert metrics["training_seconds"] > 0
    assert metrics["threshold"]["metric"] == "mae"
    assert metrics["threshold"]["method"] == "conformal, fpr=0.01"


@pytest.mark.slow
def test_demo_detects_fashion_mnist(metrics: dict[str, Any]) -> None:
    assert metrics["scores"]["mae"]["auroc"] >= 0.95
    assert metrics["scores"]["mae"]["average_precision"] >= 0.95
    threshold = metrics["threshold"]
    assert threshold["fraction_mnist_above"] <= 0.05  # fpr=0.01 on held-out digits
    assert threshold["fraction_fashion_above"] > threshold["fraction_mnist_above"]


@pytest.mark.slow
def test_demo_model_loads_with_the_reported_threshold(
    demo: tuple[Path, str], metrics: dict[str, Any]
) -> None:
    model = hourglass.load(demo[0] / "model")

    assert isinstance(model, hourglass.AutoencoderOutlierDetector)
    assert model.input_shape_ == (28, 28)
    assert model.threshold_ == metrics["threshold"]["value"]
    assert model.n_calibration_ == metrics["n_calibration"]
    assert model.predict(np.zeros((1, 28, 28), dtype=np.uint8)).shape == (1,)


def test_demo_with_too_few_training_images_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo"

    code = main(
        ["demo", "--data-dir", str(tmp_path / "nowhere"), "--out", str(out), "--train-size", "1"]
    )

    assert code == 2  # a bad option value: a usage error
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip() == "hourglass demo: error: train_size must be at least 2; got 1."
    assert not out.exists()
