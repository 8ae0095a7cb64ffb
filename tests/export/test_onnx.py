"""ONNX export: onnxruntime gives the library's scores, flags and metadata on held-out data.

One tiny detector per exportable family (trained for 2 epochs, exported once
per module); every comparison runs on data the model has not seen.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime
import pandas as pd
import pytest
import torch

import hourglass._atomic
from helpers import bar_images, mixed_table
from hourglass import Autoencoder, AutoencoderOutlierDetector
from hourglass.cli import main
from hourglass.exceptions import HourglassError, InvalidInputError, ModelFileError, NotFittedError
from hourglass.export import read_onnx_metadata, to_onnx

#: The parity the issue asks for (float32 networks): |onnxruntime - hourglass| at most
#: 1e-5, relative to scores above 1 (where 1e-5 is a few float32 steps: an MSE score
#: of 82 differs by 3e-5, 4 steps, under PyTorch's portable kernels).
TOLERANCE = 1e-5


def _assert_scores_match(score: np.ndarray, expected: np.ndarray) -> None:
    """|score - expected| <= TOLERANCE * max(1, |expected|), sample by sample."""
    difference = np.abs(score - expected)
    bound = TOLERANCE * np.maximum(1.0, np.abs(expected))
    assert (difference <= bound).all(), f"largest difference {difference.max():.3g}"


TINY = {
    "arch": "dense",  # overridden where a test exports another family
    "latent_dim": 4,
    "epochs": 2,
    "batch_size": 16,
    "learning_rate": 0.01,
    "verbose": 0,
    "random_state": 0,
}
# Image detectors threshold a complexity-corrected score by default (score_type="auto");
# these threshold the reconstruction error, the "complexity" cases the corrected score.
ERROR_SCORE = {"score_type": "error"}
#: A zlib complexity detector saved before the graph-friendly features (tests/fixtures).
ZLIB_DETECTOR = Path(__file__).parents[1] / "fixtures" / "zlib_complexity_detector"
#: A tabular distance detector saved before the score's local term (tests/fixtures).
TABLE_DISTANCE_DETECTOR = Path(__file__).parents[1] / "fixtures" / "table_distance_detector"


@dataclass
class Exported:
    """A fitted model, its ONNX file, and held-out data as the library and the graph take it."""

    model: Any
    path: Path
    held_out: Any  # what the library is given
    graph_input: np.ndarray  # what the graph is given


def _session(path: Path) -> onnxruntime.InferenceSession:
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _run(exported: Exported, x: np.ndarray | None = None) -> list[np.ndarray]:
    feed = exported.graph_input if x is None else x
    return list(_session(exported.path).run(None, {"x": feed}))


def _noise_images(n: int, seed: int, high: int = 256) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, high, (n, 12, 12), dtype=np.uint8)


def _held_out_bars(n: int, seed: int) -> np.ndarray:
    """Bar images with faint noise: unlike the training images, none scores at the threshold."""
    return np.maximum(bar_images(n, seed), _noise_images(n, seed, high=8))


def _float_images(images: np.ndarray) -> np.ndarray:
    """Pixels as float32 beyond [0, 1]: a linear output, mapped to [0, 1] for complexity."""
    return (images / 255 * 3 - 1).astype(np.float32)


def _rows(n: int, seed: int, spread: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, 2))
    mixing = np.random.default_rng(99).normal(size=(2, 8))
    noise = rng.normal(scale=0.1, size=(n, 8))
    return ((latent @ mixing + noise) * spread * 3 + 1).astype(np.float32)


def _numeric_table(n: int, seed: int) -> pd.DataFrame:
    frame = mixed_table(n, seed)[["age", "income"]].copy()  # income has missing values
    frame["hours"] = frame["age"] * 0.5 + np.random.default_rng(seed).normal(0, 2, n)
    return frame


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Exported]:
    folder = tmp_path_factory.mktemp("onnx")
    images = np.concatenate([_held_out_bars(40, 1), _noise_images(10, 2)])
    rows = np.concatenate([_rows(40, 1), _rows(10, 2, spread=4.0)])
    table = pd.concat([_numeric_table(40, 1), _numeric_table(10, 2) * 3], ignore_index=True)
    detector = {"fpr": 0.05, **TINY}
    models = {
        "dense_uint8": (
            AutoencoderOutlierDetector(**detector, **ERROR_SCORE).fit(bar_images(300, 0)),
            images,
            images,
        ),
        "dense_float": (
            AutoencoderOutlierDetector(metric="mse", **detector).fit(_rows(400, 0)),
            rows,
            rows,
        ),
        "conv": (
            AutoencoderOutlierDetector(
                **{**detector, "arch": "conv"}, metric="bce", **ERROR_SCORE
            ).fit(bar_images(300, 0)),
            images,
            images,
        ),
        "dense_complexity": (
            AutoencoderOutlierDetector(**detector).fit(bar_images(300, 0)),
            images,
            images,
        ),
        "conv_complexity_float": (
            AutoencoderOutlierDetector(**{**detector, "arch": "conv"}).fit(
                _float_images(bar_images(300, 0))
            ),
            _float_images(images),
            _float_images(images),
        ),
        "tabular": (
            AutoencoderOutlierDetector(**{**detector, "arch": "tabular"}).fit(
                _numeric_table(400, 0)
            ),
            table,
            table.to_numpy(dtype=np.float64),
        ),
        "autoencoder": (Autoencoder(**TINY).fit(_rows(400, 0)), rows, rows),
    }
    return {
        name: Exported(model, to_onnx(model, folder / f"{name}.onnx"), held_out, graph_input)
        for name, (model, held_out, graph_input) in models.items()
    }


def _library_reconstruction(model: Any, X: Any) -> np.ndarray:
    reconstruction = model.reconstruct(X)
    return np.asarray(reconstruction, dtype=np.float64)


DETECTORS = [
    "dense_uint8",
    "dense_float",
    "conv",
    "dense_complexity",
    "conv_complexity_float",
    "tabular",
]


@pytest.mark.parametrize("name", DETECTORS)
def test_onnxruntime_gives_the_detectors_scores_and_flags(
    name: str, exported: dict[str, Exported]
) -> None:
    case = exported[name]
    score, reconstruction, is_outlier = _run(case)
    expected = case.model.outlier_score(case.held_out)
    assert score.dtype == np.float64
    assert score.shape == expected.shape
    _assert_scores_match(score, expected)
    flags = case.model.predict(case.held_out) == -1
    assert 0 < flags.sum() < flags.size  # the held-out data has inliers and outliers
    np.testing.assert_array_equal(is_outlier, flags)
    threshold = read_onnx_metadata(case.path)["threshold"]
    np.testing.assert_array_equal(score > threshold, flags)
    np.testing.assert_allclose(
        reconstruction, _library_reconstruction(case.model, case.held_out), rtol=1e-5, atol=1e-5
    )


def test_binary_cross_entropy_stays_finite_for_saturated_outputs(
    exported: dict[str, Exported], tmp_path: Path
) -> None:
    # ONNX's log(sigmoid(z)) is -inf below z = -104; the library's score is finite there.
    model = copy.deepcopy(exported["conv"].model)
    with torch.no_grad():
        model.module_.decoder[-1].bias.fill_(-300.0)  # every logit far below -104
    images = exported["conv"].held_out
    expected = model.reconstruction_error(images)
    score = _run(Exported(model, to_onnx(model, tmp_path / "saturated.onnx"), images, images))[0]
    assert np.isfinite(score).all()
    assert np.max(np.abs(score - expected)) <= TOLERANCE * np.max(expected)


def test_a_plain_autoencoder_returns_its_mae_and_reconstruction(
    exported: dict[str, Exported],
) -> None:
    case = exported["autoencoder"]
    outputs = _run(case)
    assert len(outputs) == 2  # no threshold, no flags
    expected = case.model.reconstruction_error(case.held_out)
    _assert_scores_match(outputs[0], expected)
    metadata = read_onnx_metadata(case.path)
    assert metadata["threshold"] is None
    assert metadata["metric"] == "mae"
    assert metadata["outputs"] == ["score", "reconstruction"]


@pytest.mark.parametrize("name", ["dense_uint8", "conv", "dense_complexity", "tabular"])
def test_the_batch_axis_is_dynamic(name: str, exported: dict[str, Exported]) -> None:
    case = exported[name]
    one = _run(case, case.graph_input[3:4])[0]
    assert one.shape == (1,)
    expected = case.model.outlier_score(case.held_out[3:4])
    _assert_scores_match(one, expected)


def test_the_complexity_graph_scores_the_corrected_error(exported: dict[str, Exported]) -> None:
    case = exported["dense_complexity"]
    assert (case.model.score_type_, case.model.complexity_features_) == ("complexity", "gradient")
    score = _run(case)[0]
    # The corrected score, not the error: the two differ, and the graph gives the former.
    assert np.max(np.abs(score - case.model.reconstruction_error(case.held_out))) > 0.1
    metadata = read_onnx_metadata(case.path)
    assert (metadata["score_type"], metadata["metric"]) == ("complexity", "mae")
    assert read_onnx_metadata(exported["dense_uint8"].path)["score_type"] == "error"
    assert "corrected for input complexity" in onnx.load_model(str(case.path)).doc_string


@pytest.mark.parametrize("name", ["dense_float", "conv_complexity_float"])
def test_non_finite_inputs_score_nan_and_are_flagged_as_the_library_refuses_them(
    name: str, exported: dict[str, Exported]
) -> None:
    case = exported[name]
    x = case.graph_input[:6].copy()
    x[1].flat[3] = np.nan
    x[2].flat[0] = np.inf
    x[4].flat[-1] = -np.inf
    score, _, is_outlier = _run(case, x)
    bad = np.array([False, True, True, False, True, False])
    assert np.isnan(score[bad]).all()
    assert is_outlier[bad].all()
    good = case.graph_input[:6][~bad]
    _assert_scores_match(score[~bad], case.model.outlier_score(good))
    np.testing.assert_array_equal(is_outlier[~bad], case.model.predict(good) == -1)
    with pytest.raises(InvalidInputError, match="NaN"):  # what the graph stands in for
        case.model.outlier_score(x)


def test_missing_table_values_are_masked_as_the_library_does(
    exported: dict[str, Exported],
) -> None:
    case = exported["tabular"]
    table = _numeric_table(30, 5)
    table.loc[::3, "hours"] = np.nan
    table.loc[1::4, "age"] = np.nan
    score = _run(case, table.to_numpy(dtype=np.float64))[0]
    assert np.isfinite(score).all()
    _assert_scores_match(score, case.model.outlier_score(table))


def test_the_distance_graph_computes_the_local_term_and_older_models_score_without_it(
    exported: dict[str, Exported], tmp_path: Path
) -> None:
    table = exported["tabular"]
    assert table.model.score_type_ == "distance"
    assert table.model.distance_reference_ is not None  # the graph holds the reference rows
    older = hourglass.load(TABLE_DISTANCE_DETECTOR)
    assert older.distance_reference_ is None
    rows = np.random.default_rng(3).normal(size=(30, 5))
    rows[:4, 2] = 9.0
    path = to_onnx(older, tmp_path / "older.onnx")
    score, _, is_outlier = _session(path).run(None, {"x": rows})
    _assert_scores_match(score, older.outlier_score(rows))
    np.testing.assert_array_equal(is_outlier, older.predict(rows) == -1)


def test_the_metadata_describes_input_threshold_and_version(
    exported: dict[str, Exported],
) -> None:
    images, table = exported["dense_uint8"], exported["tabular"]
    metadata = read_onnx_metadata(images.path)
    assert metadata["hourglass_version"] == hourglass.__version__
    assert metadata["estimator"] == "AutoencoderOutlierDetector"
    assert metadata["family"] == "dense"
    assert metadata["metric"] == "mae"
    assert metadata["threshold"] == images.model.threshold_  # exactly, through JSON
    assert metadata["threshold_method"] == "fpr"
    assert metadata["input_shape"] == [12, 12]
    assert metadata["input_dtype"] == "uint8"
    assert metadata["outputs"] == ["score", "reconstruction", "is_outlier"]
    metadata = read_onnx_metadata(table.path)
    assert metadata["family"] == "tabular"
    assert metadata["feature_names"] == ["age", "income", "hours"]
    assert metadata["input_dtype"] == "float64"
    # Any ONNX runtime sees them too, as JSON strings.
    custom = _session(table.path).get_modelmeta().custom_metadata_map
    assert json.loads(custom["threshold"]) == table.model.threshold_
    inputs = _session(images.path).get_inputs()
    assert [(i.name, i.type, i.shape[1:]) for i in inputs] == [("x", "tensor(uint8)", [12, 12])]


@pytest.fixture(scope="module")
def refused(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    texts = ["the cat sat", "a dog ran", "the red house", "on a mat"] * 5
    models = {
        "vae": Autoencoder(arch="vae", epochs=1, latent_dim=2, verbose=0, random_state=0).fit(
            _rows(100, 0)
        ),
        "sequence": Autoencoder(hidden_dims=(8,), **{**TINY, "epochs": 1, "arch": "sequence"}).fit(
            texts
        ),
        "categorical": AutoencoderOutlierDetector(fpr=0.1, **{**TINY, "arch": "tabular"}).fit(
            mixed_table(100, 0)
        ),
        "zlib complexity": hourglass.load(ZLIB_DETECTOR),
    }
    return models


REFUSALS = [
    ("vae", "supports the 'dense', 'conv', 'tabular' families; this model has arch='vae'"),
    ("sequence", "this model has arch='sequence'"),
    ("categorical", r"numeric columns only; this model has categorical column\(s\) \['city'"),
    ("zlib complexity", "fitted by an older hourglass, whose complexity correction .* zlib"),
]


@pytest.mark.parametrize(("name", "message"), REFUSALS)
def test_other_families_are_refused_with_one_clear_line(
    name: str, message: str, refused: dict[str, Any], tmp_path: Path
) -> None:
    with pytest.raises(InvalidInputError, match=message) as caught:
        to_onnx(refused[name], tmp_path / "model.onnx")
    assert "\n" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_an_unfitted_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(NotFittedError):
        to_onnx(AutoencoderOutlierDetector(), tmp_path / "model.onnx")


def test_without_the_extra_the_error_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, exported: dict[str, Exported], tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # import onnxscript -> ImportError
    with pytest.raises(HourglassError, match=r'pip install "hourglass-ae\[onnx\]"'):
        to_onnx(exported["dense_float"].model, tmp_path / "model.onnx")
    assert list(tmp_path.iterdir()) == []


def test_a_file_without_hourglass_metadata_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.onnx"
    path.write_bytes(b"not a model at all")
    with pytest.raises(ModelFileError, match=r"other\.onnx"):
        read_onnx_metadata(path)


# ------------------------------------------------------------------------------- the CLI


def run_cli(argv: Sequence[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def model_dirs(
    exported: dict[str, Exported], refused: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("models")
    return {
        "dense_float": exported["dense_float"].model.save(folder / "dense"),
        "dense_complexity": exported["dense_complexity"].model.save(folder / "complexity"),
        "vae": refused["vae"].save(folder / "vae"),
    }


def test_hourglass_export_writes_a_model_that_scores_like_hourglass_score(
    model_dirs: dict[str, Path], exported: dict[str, Exported], tmp_path: Path
) -> None:
    output = tmp_path / "model.onnx"
    code, out, err = run_cli(
        ["export", str(model_dirs["dense_float"]), "--format", "onnx", "-o", str(output)]
    )
    assert (code, err) == (0, "")
    assert out.startswith(f"Exported the dense model to {output} (ONNX): input 'x' float32")
    case = exported["dense_float"]
    score = _run(Exported(case.model, output, case.held_out, case.graph_input))[0]
    _assert_scores_match(score, case.model.reconstruction_error(case.held_out))
    code, out, err = run_cli(
        ["export", str(model_dirs["dense_float"]), "-o", str(output), "--json"]
    )
    summary = json.loads(out)
    assert (code, summary["output"], summary["threshold"]) == (
        0,
        str(output),
        case.model.threshold_,
    )
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_hourglass_export_of_a_complexity_detector_names_its_score(
    model_dirs: dict[str, Path], exported: dict[str, Exported], tmp_path: Path
) -> None:
    output = tmp_path / "model.onnx"
    code, out, err = run_cli(["export", str(model_dirs["dense_complexity"]), "-o", str(output)])
    assert (code, err) == (0, "")
    assert "; score mae, complexity-corrected, threshold " in out
    case = exported["dense_complexity"]
    score = _run(Exported(case.model, output, case.held_out, case.graph_input))[0]
    _assert_scores_match(score, case.model.outlier_score(case.held_out))


def test_a_crash_while_exporting_leaves_the_old_file(
    model_dirs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = tmp_path / "model.onnx"
    output.write_bytes(b"the previous export\n")

    def fail(*args: Any, **kwargs: Any) -> None:
        raise OSError("simulated crash before the rename")

    monkeypatch.setattr(hourglass._atomic.os, "replace", fail)
    code, _, err = run_cli(["export", str(model_dirs["dense_float"]), "-o", str(output)])
    assert code == 1
    assert err == "hourglass export: error: simulated crash before the rename\n"
    assert output.read_bytes() == b"the previous export\n"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]  # no temporary file left


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["--format", "torchscript"], 2, "argument --format: invalid choice: 'torchscript'"),
        ([], 1, "error: ONNX export supports the 'dense', 'conv', 'tabular' families"),
    ],
)
def test_export_errors_are_one_line(
    argv: list[str], code: int, message: str, model_dirs: dict[str, Path], tmp_path: Path
) -> None:
    output = tmp_path / "model.onnx"
    got, out, err = run_cli(["export", str(model_dirs["vae"]), "-o", str(output), *argv])
    assert (got, out) == (code, "")
    assert message in err
    assert err.count("\n") == 1
    assert not output.exists()


def test_the_cli_gives_the_install_hint_without_the_extra(
    model_dirs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)
    code, _, err = run_cli(["export", str(model_dirs["dense_float"]), "-o", str(tmp_path / "m")])
    assert code == 1
    assert err == (
        "hourglass export: error: ONNX export needs the onnx extra: "
        'pip install "hourglass-ae[onnx]" (onnx, onnxscript and onnxruntime).\n'
    )
