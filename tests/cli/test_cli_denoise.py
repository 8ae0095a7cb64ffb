"""``hourglass denoise`` and ``hourglass train --noise``, in-process."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from hourglass import load
from hourglass.cli import main


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("denoise")
    rng = np.random.default_rng(0)
    images = (rng.random((400, 10, 10)) > 0.7).astype(np.uint8) * 255
    data = folder / "train.npy"
    np.save(data, images)
    noisy = np.clip(images[:20] / 255 + 0.3 * rng.standard_normal((20, 10, 10)), 0, 1)
    np.save(folder / "noisy.npy", noisy.astype(np.float32))
    model = folder / "model"
    argv = [
        "train",
        str(data),
        "-o",
        str(model),
        "--noise",
        "gaussian",
        "--noise-strength",
        "0.3",
        "--epochs",
        "2",
        "--latent-dim",
        "8",
        "-q",
    ]
    assert main(argv) == 0
    return model, folder / "noisy.npy"


def test_train_with_noise_saves_a_denoising_model(trained: tuple[Path, Path]) -> None:
    params = load(trained[0]).get_params()
    assert params["noise"] == "gaussian"
    assert params["noise_strength"] == 0.3


def test_denoise_writes_an_array_shaped_like_the_input(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, noisy = trained
    output = tmp_path / "clean.npy"
    assert main(["denoise", str(model), str(noisy), "-o", str(output), "--preview", "5"]) == 0
    denoised = np.load(output)
    np.testing.assert_array_equal(denoised, load(model).denoise(np.load(noisy)))
    assert denoised.shape == (20, 10, 10)
    picture = imread(output.with_suffix(".png"))
    assert picture.ndim == 3
    assert picture.std() > 0
    assert "Wrote 20 denoised samples" in capsys.readouterr().out


def test_denoise_to_png_writes_only_a_preview(trained: tuple[Path, Path], tmp_path: Path) -> None:
    model, noisy = trained
    output = tmp_path / "preview.png"
    assert main(["denoise", str(model), str(noisy), "-o", str(output)]) == 0
    assert imread(output).std() > 0


def test_denoise_errors_are_one_line(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, noisy = trained
    assert main(["denoise", str(model), str(noisy), "-o", str(tmp_path / "x.txt")]) == 2
    err = capsys.readouterr().err
    assert err == "hourglass denoise: error: Cannot write " + str(tmp_path / "x.txt") + (
        ": use a .npy or .png file name.\n"
    )


def test_denoise_warns_about_a_model_trained_without_noise(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "rows.npy"
    np.save(data, np.random.default_rng(1).random((200, 6)).astype(np.float32))
    assert main(["train", str(data), "-o", str(tmp_path / "m"), "--epochs", "1", "-q"]) == 0
    capsys.readouterr()
    assert main(["denoise", str(tmp_path / "m"), str(data), "-o", str(tmp_path / "d.npy")]) == 0
    assert "was not trained with --noise" in capsys.readouterr().err
    assert main(["denoise", str(tmp_path / "m"), str(data), "-o", str(tmp_path / "d.png")]) == 1
    assert "needs images" in capsys.readouterr().err


def test_train_with_the_convolutional_family(tmp_path: Path) -> None:
    images = (np.random.default_rng(2).random((200, 12, 12)) > 0.8).astype(np.uint8) * 255
    np.save(tmp_path / "images.npy", images)
    argv = [
        "train",
        str(tmp_path / "images.npy"),
        "-o",
        str(tmp_path / "m"),
        "--arch",
        "conv",
        "--epochs",
        "1",
        "--latent-dim",
        "4",
        "-q",
    ]
    assert main(argv) == 0
    model = load(tmp_path / "m")
    assert model.get_params()["arch"] == "conv"
    assert model.transform(images).shape == (200, 4)
