"""Contamination-robust training: ``trim`` leaves a batch's worst rows out of the loss."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from sklearn.utils._param_validation import InvalidParameterError

from helpers import mixed_table
from hourglass import Autoencoder, AutoencoderOutlierDetector, load
from hourglass.checkpoint import epochs_done
from hourglass.exceptions import InvalidInputError
from hourglass.nn.tabular import trimmed_mean


def contaminated_table(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows near a plane in 8-D, and a tenth of outliers in a clump off it (labels 1)."""
    rng = np.random.default_rng(seed)
    mixing = np.random.default_rng(100).normal(size=(2, 8))
    X = rng.normal(size=(n, 2)) @ mixing + 0.05 * rng.normal(size=(n, 8))
    n_outliers = n // 10
    clump = 2.0 * np.random.default_rng(101).normal(size=8)
    X[:n_outliers] = clump + 0.3 * rng.normal(size=(n_outliers, 8))
    y = np.zeros(n, dtype=int)
    y[:n_outliers] = 1
    return X.astype(np.float32), y


def test_trimmed_mean_ignores_the_largest_values_and_their_gradients() -> None:
    values = torch.tensor([1.0, 2.0, 3.0, 100.0, 4.0], requires_grad=True)
    trimmed = trimmed_mean(values, 0.2)  # floor(0.2 * 5) = 1 value left out
    assert trimmed.item() == pytest.approx(2.5)
    trimmed.backward()  # type: ignore[no-untyped-call]
    assert values.grad is not None
    assert values.grad.tolist() == [0.25, 0.25, 0.25, 0.0, 0.25]
    assert trimmed_mean(values, 0.0).item() == pytest.approx(22.0)
    assert trimmed_mean(values[:4], 0.2).item() == pytest.approx(26.5)  # floor(0.8) = 0


def test_trimming_ranks_planted_training_outliers_above_every_normal_row() -> None:
    X, _ = contaminated_table(1500, seed=0)  # a tenth of the training rows are outliers
    X_test, y_test = contaminated_table(1000, seed=1)
    aurocs = {}
    for trim in (0.0, "auto"):  # on the reconstruction error, which trimming is about
        detector = AutoencoderOutlierDetector(
            arch="tabular", trim=trim, score_type="error", verbose=0, random_state=0
        )
        aurocs[trim] = roc_auc_score(y_test, detector.fit(X).outlier_score(X_test))
    assert aurocs["auto"] == 1.0  # every planted outlier scores above every normal row
    assert aurocs[0.0] < 0.995  # trained on them, the plain model reconstructs some well


def test_auto_trims_tabular_detectors_only() -> None:
    table = mixed_table(200, seed=0)
    settings = {"arch": "tabular", "latent_dim": 2, "epochs": 2, "verbose": 0, "random_state": 0}
    auto = AutoencoderOutlierDetector(**settings, fpr=0.05).fit(table)
    fifth = AutoencoderOutlierDetector(**settings, fpr=0.05, trim=0.2).fit(table)
    plain = AutoencoderOutlierDetector(**settings, fpr=0.05, trim=0.0).fit(table)
    np.testing.assert_array_equal(auto.score_samples(table), fifth.score_samples(table))
    assert not np.array_equal(auto.score_samples(table), plain.score_samples(table))
    # The Autoencoder reconstructs every row by default.
    assert Autoencoder().trim == 0.0
    np.testing.assert_array_equal(
        Autoencoder(**settings).fit(table).reconstruction_error(table),
        Autoencoder(**settings, trim=0.0).fit(table).reconstruction_error(table),
    )


def test_trim_round_trips_through_save_and_load(tmp_path: Path) -> None:
    table = mixed_table(200, seed=2)
    detector = AutoencoderOutlierDetector(
        arch="tabular", trim=0.3, fpr=0.05, latent_dim=2, epochs=2, verbose=0, random_state=0
    ).fit(table)
    restored = load(detector.save(tmp_path / "model"))
    assert restored.trim == 0.3
    assert restored.get_params() == detector.get_params()
    np.testing.assert_array_equal(restored.score_samples(table), detector.score_samples(table))


def test_models_saved_before_trim_existed_load_as_untrimmed(tmp_path: Path) -> None:
    import json

    table = mixed_table(200, seed=2)
    detector = AutoencoderOutlierDetector(
        arch="tabular", fpr=0.05, latent_dim=2, epochs=1, verbose=0, random_state=0
    ).fit(table)
    path = detector.save(tmp_path / "model")
    config = json.loads((path / "config.json").read_text())
    del config["params"]["trim"]  # as an older hourglass wrote it
    (path / "config.json").write_text(json.dumps(config))
    assert load(path).trim == 0.0


def test_the_cli_passes_trim_and_checks_it(tmp_path: Path) -> None:
    import contextlib
    import io

    from hourglass.cli import main

    mixed_table(200, seed=2).to_csv(tmp_path / "t.csv", index=False)
    common = ["train", str(tmp_path / "t.csv"), "--arch", "tabular", "--epochs", "1", "-q"]
    with contextlib.redirect_stdout(io.StringIO()):
        assert main([*common, "-o", str(tmp_path / "m"), "--trim", "0.1"]) == 0
    assert load(tmp_path / "m").trim == 0.1
    with contextlib.redirect_stderr(io.StringIO()) as errors:
        assert main([*common, "-o", str(tmp_path / "bad"), "--trim", "0.7"]) == 2
    assert "[0, 0.5)" in errors.getvalue()


def test_a_trimmed_fit_resumes_to_the_weights_of_an_uninterrupted_one(tmp_path: Path) -> None:
    table = mixed_table(160, seed=3)
    settings = {
        "arch": "tabular",
        "trim": 0.25,
        "latent_dim": 2,
        "batch_size": 16,
        "verbose": 0,
        "random_state": 5,
    }
    uninterrupted = Autoencoder(**settings, epochs=4).fit(table)
    Autoencoder(**settings, epochs=2).fit(table, checkpoint_dir=tmp_path)
    assert epochs_done(tmp_path) == 2
    resumed = Autoencoder(**settings, epochs=4).fit(table, checkpoint_dir=tmp_path, resume=True)
    for name, weights in uninterrupted.module_.state_dict().items():
        assert torch.equal(weights, resumed.module_.state_dict()[name]), name
    assert resumed.history_["loss"] == uninterrupted.history_["loss"]


@pytest.mark.parametrize("trim", [-0.1, 0.5, 1.0, "mad", None])
def test_bad_trim_values_are_clear_errors(trim: object) -> None:
    detector = AutoencoderOutlierDetector(arch="tabular", trim=trim, epochs=1, verbose=0)
    with pytest.raises(InvalidParameterError, match="The 'trim' parameter of "):
        detector.fit(mixed_table(50, seed=4))


def test_trimming_needs_a_table() -> None:
    X = np.random.default_rng(0).random((50, 4), dtype=np.float32)
    with pytest.raises(InvalidInputError, match=r"trim=0.1 trims the training loss of tables"):
        AutoencoderOutlierDetector(arch="dense", trim=0.1, epochs=1, verbose=0).fit(X)
    # "auto" and 0 are accepted by every family.
    AutoencoderOutlierDetector(trim=0.0, fpr=0.1, epochs=1, latent_dim=2, verbose=0).fit(X)
