"""Mixed tables: the tabular autoencoder flags impossible rows and names the culprit column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import mixed_table
from hourglass import Autoencoder, AutoencoderOutlierDetector, load
from hourglass.cli import main
from hourglass.exceptions import InvalidInputError

FAST = {"latent_dim": 2, "verbose": 0, "random_state": 0}


@pytest.fixture(scope="module")
def detector() -> AutoencoderOutlierDetector:
    return AutoencoderOutlierDetector(arch="tabular", epochs=25, fpr=0.05, **FAST).fit(
        mixed_table(2000, seed=0)
    )


def test_a_planted_impossible_category_is_flagged_and_named_first(
    detector: AutoencoderOutlierDetector,
) -> None:
    rows = mixed_table(20, seed=1)
    rows.loc[rows.index[3], "city"] = "atlantis"  # never seen in training
    assert detector.predict(rows)[3] == -1
    contributions = detector.explain(rows)
    assert list(contributions.columns) == ["age", "income", "city", "owner"]
    assert contributions.iloc[3].idxmax() == "city"
    assert (
        contributions.iloc[3]["city"] > 10 * contributions.drop(index=rows.index[3])["city"].max()
    )


def test_an_impossible_number_is_named_first(detector: AutoencoderOutlierDetector) -> None:
    rows = mixed_table(20, seed=2)
    rows.loc[rows.index[5], "income"] = 5_000_000.0
    assert detector.predict(rows)[5] == -1
    assert detector.explain(rows).iloc[5].idxmax() == "income"


def test_ordinary_rows_pass_and_missing_values_are_fine(
    detector: AutoencoderOutlierDetector,
) -> None:
    rows = mixed_table(500, seed=3)
    rows.loc[rows.index[:50], "age"] = np.nan
    assert (detector.predict(rows) == -1).mean() < 0.12
    assert np.isfinite(detector.score_samples(rows)).all()
    assert (detector.explain(rows.iloc[:50])["age"] == 0).all()  # missing: no contribution


def test_codes_and_scores_have_the_usual_shapes(detector: AutoencoderOutlierDetector) -> None:
    rows = mixed_table(30, seed=4)
    assert detector.transform(rows).shape == (30, 2)
    assert detector.reconstruction_error(rows).shape == (30,)
    assert detector.metric_ == "column_loss"
    assert detector.arch_ == "tabular"


def test_save_load_keeps_the_schema_and_scores(
    detector: AutoencoderOutlierDetector, tmp_path: Path
) -> None:
    rows = mixed_table(40, seed=5)
    restored = load(detector.save(tmp_path / "table-model"))
    assert restored.table_schema_ == detector.table_schema_
    np.testing.assert_array_equal(restored.score_samples(rows), detector.score_samples(rows))
    pd.testing.assert_frame_equal(restored.explain(rows), detector.explain(rows))


def test_same_seed_same_model_and_auto_picks_tabular() -> None:
    table = mixed_table(300, seed=6)
    a = Autoencoder(arch="tabular", epochs=2, **FAST).fit(table)
    b = Autoencoder(arch="auto", epochs=2, **FAST).fit(table)
    assert b.arch_ == "tabular"
    np.testing.assert_array_equal(a.reconstruction_error(table), b.reconstruction_error(table))


def test_wrong_inputs_are_clear_errors(detector: AutoencoderOutlierDetector) -> None:
    with pytest.raises(InvalidInputError, match=r"lacks column\(s\) \['owner'\]"):
        detector.score_samples(mixed_table(5, seed=7).drop(columns="owner"))
    with pytest.raises(InvalidInputError, match="needs a table"):
        Autoencoder(arch="tabular", epochs=1, **FAST).fit(np.zeros((5, 2, 2)))
    dense = Autoencoder(arch="dense", epochs=1, **FAST).fit(
        np.random.default_rng(0).random((20, 3))
    )
    with pytest.raises(InvalidInputError, match="explain needs a tabular model"):
        dense.explain(np.zeros((2, 3)))


def test_cli_scores_name_the_top_columns_of_flagged_rows(tmp_path: Path) -> None:
    mixed_table(1500, seed=8).to_csv(tmp_path / "train.csv", index=False)
    new = mixed_table(10, seed=9)
    new.loc[new.index[1], "city"] = "atlantis"  # an otherwise ordinary row (age 42)
    new.to_csv(tmp_path / "new.csv", index=False)
    model = tmp_path / "model"
    argv = [
        "train",
        str(tmp_path / "train.csv"),
        "-o",
        str(model),
        "--arch",
        "tabular",
        "--latent-dim",
        "2",
        "--epochs",
        "25",
        "--fpr",
        "0.05",
        "-q",
    ]
    assert main(argv) == 0
    scores = tmp_path / "scores.csv"
    assert main(["score", str(model), str(tmp_path / "new.csv"), "-o", str(scores)]) == 0
    table = pd.read_csv(scores, keep_default_na=False)
    assert table.loc[1, "is_outlier"] == 1
    assert table.loc[1, "top_columns"].startswith("city (x")
    assert (table["top_columns"] == "").sum() == (table["is_outlier"] == 0).sum()


def test_numeric_columns_can_be_declared_categorical(tmp_path: Path) -> None:
    table = mixed_table(300, seed=10).assign(zone=lambda f: (f["age"] // 10).fillna(0).astype(int))
    model = Autoencoder(arch="tabular", epochs=1, categorical_columns=("zone",), **FAST).fit(table)
    assert "zone" in model.table_schema_.categorical
    restored = load(model.save(tmp_path / "m"))
    assert restored.get_params()["categorical_columns"] == ("zone",)
    with pytest.raises(InvalidInputError, match="categorical_columns names"):
        Autoencoder(arch="tabular", epochs=1, categorical_columns=("nope",), **FAST).fit(table)


def test_reconstruct_returns_a_table_in_original_units(
    detector: AutoencoderOutlierDetector,
) -> None:
    rows = mixed_table(200, seed=11)
    rebuilt = detector.reconstruct(rows)
    assert list(rebuilt.columns) == ["age", "income", "city", "owner"]
    assert len(rebuilt) == 200
    assert np.nanmedian(np.abs(rebuilt["age"] - rows["age"])) < 10  # years, not scaled units
    assert set(rebuilt["city"]) <= {"north", "centre", "south"}


def test_a_tabular_model_refuses_other_metrics() -> None:
    X = np.random.default_rng(0).normal(size=(60, 4))
    model = Autoencoder(arch="auto", **FAST, epochs=1).fit(X)
    assert model.arch_ == "tabular"
    np.testing.assert_array_equal(
        model.reconstruction_error(X, metric="column_loss"), model.reconstruction_error(X)
    )
    with pytest.raises(InvalidInputError, match="scores samples by 'column_loss' only"):
        model.reconstruction_error(X, metric="mae")
