"""``hourglass train``, ``score`` and ``encode``, in-process, on small synthetic data.

One image model and one table model are trained per module (well under a
second each) and shared by the tests; every test writes its outputs to its
own ``tmp_path``.
"""

from __future__ import annotations

import contextlib
import io
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.typing import NDArray
from sklearn.utils._param_validation import InvalidParameterError

import hourglass
from hourglass import AutoencoderOutlierDetector
from hourglass.cli import main
from hourglass.scoring import conformal_threshold

SIDE = 8  # images are SIDE x SIDE
N_TRAIN, N_NORMAL, N_OUTLIERS = 300, 100, 20
LATENT_DIM = 4
# Enough steps for the tiny model to learn the blobs (the defaults are for MNIST);
# fpr=0.05 because 60 calibration samples cannot guarantee the default 0.01.
IMAGE_TRAIN_OPTIONS = (
    "--latent-dim",
    str(LATENT_DIM),
    "--epochs",
    "20",
    "--learning-rate",
    "0.01",
    "--fpr",
    "0.05",
    "--score-type",
    "error",  # these tests are about the error itself; complexity has its own test
    "-q",
)
TABLE_COLUMNS = ("a", "b", "c", "d", "e")
SCORE_COLUMNS = ["index", "reconstruction_error", "p_value", "is_outlier"]


def blobs(n: int, seed: int) -> NDArray[np.uint8]:
    """``n`` uint8 images of one bright Gaussian blob each, at a random place."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:SIDE, 0:SIDE]
    centres = rng.uniform(2, SIDE - 3, size=(n, 2, 1, 1))
    squared = (rows - centres[:, 0]) ** 2 + (cols - centres[:, 1]) ** 2
    return (255 * np.exp(-squared / 3)).astype(np.uint8)


def run_cli(argv: Sequence[str]) -> tuple[int, str, str]:
    """``main(argv)`` with its exit code, standard output and standard error."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@dataclass(frozen=True)
class Images:
    """An image model trained by ``hourglass train``, and data to score with it."""

    model: Path
    train_output: str
    data: Path  # N_NORMAL fresh blobs, then N_OUTLIERS inverted blobs
    X: NDArray[np.uint8]


@dataclass(frozen=True)
class Table:
    """A table model trained by ``hourglass train --drop-columns label``."""

    model: Path
    train_output: str
    data: Path  # a CSV with TABLE_COLUMNS and a text column "label"
    frame: pd.DataFrame


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Images:
    folder = tmp_path_factory.mktemp("images")
    np.save(folder / "train.npy", blobs(N_TRAIN, seed=0))
    X = np.concatenate([blobs(N_NORMAL, seed=1), 255 - blobs(N_OUTLIERS, seed=2)])
    np.save(folder / "score.npy", X)
    model = folder / "model"
    code, out, err = run_cli(
        ["train", str(folder / "train.npy"), "-o", str(model), *IMAGE_TRAIN_OPTIONS]
    )
    assert code == 0, err
    return Images(model=model, train_output=out, data=folder / "score.npy", X=X)


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Table:
    folder = tmp_path_factory.mktemp("table")
    rng = np.random.default_rng(0)
    factors = rng.normal(size=(200, 2))
    values = factors @ rng.normal(size=(2, len(TABLE_COLUMNS))) + 0.05 * rng.normal(
        size=(200, len(TABLE_COLUMNS))
    )
    frame = pd.DataFrame(values, columns=list(TABLE_COLUMNS))
    frame["label"] = np.where(np.arange(200) % 2 == 0, "even", "odd")
    frame.to_csv(folder / "data.csv", index=False)
    model = folder / "model"
    code, out, err = run_cli(
        [
            "train",
            str(folder / "data.csv"),
            "-o",
            str(model),
            "--drop-columns",
            "label",
            "--latent-dim",
            "2",
            "--epochs",
            "5",
            "--fpr",
            "0.05",
            "-q",
        ]
    )
    assert code == 0, err
    return Table(model=model, train_output=out, data=folder / "data.csv", frame=frame)


def assert_one_error_line(err: str, verb: str, fragment: str) -> None:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"hourglass {verb}: error: ")
    assert fragment in lines[0]


# ---------------------------------------------------------------------- train


def test_train_on_npy_images_saves_a_loadable_detector(images: Images) -> None:
    assert sorted(p.name for p in images.model.iterdir()) == ["config.json", "model.safetensors"]
    model = hourglass.load(images.model)

    assert isinstance(model, AutoencoderOutlierDetector)
    assert model.latent_dim == LATENT_DIM
    assert model.input_shape_ == (SIDE, SIDE)
    assert model.scales_uint8_
    assert model.threshold_method_ == "fpr"
    assert model.fpr == 0.05
    assert model.n_calibration_ == N_TRAIN // 5
    assert (
        f"Trained a dense autoencoder on samples of shape ({SIDE}, {SIDE}) for 20 epochs"
        in images.train_output
    )
    assert "Threshold (fpr, mae)" in images.train_output
    assert f"Model saved to {images.model}/" in images.train_output


def test_train_on_csv_drops_the_label_column(table: Table) -> None:
    assert sorted(p.name for p in table.model.iterdir()) == ["config.json", "model.safetensors"]
    model = hourglass.load(table.model)

    assert isinstance(model, AutoencoderOutlierDetector)
    assert model.n_features_in_ == len(TABLE_COLUMNS)
    assert list(model.feature_names_in_) == list(TABLE_COLUMNS)
    assert model.arch_ == "tabular"  # a table: --arch auto, the default
    assert "Trained a tabular autoencoder on rows of 5 columns for 5 epochs" in table.train_output


def test_train_replaces_an_existing_model(
    table: Table, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "model"
    shutil.copytree(table.model, target)
    (target / "stale.txt").write_text("from the previous model")
    argv = ["train", str(table.data), "-o", str(target), "--drop-columns", "label"]

    assert main([*argv, "--latent-dim", "3", "--epochs", "1", "--contamination", "0.1", "-q"]) == 0

    assert sorted(p.name for p in target.iterdir()) == ["config.json", "model.safetensors"]
    model = hourglass.load(target)
    assert model.latent_dim == 3
    assert model.threshold_method_ == "contamination"
    assert list(tmp_path.iterdir()) == [target]  # no temporary or set-aside folder left


# ---------------------------------------------------------------------- score


def read_scores(path: Path) -> pd.DataFrame:
    return pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_score_matches_the_library(
    images: Images, suffix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / f"scores{suffix}"

    assert main(["score", str(images.model), str(images.data), "-o", str(output)]) == 0

    scores = read_scores(output)
    detector = AutoencoderOutlierDetector.load(images.model)
    assert list(scores.columns) == SCORE_COLUMNS
    assert len(scores) == N_NORMAL + N_OUTLIERS
    np.testing.assert_array_equal(scores["index"], np.arange(N_NORMAL + N_OUTLIERS))
    np.testing.assert_allclose(
        scores["reconstruction_error"], detector.reconstruction_error(images.X), rtol=1e-12
    )
    np.testing.assert_allclose(scores["p_value"], detector.p_values(images.X), rtol=1e-12)
    np.testing.assert_array_equal(scores["is_outlier"], detector.predict(images.X) == -1)
    out = capsys.readouterr().out
    assert f"Scored {N_NORMAL + N_OUTLIERS} samples (mae score)" in out
    assert "(the model's, fpr rule)" in out
    assert f"Scores written to {output}" in out


def test_score_with_the_complexity_score_matches_the_library(tmp_path: Path) -> None:
    np.save(tmp_path / "train.npy", blobs(N_TRAIN, seed=0))
    X = np.concatenate([blobs(30, seed=1), 255 - blobs(10, seed=2)])  # inverted: outliers
    np.save(tmp_path / "data.npy", X)
    model, output = tmp_path / "model", tmp_path / "scores.csv"
    options = [o for o in IMAGE_TRAIN_OPTIONS if o not in ("--score-type", "error")]
    code, out, err = run_cli(["train", str(tmp_path / "train.npy"), "-o", str(model), *options])
    assert code == 0, err
    detector = AutoencoderOutlierDetector.load(model)
    assert detector.score_type_ == "complexity"
    assert "complexity-corrected" in out

    code, out, err = run_cli(["score", str(model), str(tmp_path / "data.npy"), "-o", str(output)])

    assert code == 0, err
    scores = pd.read_csv(output)
    assert list(scores.columns) == [
        "index",
        "reconstruction_error",
        "outlier_score",
        "p_value",
        "is_outlier",
    ]
    np.testing.assert_allclose(scores["reconstruction_error"], detector.reconstruction_error(X))
    np.testing.assert_allclose(scores["outlier_score"], detector.outlier_score(X), rtol=1e-12)
    np.testing.assert_array_equal(scores["is_outlier"], detector.predict(X) == -1)
    assert scores["is_outlier"].iloc[30:].all()
    assert "(mae, complexity-corrected score)" in out


def test_score_flags_the_planted_outliers(
    images: Images, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "scores.csv"

    assert main(["score", str(images.model), str(images.data), "-o", str(output)]) == 0

    scores = pd.read_csv(output)
    normal, outliers = scores.iloc[:N_NORMAL], scores.iloc[N_NORMAL:]
    assert outliers["reconstruction_error"].min() > normal["reconstruction_error"].max()
    assert outliers["is_outlier"].all()
    assert normal["is_outlier"].mean() <= 0.1
    assert (outliers["p_value"] < normal["p_value"].min()).all()
    out = capsys.readouterr().out
    worst = scores["reconstruction_error"].sort_values(ascending=False).index[:5]
    assert f"Highest scores at rows {', '.join(map(str, worst))}." in out


def test_score_threshold_flags_errors_above_it(
    images: Images, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    errors = AutoencoderOutlierDetector.load(images.model).reconstruction_error(images.X)
    threshold = float(np.median(errors))
    output = tmp_path / "scores.csv"
    argv = ["score", str(images.model), str(images.data), "-o", str(output)]

    code = main([*argv, "--threshold", repr(threshold)])

    assert code == 0
    flags = pd.read_csv(output)["is_outlier"].to_numpy()
    np.testing.assert_array_equal(flags, errors > threshold)
    assert flags.sum() == (N_NORMAL + N_OUTLIERS) // 2
    assert f"Threshold {threshold:.6g} (fixed)" in capsys.readouterr().out


def test_score_contamination_flags_that_fraction_of_rows(
    images: Images, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "scores.csv"

    code = main(
        ["score", str(images.model), str(images.data), "-o", str(output), "--contamination", "0.1"]
    )

    assert code == 0
    scores = pd.read_csv(output)
    flagged = scores.loc[scores["is_outlier"] == 1, "reconstruction_error"]
    kept = scores.loc[scores["is_outlier"] == 0, "reconstruction_error"]
    assert len(flagged) == (N_NORMAL + N_OUTLIERS) // 10
    assert flagged.min() > kept.max()  # the largest errors
    assert "(contamination=0.1): 12 outliers (10.00%)" in capsys.readouterr().out


def test_score_fpr_recalibrates_on_the_calibration_errors(
    images: Images, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    detector = AutoencoderOutlierDetector.load(images.model)
    errors = detector.reconstruction_error(images.X)
    output = tmp_path / "scores.csv"

    code = main(["score", str(images.model), str(images.data), "-o", str(output), "--fpr", "0.3"])

    assert code == 0
    threshold = conformal_threshold(detector.calibration_scores_, 0.3)
    assert threshold < detector.threshold_  # a larger fpr: a lower threshold
    flags = pd.read_csv(output)["is_outlier"].to_numpy()
    np.testing.assert_array_equal(flags, errors > threshold)
    assert flags.sum() > (detector.predict(images.X) == -1).sum()
    assert f"Threshold {threshold:.6g} (fpr=0.3)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "rules",
    [
        ["--threshold", "0.1", "--fpr", "0.1"],
        ["--fpr", "0.1", "--contamination", "0.1"],
        ["--threshold", "0.1", "--contamination", "0.1"],
    ],
)
def test_score_takes_at_most_one_threshold_rule(
    images: Images, rules: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "scores.csv"

    assert main(["score", str(images.model), str(images.data), "-o", str(output), *rules]) == 2

    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert err.startswith("hourglass score: error: argument")
    assert "not allowed with argument" in err
    assert not output.exists()


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("fpr", 1.5),
        ("fpr", 0.0),
        ("contamination", 1.0),
        ("contamination", 0.7),  # in (0, 1), but more than the estimator's 0.5
        ("contamination", 0.0),
        ("threshold", float("nan")),
        ("threshold", float("inf")),
    ],
)
def test_score_refuses_the_threshold_rules_the_estimator_refuses(
    images: Images,
    option: str,
    value: float,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(InvalidParameterError) as refused:
        AutoencoderOutlierDetector(**{option: value}, epochs=1, verbose=0).fit(images.X)
    output = tmp_path / "scores.csv"
    argv = ["score", str(images.model), str(images.data), "-o", str(output)]

    code = main([*argv, f"--{option}", str(value)])

    assert code == 2  # a bad option value, as a bad parameter of hourglass train
    assert_one_error_line(capsys.readouterr().err, "score", str(refused.value))
    assert not output.exists()


def test_score_takes_the_contamination_the_estimator_takes(
    images: Images, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "scores.csv"
    argv = ["score", str(images.model), str(images.data), "-o", str(output)]

    assert main([*argv, "--contamination", "0.5"]) == 0

    assert pd.read_csv(output)["is_outlier"].sum() == (N_NORMAL + N_OUTLIERS) // 2
    assert "(contamination=0.5)" in capsys.readouterr().out


def test_score_table_model_without_calibration_has_no_p_values(
    table: Table, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "model"
    train = ["train", str(table.data), "-o", str(model), "--drop-columns", "label"]
    options = ["--latent-dim", "2", "--epochs", "2", "--calibration-fraction", "0"]
    assert main([*train, *options, "--contamination", "0.05", "-q"]) == 0
    output = tmp_path / "scores.csv"
    score = ["score", str(model), str(table.data), "-o", str(output), "--drop-columns", "label"]

    assert main(score) == 0

    scores = pd.read_csv(output)
    detector = AutoencoderOutlierDetector.load(model)
    X = table.frame.drop(columns="label")
    assert list(scores.columns) == [
        "index",
        "reconstruction_error",
        "outlier_score",
        "is_outlier",
        "top_columns",
    ]
    np.testing.assert_allclose(
        scores["reconstruction_error"], detector.reconstruction_error(X), rtol=1e-12
    )
    np.testing.assert_allclose(scores["outlier_score"], detector.outlier_score(X), rtol=1e-12)
    np.testing.assert_array_equal(scores["is_outlier"], detector.predict(X) == -1)
    capsys.readouterr()

    assert main([*score, "--fpr", "0.1"]) == 2  # as the estimator's fpr without calibration

    assert_one_error_line(
        capsys.readouterr().err, "score", "needs a model trained with calibration"
    )


# --------------------------------------------------------------------- encode


def test_encode_writes_the_codes_as_npy(
    images: Images, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "codes.npy"

    assert main(["encode", str(images.model), str(images.data), "-o", str(output)]) == 0

    codes = np.load(output)
    assert codes.shape == (N_NORMAL + N_OUTLIERS, LATENT_DIM)
    assert codes.dtype == np.float32
    np.testing.assert_allclose(codes, hourglass.load(images.model).transform(images.X), rtol=1e-6)
    out = capsys.readouterr().out
    assert out.strip() == (
        f"Wrote {N_NORMAL + N_OUTLIERS} codes of dimension {LATENT_DIM} to {output}"
    )


def test_train_with_invariance_gives_unit_length_codes(tmp_path: Path) -> None:
    np.save(tmp_path / "train.npy", blobs(N_TRAIN, seed=0))
    model = tmp_path / "model"
    argv = ["train", str(tmp_path / "train.npy"), "-o", str(model), "--invariance", "1"]
    code, _, err = run_cli([*argv, "--epochs", "1", "--fpr", "0.05", "-q"])
    assert code == 0, err
    loaded = hourglass.load(model)
    assert loaded.invariance == 1.0
    codes = loaded.transform(blobs(10, seed=1))
    np.testing.assert_allclose(np.linalg.norm(codes, axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_encode_writes_the_codes_as_a_table(
    table: Table, suffix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / f"codes{suffix}"

    code = main(
        ["encode", str(table.model), str(table.data), "-o", str(output), "--drop-columns", "label"]
    )

    assert code == 0
    codes = read_scores(output)
    assert list(codes.columns) == ["z0", "z1"]
    expected = hourglass.load(table.model).transform(table.frame.drop(columns="label"))
    np.testing.assert_allclose(codes.to_numpy(), expected, rtol=1e-6)


# --------------------------------------------------------------- user errors


def corrupt_config(model: Path) -> None:
    (model / "config.json").write_text("{not json", encoding="utf-8")


def truncate_weights(model: Path) -> None:
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])


def remove_weights(model: Path) -> None:
    (model / "model.safetensors").unlink()


@pytest.mark.parametrize("verb", ["score", "encode"])
@pytest.mark.parametrize("corrupt", [corrupt_config, truncate_weights, remove_weights])
def test_a_corrupted_model_is_a_one_line_error(
    images: Images,
    verb: str,
    corrupt: Callable[[Path], None],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    model = tmp_path / "model"
    shutil.copytree(images.model, model)
    corrupt(model)
    output = tmp_path / ("out.csv" if verb == "score" else "out.npy")

    assert main([verb, str(model), str(images.data), "-o", str(output)]) == 1

    assert_one_error_line(capsys.readouterr().err, verb, f"Cannot load the model in {model}")
    assert not output.exists()


@pytest.mark.parametrize("verb", ["score", "encode"])
def test_a_missing_model_is_a_one_line_error(
    images: Images, verb: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-model"

    assert main([verb, str(missing), str(images.data), "-o", str(tmp_path / "out.csv")]) == 1

    assert_one_error_line(capsys.readouterr().err, verb, "the directory does not exist")


@pytest.mark.parametrize("verb", ["train", "score", "encode"])
def test_a_missing_data_file_is_a_one_line_error(
    images: Images, verb: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.npy"
    model = [] if verb == "train" else [str(images.model)]

    assert main([verb, *model, str(missing), "-o", str(tmp_path / "out.csv")]) == 1

    assert_one_error_line(
        capsys.readouterr().err, verb, f"Data file {missing} does not exist. Check the path."
    )


@pytest.mark.parametrize(("verb", "name"), [("score", "scores.txt"), ("encode", "codes.json")])
def test_an_unsupported_output_suffix_is_a_one_line_error(
    images: Images, verb: str, name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / name

    assert main([verb, str(images.model), str(images.data), "-o", str(output)]) == 2

    assert_one_error_line(
        capsys.readouterr().err, verb, f"Cannot write {output}: use a .csv or .parquet file name."
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("verb", ["score", "encode"])
def test_the_wrong_number_of_features_is_a_one_line_error(
    images: Images, verb: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    np.save(tmp_path / "wide.npy", np.full((4, 10), 0.5, dtype=np.float32))

    code = main(
        [verb, str(images.model), str(tmp_path / "wide.npy"), "-o", str(tmp_path / "o.csv")]
    )

    assert code == 1
    assert_one_error_line(
        capsys.readouterr().err,
        verb,
        f"X has 10 features, but AutoencoderOutlierDetector is expecting {SIDE * SIDE} features",
    )


def test_drop_columns_on_an_array_is_a_one_line_error(
    images: Images, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["score", str(images.model), str(images.data), "-o", str(tmp_path / "s.csv")]

    assert main([*argv, "--drop-columns", "label"]) == 1

    assert_one_error_line(
        capsys.readouterr().err, "score", "--drop-columns applies to CSV and Parquet files"
    )


def test_drop_columns_naming_an_absent_column_is_a_one_line_error(
    table: Table, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["train", str(table.data), "-o", str(tmp_path / "model"), "--drop-columns", "label,id"]

    assert main(argv) == 1

    assert_one_error_line(capsys.readouterr().err, "train", "--drop-columns names ['id']")
    assert not (tmp_path / "model").exists()


def test_a_non_numeric_column_without_drop_columns_is_a_one_line_error(
    table: Table, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = str(tmp_path / "model")
    argv = ["train", str(table.data), "-o", model, "--epochs", "1", "-q", "--arch", "dense"]

    assert main(argv) == 1

    assert_one_error_line(capsys.readouterr().err, "train", "column(s) 'label' are not numeric")
    assert not (tmp_path / "model").exists()


def test_an_output_path_that_is_a_file_is_a_one_line_error(
    table: Table, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "model"
    target.write_text("not a folder")
    argv = ["train", str(table.data), "-o", str(target), "--drop-columns", "label"]

    assert main([*argv, "--epochs", "1", "--contamination", "0.1", "-q"]) == 1

    assert_one_error_line(capsys.readouterr().err, "train", "exists and is not a directory")
    assert target.read_text() == "not a folder"


@pytest.mark.parametrize("verb", ["train", "score", "encode"])
def test_a_missing_output_option_is_a_usage_error(
    images: Images, verb: str, capsys: pytest.CaptureFixture[str]
) -> None:
    model = [] if verb == "train" else [str(images.model)]

    assert main([verb, *model, str(images.data)]) == 2

    err = capsys.readouterr().err
    assert err == (
        f"hourglass {verb}: error: the following arguments are required: -o/--output "
        f"(see 'hourglass {verb} --help')\n"
    )


@pytest.mark.parametrize(
    ("option", "fragment"),
    [
        (
            ["--latent-dim", "0"],
            "The 'latent_dim' parameter of AutoencoderOutlierDetector must be an int in the "
            "range [1, inf). Got 0 instead.",
        ),
        (["--epochs", "0"], "The 'epochs' parameter of AutoencoderOutlierDetector"),
        (
            ["--epochs", "many"],
            "argument --epochs: expected a number of epochs or 'auto'; got 'many'",
        ),
        (["--calibration-fraction", "1"], "The 'calibration_fraction' parameter"),
    ],
)
def test_a_bad_parameter_is_a_one_line_usage_error(
    images: Images,
    option: list[str],
    fragment: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    model = tmp_path / "model"

    assert main(["train", str(images.data), "-o", str(model), *option, "-q"]) == 2

    assert_one_error_line(capsys.readouterr().err, "train", fragment)
    assert not model.exists()


def test_a_malformed_hidden_dims_is_a_usage_error(
    images: Images, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["train", str(images.data), "-o", str(tmp_path / "m"), "--hidden-dims", "32,x"]

    assert main(argv) == 2

    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert err.startswith("hourglass train: error: argument --hidden-dims:")
    assert "expected comma-separated integers such as 256,128" in err
