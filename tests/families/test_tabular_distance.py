"""The tabular family's distance score, the default outlier score of tables."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file, save_file

import hourglass
from helpers import bar_images, mixed_table
from hourglass import AutoencoderOutlierDetector, persistence
from hourglass.exceptions import InvalidInputError, ModelFileError
from hourglass.families.tabular import (
    DISTANCE_NEIGHBORS,
    MAX_REFERENCE_ROWS,
    MAX_REFERENCE_VALUES,
    nearest_distance,
    reference_indices,
)
from platform_records import read_record

FAST = {"epochs": 5, "batch_size": 64, "random_state": 0, "verbose": 0}


def _correlated(n: int, seed: int) -> np.ndarray:
    """Five columns: two tied together, three independent."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    X[:, 1] = 2 * X[:, 0] + rng.normal(0, 0.05, n)
    return X


@pytest.fixture(scope="module")
def detector() -> AutoencoderOutlierDetector:
    return AutoencoderOutlierDetector(fpr=0.05, **FAST).fit(_correlated(2000, 0))


def test_tables_are_scored_by_distance_unless_told_otherwise(detector) -> None:
    assert (detector.score_type_, detector.score_name_) == ("distance", "distance")
    X = _correlated(300, 1)
    fixed = AutoencoderOutlierDetector(threshold=1.0, **FAST).fit(X)
    assert fixed.score_type_ == "error"  # a fixed threshold is in units of the error
    error = AutoencoderOutlierDetector(score_type="error", **FAST).fit(X)
    np.testing.assert_array_equal(error.outlier_score(X), error.reconstruction_error(X))


def test_the_distance_score_needs_a_table() -> None:
    with pytest.raises(InvalidInputError, match="score_type='distance'"):
        AutoencoderOutlierDetector(arch="dense", score_type="distance", **FAST).fit(
            bar_images(64, 0)
        )


def test_rows_that_break_a_correlation_or_hold_extreme_values_score_highest(detector) -> None:
    normal = _correlated(500, 2)
    broken = _correlated(20, 3)
    broken[:, 0] = np.abs(broken[:, 0]) + 1.0
    broken[:, 1] = -2 * broken[:, 0]  # each value ordinary alone; their pair is not
    extreme = _correlated(20, 4)
    extreme[:, 3] = 8.0
    scores = detector.outlier_score(np.concatenate([normal, broken, extreme]))
    assert scores[500:].min() > np.quantile(scores[:500], 0.99)


def test_the_calibrated_threshold_flags_about_fpr_of_normal_rows(detector) -> None:
    # The score is fitted on the training rows only, so calibration keeps its guarantee.
    flagged = (detector.predict(_correlated(4000, 5)) == -1).mean()
    assert 0.02 < flagged < 0.09


def test_every_scoring_method_agrees(detector) -> None:
    X = _correlated(200, 6)
    errors, scores = detector.errors_and_scores(X)
    np.testing.assert_array_equal(errors, detector.reconstruction_error(X))
    np.testing.assert_array_equal(scores, detector.outlier_score(X))
    np.testing.assert_array_equal(-scores - detector.offset_, detector.decision_function(X))
    single = np.concatenate([detector.outlier_score(X[i : i + 1]) for i in range(5)])
    np.testing.assert_array_equal(single, scores[:5])


def test_tables_without_numeric_columns_score_by_their_codes() -> None:
    frame = mixed_table(400, 0)[["city", "owner"]]
    detector = AutoencoderOutlierDetector(**FAST).fit(frame)
    scores = detector.outlier_score(frame)
    assert detector.score_type_ == "distance"
    assert np.isfinite(scores).all()
    assert detector.distance_location_.shape == (detector.latent_dim,)
    # No numbers, no local term: three terms, as before it existed.
    assert detector.distance_reference_ is None
    assert detector.distance_scaling_.shape == (2, 3)


def test_tables_with_categories_score_without_the_local_term() -> None:
    """The local term sees numbers only; tables with categories keep the global part."""
    detector = AutoencoderOutlierDetector(**FAST).fit(mixed_table(400, 0))
    assert detector.distance_reference_ is None
    assert detector.distance_scaling_.shape == (2, 3)
    assert reference_indices(400, 2, n_categorical=1) is None
    assert reference_indices(400, 2) is not None


def test_nearest_distance_is_the_distance_to_the_kth_nearest_reference_row() -> None:
    rng = np.random.default_rng(0)
    reference, rows = rng.normal(size=(300, 4)), rng.normal(size=(50, 4))
    pairwise = np.sqrt(((rows[:, None, :] - reference[None, :, :]) ** 2).sum(axis=2))
    expected = np.sort(pairwise, axis=1)[:, DISTANCE_NEIGHBORS - 1]
    got = nearest_distance(torch.from_numpy(rows), torch.from_numpy(reference), DISTANCE_NEIGHBORS)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-9)


def test_the_reference_rows_are_capped_evenly_and_need_enough_rows() -> None:
    assert reference_indices(5000, 0) is None  # no numbers
    assert reference_indices(DISTANCE_NEIGHBORS, 3) is None  # too few for the neighbours
    np.testing.assert_array_equal(reference_indices(40, 3), np.arange(40))
    capped = reference_indices(3 * MAX_REFERENCE_ROWS, 3)
    assert len(capped) == MAX_REFERENCE_ROWS
    assert (capped[0], capped[-1]) == (0, 3 * MAX_REFERENCE_ROWS - 1)
    wide = reference_indices(MAX_REFERENCE_ROWS, 1000)
    assert len(wide) * 2 * 1000 <= MAX_REFERENCE_VALUES  # numbers and their presence flags


def test_the_local_term_ranks_rows_in_the_gap_between_two_groups_higher() -> None:
    """Central to the training rows as a whole, but far from every one of them."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    centres = np.array([[-3.0, -3.0, 0.0], [3.0, 3.0, 0.0]])

    def groups(n: int) -> np.ndarray:
        return centres[rng.integers(0, 2, n)] + rng.normal(0, 0.5, (n, 3))

    detector = AutoencoderOutlierDetector(fpr=0.05, **FAST).fit(groups(1500))
    assert detector.distance_reference_ is not None
    assert detector.distance_scaling_.shape == (2, 4)
    X = np.concatenate([groups(500), rng.normal(0, 0.3, (20, 3))])  # then the gap
    is_gap = np.arange(len(X)) >= 500
    with_local = roc_auc_score(is_gap, detector.outlier_score(X))
    # The same model without its local term, as models saved before it score.
    detector.distance_reference_ = None
    detector.distance_scaling_ = detector.distance_scaling_[:, :3]
    without = roc_auc_score(is_gap, detector.outlier_score(X))
    assert with_local > 0.88
    assert with_local > without + 0.04


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("distance_location_", np.zeros(3)),
        ("distance_precision_", np.full((69, 69), np.nan)),
        ("distance_scaling_", np.array([[0.0, 0.0, 0.0, 0.0], [0.0, 1.0, 1.0, 1.0]])),
        ("distance_scaling_", np.ones((2, 3))),  # three terms, yet reference rows
        ("distance_reference_", np.full((100, 10), np.inf)),
        ("distance_reference_", np.zeros((100, 5))),  # numbers without presence flags
        ("distance_reference_", np.zeros((DISTANCE_NEIGHBORS, 10))),  # too few rows
    ],
)
def test_a_tampered_distance_state_is_refused(detector, tmp_path: Path, name, value) -> None:
    """Rewritten as an attacker can: the weights, their digest and manifest."""
    path = detector.save(tmp_path / "model")
    weights = path / persistence.WEIGHTS_NAME
    tensors = load_file(weights)
    tensors[f"state.{name}"] = torch.from_numpy(value)
    save_file(tensors, weights)
    config = json.loads((path / persistence.CONFIG_NAME).read_text())
    config["weights_sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    dtypes = {dtype: code for code, dtype in persistence._DTYPES.items()}
    config["tensors"] = {
        key: {"dtype": dtypes[t.dtype], "shape": list(t.shape)} for key, t in tensors.items()
    }
    (path / persistence.CONFIG_NAME).write_text(json.dumps(config))
    with pytest.raises(ModelFileError, match=name):
        hourglass.load(path)


def test_a_model_saved_with_the_error_score_still_scores_by_the_error(tmp_path: Path) -> None:
    X = pd.DataFrame(_correlated(300, 8), columns=list("abcde"))
    before = AutoencoderOutlierDetector(score_type="error", **FAST).fit(X)
    loaded = hourglass.load(before.save(tmp_path / "model"))
    assert loaded.score_type_ == "error"
    np.testing.assert_array_equal(loaded.outlier_score(X), loaded.reconstruction_error(X))


#: A tabular detector with the distance score, saved by hourglass at commit 841daf6
#: (before the local term: three terms, no reference rows), and the scores that commit
#: gave to :func:`_saved_rows` under each x86 kernel set.
TABLE_DISTANCE_DETECTOR = Path(__file__).parents[1] / "fixtures" / "table_distance_detector"


def _saved_rows() -> np.ndarray:
    rows = _correlated(40, 11)
    rows[-5:, 3] = 7.0
    return rows


def test_a_distance_detector_saved_before_the_local_term_scores_as_it_did() -> None:
    saved, exact = read_record(
        TABLE_DISTANCE_DETECTOR.with_name(f"{TABLE_DISTANCE_DETECTOR.name}_scores.json")
    )
    detector = hourglass.load(TABLE_DISTANCE_DETECTOR)
    assert detector.distance_reference_ is None
    assert detector.distance_scaling_.shape == (2, 3)
    scores = detector.outlier_score(_saved_rows())
    if exact:
        np.testing.assert_array_equal(scores, saved["outlier_score"])
    else:  # another CPU's numerics: to float rounding
        np.testing.assert_allclose(scores, saved["outlier_score"], rtol=1e-5)
    np.testing.assert_array_equal(detector.predict(_saved_rows()), saved["predict"])
