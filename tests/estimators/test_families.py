"""The battery every model family passes: shapes, determinism, persistence, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import bar_images as _bars
from hourglass import Autoencoder, AutoencoderOutlierDetector, load
from hourglass.data import Stream
from hourglass.exceptions import InvalidInputError

FAMILIES = ["dense", "conv", "vae", "conv_vae"]
FAST = {"latent_dim": 6, "epochs": 3, "verbose": 0}


@pytest.fixture(scope="module", params=FAMILIES)
def fitted(request: pytest.FixtureRequest) -> AutoencoderOutlierDetector:
    return AutoencoderOutlierDetector(
        arch=request.param, epochs=15, latent_dim=6, verbose=0, random_state=0, fpr=0.05
    ).fit(_bars(800, seed=0))


@pytest.mark.parametrize("arch", FAMILIES)
@pytest.mark.parametrize("shape", [(12, 12), (2, 12, 12), (9, 11)])
def test_shapes_of_codes_and_reconstructions(arch: str, shape: tuple[int, ...]) -> None:
    X = _bars(60, seed=1, shape=shape)
    model = Autoencoder(arch=arch, random_state=0, **FAST).fit(X)
    assert model.transform(X).shape == (60, 6)
    assert model.reconstruct(X).shape == X.shape
    assert model.reconstruction_error(X).shape == (60,)


@pytest.mark.parametrize("arch", FAMILIES)
def test_same_seed_same_model(arch: str) -> None:
    X = _bars(200, seed=2)
    a = Autoencoder(arch=arch, random_state=4, **FAST).fit(X)
    b = Autoencoder(arch=arch, random_state=4, **FAST).fit(X)
    np.testing.assert_array_equal(a.reconstruct(X), b.reconstruct(X))
    np.testing.assert_array_equal(a.transform(X), a.transform(X))  # and scoring is stable


def test_save_load_gives_bit_identical_scores(
    fitted: AutoencoderOutlierDetector, tmp_path: Path
) -> None:
    X = _bars(100, seed=3)
    restored = load(fitted.save(tmp_path / "model"))
    assert restored.get_params()["arch"] == fitted.arch
    np.testing.assert_array_equal(restored.score_samples(X), fitted.score_samples(X))
    np.testing.assert_array_equal(restored.p_values(X), fitted.p_values(X))
    np.testing.assert_array_equal(restored.transform(X), fitted.transform(X))


def test_noise_images_are_outliers(fitted: AutoencoderOutlierDetector) -> None:
    normal = _bars(200, seed=5)
    noise = np.random.default_rng(6).integers(0, 256, (50, 12, 12), dtype=np.uint8)
    assert fitted.score_samples(noise).max() < np.quantile(fitted.score_samples(normal), 0.05)
    assert (fitted.predict(noise) == -1).mean() > 0.9
    assert (fitted.predict(normal) == -1).mean() < 0.15


@pytest.mark.parametrize("arch", FAMILIES)
def test_bad_input_is_rejected_with_a_clear_error(arch: str) -> None:
    X = _bars(100, seed=7)
    model = Autoencoder(arch=arch, random_state=0, **FAST).fit(X)
    with pytest.raises(InvalidInputError, match="expecting 144 features"):
        model.transform(np.zeros((3, 10, 10), dtype=np.uint8))
    bad = X.astype(np.float32)
    bad[0, 0, 0] = np.nan
    with pytest.raises(InvalidInputError, match="NaN"):
        model.reconstruct(bad)


def test_conv_needs_images() -> None:
    rows = np.random.default_rng(0).random((50, 20)).astype(np.float32)
    with pytest.raises(InvalidInputError, match=r"arch='conv' needs images"):
        Autoencoder(arch="conv", **FAST).fit(rows)


def test_auto_picks_dense_for_images_tabular_for_tables_and_transformer_for_texts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    images = _bars(60, seed=8)
    with caplog.at_level("INFO", logger="hourglass"):
        model = Autoencoder(arch="auto", random_state=0, **FAST).fit(images)
    assert model.arch_ == "dense"
    assert "chose arch='dense'" in caplog.text
    rows = images.reshape(60, -1).astype(np.float32)
    auto = Autoencoder(arch="auto", random_state=0, **FAST)
    assert auto.fit(rows).arch_ == "tabular"  # 2-D arrays are tables
    assert auto.fit(pd.DataFrame(rows)).arch_ == "tabular"
    assert auto.fit(["a text", "another one"] * 10).arch_ == "transformer"
    # Options only the dense family takes keep 2-D arrays on it.
    assert auto.set_params(noise="gaussian").fit(rows).arch_ == "dense"
    assert auto.set_params(noise=None, loss="mse").fit(rows).arch_ == "dense"


def test_auto_treats_a_streamed_npy_of_rows_as_a_table(tmp_path: Path) -> None:
    rows = np.random.default_rng(0).normal(size=(200, 5)).astype(np.float32)
    np.save(tmp_path / "rows.npy", rows)
    model = Autoencoder(arch="auto", random_state=0, **FAST).fit(Stream.open(tmp_path / "rows.npy"))
    assert model.arch_ == "tabular"
    in_memory = Autoencoder(arch="auto", random_state=0, **FAST).fit(rows)
    assert in_memory.arch_ == "tabular"
    assert model.transform(rows).shape == (200, model.latent_dim)


def test_the_chosen_family_is_saved(tmp_path: Path) -> None:
    images = _bars(60, seed=9)
    model = Autoencoder(arch="auto", random_state=0, **FAST).fit(images)
    restored = load(model.save(tmp_path / "m"))
    assert restored.arch_ == "dense"
    assert restored.get_params()["arch"] == "auto"
    np.testing.assert_array_equal(restored.reconstruct(images), model.reconstruct(images))
