"""Saving and loading: exact round trips, no pickle, atomic writes, broken files rejected."""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import save_file

import hourglass
from helpers import bar_images
from hourglass import Autoencoder, AutoencoderOutlierDetector, persistence
from hourglass.exceptions import ModelFileError, ModelVersionError, NotFittedError
from platform_records import read_record

# These tests are about the dense family (arch='auto' trains the tabular one on 2-D
# arrays; see test_tabular_autoencoder.py and test_families.py).
FAST: dict[str, Any] = {
    "arch": "dense",
    "epochs": 2,
    "batch_size": 32,
    "verbose": 0,
    "random_state": 0,
}


def _unit_data(n: int = 160, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 6), dtype=np.float32)


def _centred_data(n: int = 160, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 6)).astype(np.float32)


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def autoencoder() -> Autoencoder:
    return Autoencoder(latent_dim=3, hidden_dims=(8,), **FAST).fit(_unit_data())


@pytest.fixture(scope="module")
def detector() -> AutoencoderOutlierDetector:
    return AutoencoderOutlierDetector(latent_dim=2, fpr=0.1, **FAST).fit(_centred_data())


@pytest.fixture(scope="module")
def saved_autoencoder(autoencoder: Autoencoder, models_dir: Path) -> Path:
    return autoencoder.save(models_dir / "autoencoder")


@pytest.fixture(scope="module")
def saved_detector(detector: AutoencoderOutlierDetector, models_dir: Path) -> Path:
    return detector.save(models_dir / "detector")


@pytest.fixture
def broken(saved_detector: Path, tmp_path: Path) -> Path:
    """A private copy of the saved detector, free to be damaged."""
    return Path(shutil.copytree(saved_detector, tmp_path / "model"))


def _config(path: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((path / persistence.CONFIG_NAME).read_text())
    return result


def _write_config(path: Path, config: dict[str, Any]) -> None:
    (path / persistence.CONFIG_NAME).write_text(json.dumps(config))


# ------------------------------------------------------------------- round trips


def test_autoencoder_round_trip_is_exact(autoencoder: Autoencoder, saved_autoencoder: Path) -> None:
    loaded = Autoencoder.load(saved_autoencoder)
    X = _unit_data(50, seed=5)

    np.testing.assert_array_equal(loaded.transform(X), autoencoder.transform(X))
    np.testing.assert_array_equal(loaded.reconstruct(X), autoencoder.reconstruct(X))
    for metric in ("mae", "mse", "bce"):
        np.testing.assert_array_equal(
            loaded.reconstruction_error(X, metric=metric),
            autoencoder.reconstruction_error(X, metric=metric),
        )
    assert loaded.get_params() == autoencoder.get_params()
    assert loaded.history_ == autoencoder.history_
    assert loaded.input_shape_ == autoencoder.input_shape_
    assert (loaded.output_activation_, loaded.loss_) == ("sigmoid", "bce")


def test_detector_round_trip_is_exact(
    detector: AutoencoderOutlierDetector, saved_detector: Path
) -> None:
    loaded = AutoencoderOutlierDetector.load(saved_detector)
    X = np.concatenate([_centred_data(50, seed=6), 5 * _centred_data(10, seed=7)])

    for method in ("transform", "reconstruct", "score_samples", "decision_function"):
        np.testing.assert_array_equal(getattr(loaded, method)(X), getattr(detector, method)(X))
    np.testing.assert_array_equal(loaded.p_values(X), detector.p_values(X))
    np.testing.assert_array_equal(loaded.predict(X), detector.predict(X))
    assert (loaded.predict(X) == -1).any()  # the comparison covers both labels
    assert loaded.threshold_ == detector.threshold_
    assert loaded.offset_ == detector.offset_
    assert loaded.threshold_method_ == "fpr"
    assert loaded.n_calibration_ == detector.n_calibration_
    np.testing.assert_array_equal(loaded.calibration_scores_, detector.calibration_scores_)
    np.testing.assert_array_equal(loaded.data_min_, detector.data_min_)
    assert loaded.output_activation_ == "linear"


def test_load_dispatches_to_the_saved_class(saved_autoencoder: Path, saved_detector: Path) -> None:
    assert type(hourglass.load(saved_autoencoder)) is Autoencoder
    assert type(hourglass.load(saved_detector)) is AutoencoderOutlierDetector


def test_dataframe_model_keeps_feature_names(tmp_path: Path) -> None:
    frame = pd.DataFrame(_unit_data(), columns=[f"f{i}" for i in range(6)])
    model = Autoencoder(latent_dim=2, **FAST).fit(frame)

    loaded = Autoencoder.load(model.save(tmp_path / "m"))

    np.testing.assert_array_equal(loaded.feature_names_in_, model.feature_names_in_)
    np.testing.assert_array_equal(loaded.transform(frame), model.transform(frame))
    with pytest.raises(ValueError, match="feature names"):
        loaded.transform(frame.rename(columns={"f0": "other"}))


def test_uint8_model_keeps_its_scaling(tmp_path: Path) -> None:
    images = np.random.default_rng(2).integers(0, 256, size=(40, 4, 4), dtype=np.uint8)
    model = Autoencoder(latent_dim=2, **FAST).fit(images)

    loaded = Autoencoder.load(model.save(tmp_path / "m"))

    assert loaded.scales_uint8_ is True
    np.testing.assert_array_equal(loaded.reconstruct(images), model.reconstruct(images))


def test_load_can_override_the_device(saved_autoencoder: Path) -> None:
    loaded = Autoencoder.load(saved_autoencoder, device="cpu")

    assert loaded.device == "cpu"
    assert loaded.device_ == torch.device("cpu")


def test_loading_leaves_the_global_rng_alone(saved_detector: Path) -> None:
    before = torch.get_rng_state()

    hourglass.load(saved_detector)

    assert torch.equal(before, torch.get_rng_state())


def test_random_state_objects_are_saved_as_none(tmp_path: Path) -> None:
    model = Autoencoder(latent_dim=2, epochs=1, verbose=0, random_state=np.random.RandomState(0))
    model.fit(_unit_data(40))

    loaded = Autoencoder.load(model.save(tmp_path / "m"))

    assert loaded.random_state is None


def test_json_params_converts_to_json_values() -> None:
    params = {
        "hidden_dims": (4, 2),
        "latent_dim": np.int64(3),
        "learning_rate": np.float32(0.5),
        "random_state": np.random.default_rng(0),
        "device": "cpu",
    }

    converted = persistence.json_params(params)

    assert converted == {
        "hidden_dims": [4, 2],
        "latent_dim": 3,
        "learning_rate": 0.5,
        "random_state": None,
        "device": "cpu",
    }
    assert json.loads(json.dumps(converted)) == converted


def test_saving_an_unfitted_model_raises_not_fitted(tmp_path: Path) -> None:
    with pytest.raises(NotFittedError):
        Autoencoder().save(tmp_path / "m")
    assert not (tmp_path / "m").exists()


# --------------------------------------------------------------------- file format


def test_saved_files_are_json_and_safetensors_without_pickle(saved_detector: Path) -> None:
    assert sorted(p.name for p in saved_detector.iterdir()) == [
        persistence.CONFIG_NAME,
        persistence.WEIGHTS_NAME,
    ]
    config = _config(saved_detector)
    assert config["format"] == "hourglass-model"
    assert config["format_version"] == persistence.FORMAT_VERSION
    assert config["class"] == "AutoencoderOutlierDetector"
    assert config["library_version"] == hourglass.__version__
    assert config["params"]["fpr"] == 0.1

    data = (saved_detector / persistence.WEIGHTS_NAME).read_bytes()
    (header_length,) = struct.unpack("<Q", data[:8])  # safetensors: u64 LE header size
    assert data[8:9] == b"{"
    header = json.loads(data[8 : 8 + header_length])
    assert set(header) - {"__metadata__"} == set(config["tensors"])
    assert hashlib.sha256(data).hexdigest() == config["weights_sha256"]


# ------------------------------------------------------------------- broken files


def _flip_a_weight_byte(path: Path) -> None:
    weights = path / persistence.WEIGHTS_NAME
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0xFF
    weights.write_bytes(bytes(data))


def _truncate_weights(path: Path) -> None:
    weights = path / persistence.WEIGHTS_NAME
    weights.write_bytes(weights.read_bytes()[:-100])


def _edit_config(**changes: Any) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        config = _config(path)
        config.update(changes)
        _write_config(path, config)

    return edit


BROKEN: dict[str, tuple[Callable[[Path], None], str]] = {
    "missing config": (
        lambda p: (p / persistence.CONFIG_NAME).unlink(),
        "config.json is missing",
    ),
    "missing weights": (
        lambda p: (p / persistence.WEIGHTS_NAME).unlink(),
        "model.safetensors is missing",
    ),
    "truncated weights": (_truncate_weights, "does not match the SHA-256 digest"),
    "tampered weights": (_flip_a_weight_byte, "does not match the SHA-256 digest"),
    "invalid json": (
        lambda p: (p / persistence.CONFIG_NAME).write_text("{not json"),
        "not valid JSON",
    ),
    "json not an object": (
        lambda p: (p / persistence.CONFIG_NAME).write_text("[1, 2]"),
        "not an hourglass model config",
    ),
    "wrong format": (_edit_config(format="keras-model"), "not an hourglass model config"),
    "format version not an int": (_edit_config(format_version="1"), "format_version"),
    "missing params": (_edit_config(params=None), "'params'"),
    "missing digest": (_edit_config(weights_sha256=None), "SHA-256"),
    "oversized weights": (
        lambda p: (p / persistence.WEIGHTS_NAME).write_bytes(b"\0" * (3 * 2**20)),
        "more than its manifest allows",
    ),
}


@pytest.mark.parametrize("damage", list(BROKEN.values()), ids=list(BROKEN))
def test_broken_model_files_are_rejected(
    broken: Path, damage: tuple[Callable[[Path], None], str]
) -> None:
    corrupt, message = damage
    corrupt(broken)

    with pytest.raises(ModelFileError, match=message) as error:
        AutoencoderOutlierDetector.load(broken)
    assert str(broken) in str(error.value)


def test_missing_directory_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="does not exist"):
        hourglass.load(tmp_path / "nowhere")


def test_newer_format_version_asks_to_upgrade(broken: Path) -> None:
    _edit_config(format_version=persistence.FORMAT_VERSION + 1)(broken)

    newer = persistence.FORMAT_VERSION + 1
    with pytest.raises(ModelVersionError, match=rf"format version {newer} .*Upgrade hourglass"):
        hourglass.load(broken)


def test_manifest_shape_mismatch_is_rejected(broken: Path) -> None:
    # Only config.json changes, so the weights still match their digest: the
    # shape check against the manifest has to catch it.
    config = _config(broken)
    config["tensors"]["module.encoder.1.weight"]["shape"] = [3, 6]
    _write_config(broken, config)

    with pytest.raises(ModelFileError, match="does not match its manifest entry"):
        AutoencoderOutlierDetector.load(broken)


def test_params_inconsistent_with_the_weights_are_rejected(broken: Path) -> None:
    config = _config(broken)
    config["params"]["latent_dim"] = 3  # the weights have a code of size 2
    _write_config(broken, config)

    with pytest.raises(ModelFileError, match="inconsistent"):
        AutoencoderOutlierDetector.load(broken)


def test_consistent_but_wrongly_shaped_weights_are_rejected(broken: Path) -> None:
    # Rewrite the weights with another shape and update manifest and digest, so
    # that only building the module against the parameters can catch it.
    model = persistence.read_model_dir(broken)
    tensors = dict(model.tensors)
    tensors["module.encoder.1.weight"] = torch.zeros(2, 5)
    weights = broken / persistence.WEIGHTS_NAME
    save_file(tensors, str(weights))
    config = _config(broken)
    config["tensors"]["module.encoder.1.weight"]["shape"] = [2, 5]
    config["weights_sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    _write_config(broken, config)

    with pytest.raises(ModelFileError, match="inconsistent"):
        AutoencoderOutlierDetector.load(broken)


def test_loading_with_the_wrong_class_is_rejected(saved_detector: Path) -> None:
    with pytest.raises(ModelFileError, match=r"AutoencoderOutlierDetector.*hourglass\.load"):
        Autoencoder.load(saved_detector)


def test_unknown_class_is_rejected(broken: Path) -> None:
    _edit_config(**{"class": "VariationalAutoencoder"})(broken)

    with pytest.raises(ModelFileError, match=r"'VariationalAutoencoder'.*upgrade"):
        hourglass.load(broken)


# ----------------------------------------------------------------- atomic saving


def test_saving_over_an_existing_model_replaces_it(tmp_path: Path) -> None:
    X = _unit_data(60)
    first = Autoencoder(latent_dim=2, **FAST).fit(X)
    second = Autoencoder(latent_dim=3, **{**FAST, "random_state": 1}).fit(X)
    target = tmp_path / "model"
    first.save(target)

    second.save(target)

    loaded = Autoencoder.load(target)
    assert loaded.latent_dim == 3
    np.testing.assert_array_equal(loaded.transform(X), second.transform(X))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_failed_save_keeps_the_old_model(
    autoencoder: Autoencoder,
    detector: AutoencoderOutlierDetector,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    target = detector.save(tmp_path / "model")

    def fail_midway(tensors: dict[str, torch.Tensor], filename: str) -> None:
        Path(filename).write_bytes(b"partial")
        raise OSError("No space left on device")

    monkeypatch.setattr(persistence, "save_file", fail_midway)
    with pytest.raises(OSError, match="No space left"):
        autoencoder.save(target)

    loaded = AutoencoderOutlierDetector.load(target)
    X = _centred_data(20, seed=3)
    np.testing.assert_array_equal(loaded.score_samples(X), detector.score_samples(X))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temp dirs left


# ------------------------------------------------- models saved by earlier versions

#: A dense image detector with the complexity-corrected score, saved by hourglass at
#: commit 59f9d94 (before complexity_features_ existed: its correction uses zlib), with
#: the scores that commit gave to :func:`_zlib_held_out`.
ZLIB_DETECTOR = Path(__file__).parent / "fixtures" / "zlib_complexity_detector"


def _zlib_held_out() -> np.ndarray:
    """Faintly noisy bars and pure noise: the images the saved scores are of."""
    noise = np.random.default_rng(7).integers(0, 256, (12, 12, 12), dtype=np.uint8)
    faint = np.random.default_rng(8).integers(0, 8, (24, 12, 12), dtype=np.uint8)
    return np.concatenate([np.maximum(bar_images(24, 9), faint), noise])


def test_a_zlib_complexity_detector_saved_before_feature_sets_scores_as_it_did() -> None:
    config = json.loads((ZLIB_DETECTOR / persistence.CONFIG_NAME).read_text())
    assert config["state"]["score_type_"] == "complexity"
    assert "complexity_features_" not in config["state"]  # written before the marker
    # Bit for bit on numerics the scores were recorded on (each x86 kernel set, on the
    # CPUs recorded); on another CPU's, to float rounding.
    expected, exact = read_record(ZLIB_DETECTOR.with_name(f"{ZLIB_DETECTOR.name}_scores.json"))
    same = np.testing.assert_array_equal
    if not exact:
        same = functools.partial(np.testing.assert_allclose, rtol=1e-5, atol=1e-7)

    detector = hourglass.load(ZLIB_DETECTOR)

    assert detector.complexity_features_ == "zlib"
    X = _zlib_held_out()
    same(detector.outlier_score(X), expected["outlier_score"])
    np.testing.assert_array_equal(detector.predict(X), expected["predict"])
    same(detector.reconstruction_error(X), expected["reconstruction_error"])
    assert 0 < np.sum(detector.predict(X) == -1) < len(X)


def test_the_complexity_feature_set_is_saved_and_restored(tmp_path: Path) -> None:
    detector = AutoencoderOutlierDetector(latent_dim=4, fpr=0.05, **FAST).fit(bar_images(200, 0))
    assert (detector.score_type_, detector.complexity_features_) == ("complexity", "gradient")
    path = detector.save(tmp_path / "model")
    config = json.loads((path / persistence.CONFIG_NAME).read_text())
    assert config["state"]["complexity_features_"] == "gradient"
    X = _zlib_held_out()

    loaded = hourglass.load(path)

    assert loaded.complexity_features_ == "gradient"
    np.testing.assert_array_equal(loaded.outlier_score(X), detector.outlier_score(X))
    config["state"]["complexity_features_"] = "bzip2"
    (path / persistence.CONFIG_NAME).write_text(json.dumps(config))
    with pytest.raises(ModelFileError, match="complexity_features_"):
        hourglass.load(path)


def test_a_model_saved_in_format_version_1_still_loads(tmp_path: Path) -> None:
    fixture = Path(__file__).parent / "fixtures" / "zlib_complexity_detector"
    assert json.loads((fixture / "config.json").read_text())["format_version"] == 1
    assert hourglass.load(fixture).score_type_ == "complexity"
