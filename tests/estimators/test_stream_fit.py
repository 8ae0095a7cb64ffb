"""Estimators on streams: fit from files read in pieces, and score them piece by piece."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from helpers import bar_images
from hourglass import Autoencoder, AutoencoderOutlierDetector
from hourglass.data.stream import Stream
from hourglass.exceptions import InvalidInputError

# Numeric streams on the dense family (arch="tabular" is named where a test is about tables).
SMALL = {
    "arch": "dense",
    "hidden_dims": (16,),
    "latent_dim": 4,
    "epochs": 3,
    "verbose": 0,
    "random_state": 0,
}


def _rows(n: int = 1200, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 2))
    mixing = rng.normal(size=(2, 8))
    return (1 / (1 + np.exp(-(z @ mixing)))).astype(np.float32)


def _parquet(path: Path, values: np.ndarray) -> Path:
    frame = pd.DataFrame(values, columns=[f"c{i}" for i in range(values.shape[1])])
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=100)
    return path


@pytest.fixture
def table_stream(tmp_path: Path) -> Stream:
    return Stream.open(_parquet(tmp_path / "rows.parquet", _rows()), piece_bytes=64 * 8 * 4)


def test_a_detector_fits_on_a_stream_and_learns(table_stream: Stream) -> None:
    detector = AutoencoderOutlierDetector(**SMALL, validation_fraction=0.1).fit(table_stream)
    loss = detector.history_["loss"]
    assert loss[-1] < loss[0]
    assert "val_loss" in detector.history_
    assert detector.input_shape_ == (8,)
    assert list(detector.feature_names_in_) == [f"c{i}" for i in range(8)]
    # About 20% of the rows were held out for calibration, drawn row by row.
    assert 180 < detector.n_calibration_ < 300
    assert detector.calibration_scores_.shape == (detector.n_calibration_,)
    np.testing.assert_allclose(detector.data_min_, _rows().min(axis=0), rtol=1e-6)


def test_scoring_a_stream_equals_scoring_the_same_rows_in_memory(table_stream: Stream) -> None:
    detector = AutoencoderOutlierDetector(**SMALL).fit(table_stream)
    frame = table_stream.read()
    np.testing.assert_array_equal(
        detector.score_samples(table_stream), detector.score_samples(frame)
    )
    np.testing.assert_array_equal(detector.predict(table_stream), detector.predict(frame))
    np.testing.assert_array_equal(detector.p_values(table_stream), detector.p_values(frame))
    np.testing.assert_array_equal(detector.transform(table_stream), detector.transform(frame))
    errors, scores = detector.errors_and_scores(table_stream)
    np.testing.assert_array_equal(errors, detector.reconstruction_error(frame))
    np.testing.assert_array_equal(scores, detector.outlier_score(frame))
    np.testing.assert_array_equal(detector.reconstruct(table_stream), detector.reconstruct(frame))


def test_stream_fits_are_reproducible_and_seeded(table_stream: Stream) -> None:
    a = AutoencoderOutlierDetector(**SMALL).fit(table_stream)
    b = AutoencoderOutlierDetector(**SMALL).fit(table_stream)
    c = AutoencoderOutlierDetector(**{**SMALL, "random_state": 1}).fit(table_stream)
    assert a.history_["loss"] == b.history_["loss"]
    np.testing.assert_array_equal(a.score_samples(table_stream), b.score_samples(table_stream))
    assert a.history_["loss"] != c.history_["loss"]


def test_a_stream_fit_is_as_good_as_an_in_memory_fit(table_stream: Stream) -> None:
    rows = table_stream.read()
    params = {**SMALL, "epochs": 8}
    streamed = Autoencoder(**params).fit(table_stream)
    in_memory = Autoencoder(**params).fit(rows)
    streamed_error = streamed.reconstruction_error(rows).mean()
    in_memory_error = in_memory.reconstruction_error(rows).mean()
    assert streamed_error < 1.2 * in_memory_error


def test_uint8_images_stream_from_npy(tmp_path: Path) -> None:
    images = bar_images(400, seed=0)
    np.save(tmp_path / "bars.npy", images)
    stream = Stream.open(tmp_path / "bars.npy", piece_bytes=50 * images[0].nbytes)
    detector = AutoencoderOutlierDetector(**{**SMALL, "arch": "conv"}, fpr=0.05).fit(stream)
    assert detector.scales_uint8_
    assert detector.input_shape_ == (12, 12)
    assert detector.score_type_ == "complexity"  # fitted on a sample of the stream
    np.testing.assert_array_equal(detector.score_samples(stream), detector.score_samples(images))


def test_validation_data_may_be_a_stream_or_an_array(tmp_path: Path, table_stream: Stream) -> None:
    held_out = Stream.open(_parquet(tmp_path / "val.parquet", _rows(200, seed=1)))
    by_stream = Autoencoder(**SMALL).fit(table_stream, validation_data=held_out)
    by_frame = Autoencoder(**SMALL).fit(table_stream, validation_data=held_out.read())
    assert by_stream.history_["val_loss"] == pytest.approx(by_frame.history_["val_loss"])
    wrong = Stream.open(_parquet(tmp_path / "wrong.parquet", _rows(50)[:, :5]))
    with pytest.raises(InvalidInputError):
        Autoencoder(**SMALL).fit(table_stream, validation_data=wrong)


def test_a_stream_fit_saves_and_loads(tmp_path: Path, table_stream: Stream) -> None:
    detector = AutoencoderOutlierDetector(**SMALL).fit(table_stream)
    loaded = AutoencoderOutlierDetector.load(detector.save(tmp_path / "model"))
    np.testing.assert_array_equal(
        loaded.score_samples(table_stream), detector.score_samples(table_stream)
    )


def test_a_stream_fit_resumes_from_its_checkpoint(tmp_path: Path, table_stream: Stream) -> None:
    whole = AutoencoderOutlierDetector(**{**SMALL, "epochs": 4}).fit(table_stream)
    AutoencoderOutlierDetector(**{**SMALL, "epochs": 2}).fit(
        table_stream, checkpoint_dir=tmp_path / "ckpt"
    )
    resumed = AutoencoderOutlierDetector(**{**SMALL, "epochs": 4}).fit(
        table_stream, checkpoint_dir=tmp_path / "ckpt", resume=True
    )
    assert resumed.history_["loss"] == whole.history_["loss"]


def test_contamination_thresholds_use_every_streamed_score(table_stream: Stream) -> None:
    detector = AutoencoderOutlierDetector(**SMALL, contamination=0.1, calibration_fraction=0.0).fit(
        table_stream
    )
    assert (detector.predict(table_stream) == -1).mean() == pytest.approx(0.1, abs=0.01)


def test_models_streams_cannot_train_say_what_to_do(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": np.arange(20.0), "kind": ["a", "b"] * 10})
    frame.to_parquet(tmp_path / "mixed.parquet")
    with pytest.raises(InvalidInputError, match="non-numeric columns"):
        AutoencoderOutlierDetector(**{**SMALL, "arch": "dense"}).fit(
            Stream.open(tmp_path / "mixed.parquet")
        )
    with pytest.raises(InvalidInputError, match="arch='sequence' trains on texts: a list of str"):
        AutoencoderOutlierDetector(**{**SMALL, "arch": "sequence"}).fit(
            Stream.open(tmp_path / "mixed.parquet")
        )
    np.save(tmp_path / "images.npy", np.zeros((50, 4, 4), dtype=np.uint8))
    with pytest.raises(InvalidInputError, match="needs a table"):
        AutoencoderOutlierDetector(**{**SMALL, "arch": "tabular"}).fit(
            Stream.open(tmp_path / "images.npy")
        )


def _planted_table(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """A mixed table with 2% rows of an impossible category-number pairing (label 1)."""
    from helpers import mixed_table

    frame = mixed_table(n, seed=seed)
    rng = np.random.default_rng(seed)
    planted = rng.choice(n, n // 50, replace=False)
    frame.loc[planted, "city"] = "north"
    frame.loc[planted, "age"] = 18.0
    frame.loc[planted, "income"] = 90_000.0
    labels = np.zeros(n, dtype=int)
    labels[planted] = 1
    return frame, labels


def test_a_tabular_detector_trains_on_a_mixed_table_stream(tmp_path: Path) -> None:
    from sklearn.metrics import roc_auc_score

    frame, labels = _planted_table(3000, seed=0)
    frame.to_parquet(tmp_path / "mixed.parquet", row_group_size=250)
    stream = Stream.open(tmp_path / "mixed.parquet")
    params = {**SMALL, "hidden_dims": (32,), "epochs": 10, "learning_rate": 3e-3}
    detector = AutoencoderOutlierDetector(**{**params, "arch": "auto"}, fpr=0.05).fit(stream)
    assert detector.arch_ == "tabular"
    assert set(detector.table_schema_.categorical) == {"city", "owner"}
    in_memory = AutoencoderOutlierDetector(**{**params, "arch": "tabular"}, fpr=0.05).fit(frame)
    assert detector.table_schema_ == in_memory.table_schema_  # a sample of all 3,000 rows
    scores = detector.score_samples(stream)
    np.testing.assert_array_equal(scores, detector.score_samples(frame))
    assert roc_auc_score(labels, -scores) > 0.95
    assert detector.column_scales_.shape == (4,)
    loaded = AutoencoderOutlierDetector.load(detector.save(tmp_path / "model"))
    np.testing.assert_array_equal(loaded.score_samples(stream), scores)


def test_the_cli_trains_a_tabular_model_on_a_folder_of_csv_files(tmp_path: Path) -> None:
    import contextlib
    import io

    from hourglass.cli import main

    frame, _ = _planted_table(1200, seed=1)
    (tmp_path / "parts").mkdir()
    for i in range(3):
        frame.iloc[400 * i : 400 * (i + 1)].to_csv(tmp_path / "parts" / f"p{i}.csv", index=False)
    with contextlib.redirect_stdout(io.StringIO()) as out:
        code = main(
            [
                "train",
                str(tmp_path / "parts"),
                "-o",
                str(tmp_path / "m"),
                "--arch",
                "tabular",
                "--epochs",
                "2",
                "-q",
                "--fpr",
                "0.05",
            ]
        )
    assert code == 0
    assert "tabular autoencoder" in out.getvalue()
    with contextlib.redirect_stdout(io.StringIO()):
        assert (
            main(
                [
                    "score",
                    str(tmp_path / "m"),
                    str(tmp_path / "parts"),
                    "-o",
                    str(tmp_path / "s.csv"),
                ]
            )
            == 0
        )
    table = pd.read_csv(tmp_path / "s.csv")
    assert len(table) == 1200
    assert "top_columns" in table.columns


def test_bad_values_in_a_later_piece_are_refused(tmp_path: Path) -> None:
    rows = _rows()
    rows[1100, 3] = np.nan
    stream = Stream.open(_parquet(tmp_path / "nan.parquet", rows), piece_bytes=64 * 8 * 4)
    with pytest.raises(InvalidInputError, match="NaN"):
        AutoencoderOutlierDetector(**SMALL).fit(stream)


def test_a_tabular_model_scores_a_mixed_table_stream(tmp_path: Path) -> None:
    from helpers import mixed_table

    frame = mixed_table(300, seed=0)
    frame.to_parquet(tmp_path / "mixed.parquet", row_group_size=50)
    detector = AutoencoderOutlierDetector(**{**SMALL, "arch": "tabular"}, fpr=0.05).fit(frame)
    stream = Stream.open(tmp_path / "mixed.parquet")
    np.testing.assert_array_equal(detector.score_samples(stream), detector.score_samples(frame))
    pd.testing.assert_frame_equal(detector.explain(stream), detector.explain(frame))
