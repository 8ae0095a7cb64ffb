"""The Autoencoder estimator: shapes, learning a planted structure, reproducibility, validation."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import sklearn.exceptions
import torch

from helpers import DENSE_FAST
from hourglass import Autoencoder
from hourglass.exceptions import (
    InvalidInputError,
    InvalidParameterError,
    NotFittedError,
    TrainingError,
)

FAST = DENSE_FAST  # these tests are about the dense family

# Data near a 2-D plane in R^10: an autoencoder with a 2-D code can learn it.
_PLANE = np.random.default_rng(0).normal(size=(2, 10))


def _on_plane(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, 2)) @ _PLANE + 0.05 * rng.normal(size=(n, 10))).astype(np.float32)


@pytest.fixture(scope="module")
def train_data() -> np.ndarray:
    return _on_plane(512, seed=1)


@pytest.fixture(scope="module")
def model(train_data: np.ndarray) -> Autoencoder:
    return Autoencoder(
        arch="dense",
        latent_dim=2,
        hidden_dims=(16,),
        epochs=40,
        learning_rate=1e-2,
        verbose=0,
        random_state=0,
    ).fit(train_data)


def _weights(estimator: Autoencoder) -> dict[str, torch.Tensor]:
    return estimator.module_.state_dict()


def _same_weights(a: Autoencoder, b: Autoencoder) -> bool:
    wa, wb = _weights(a), _weights(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_fit_returns_self(train_data: np.ndarray) -> None:
    estimator = Autoencoder(**FAST, random_state=0)

    assert estimator.fit(train_data) is estimator


def test_fitted_attributes(model: Autoencoder) -> None:
    assert model.input_shape_ == (10,)
    assert model.n_features_in_ == 10
    assert model.n_epochs_ == 40
    assert set(model.history_) == {"loss", "mae", "epoch_time"}
    assert all(len(values) == 40 for values in model.history_.values())
    assert model.history_["loss"][-1] < 0.05 * model.history_["loss"][0]
    assert model.best_epoch_ is None
    assert model.fit_time_ > 0
    assert model.device_.type in ("cpu", "cuda")


def test_transform_gives_latent_codes(model: Autoencoder) -> None:
    codes = model.transform(_on_plane(7, seed=2))

    assert codes.shape == (7, 2)
    assert codes.dtype == np.float32


@pytest.mark.parametrize("shape", [(16, 12), (16, 28, 28), (16, 1, 8, 8)])
def test_reconstruct_keeps_the_input_shape(shape: tuple[int, ...]) -> None:
    X = np.random.default_rng(0).random(shape, dtype=np.float32)
    estimator = Autoencoder(**FAST, random_state=0).fit(X)

    reconstruction = estimator.reconstruct(X)

    assert reconstruction.shape == shape
    assert reconstruction.dtype == np.float32
    assert estimator.transform(X).shape == (16, 2)
    assert estimator.reconstruction_error(X).shape == (16,)
    assert ((reconstruction >= 0) & (reconstruction <= 1)).all()  # sigmoid output


def test_the_planted_plane_is_learnt(model: Autoencoder) -> None:
    held_out = _on_plane(500, seed=3)

    mse = model.reconstruction_error(held_out, metric="mse")

    # Far better than predicting the mean, whose MSE is the average variance.
    assert mse.mean() < 0.05 * held_out.var(axis=0).mean()


def test_error_is_higher_off_the_training_distribution(
    model: Autoencoder, train_data: np.ndarray
) -> None:
    on = _on_plane(500, seed=4)
    rng = np.random.default_rng(5)
    # Same per-feature spread as the training data, but not near the plane.
    off = (rng.normal(size=(500, 10)) * train_data.std(axis=0)).astype(np.float32)

    error_on = model.reconstruction_error(on)
    error_off = model.reconstruction_error(off)

    assert np.median(error_off) > 3 * np.median(error_on)


def test_reconstruction_error_metrics_match_reconstruct(model: Autoencoder) -> None:
    X = _on_plane(50, seed=6)
    diff = (model.reconstruct(X) - X).astype(np.float64)

    np.testing.assert_allclose(model.reconstruction_error(X), np.abs(diff).mean(axis=1), rtol=1e-5)
    np.testing.assert_allclose(
        model.reconstruction_error(X, metric="mse"), (diff**2).mean(axis=1), rtol=1e-5
    )


def test_sigmoid_model_errors_match_reconstruct() -> None:
    X = np.random.default_rng(0).random((40, 5), dtype=np.float32)
    estimator = Autoencoder(**FAST, random_state=0).fit(X)
    p = estimator.reconstruct(X).astype(np.float64)

    np.testing.assert_allclose(
        estimator.reconstruction_error(X, metric="mae"), np.abs(p - X).mean(axis=1), rtol=1e-5
    )
    bce = -(X * np.log(p) + (1 - X) * np.log(1 - p)).mean(axis=1)
    np.testing.assert_allclose(estimator.reconstruction_error(X, metric="bce"), bce, rtol=1e-4)


def test_unknown_or_unsuitable_metric_is_rejected(model: Autoencoder) -> None:
    X = _on_plane(3, seed=7)

    # Arguments that cannot work, whatever the data: parameter errors.
    with pytest.raises(InvalidParameterError, match="Unknown error metric 'rmse'"):
        model.reconstruction_error(X, metric="rmse")
    with pytest.raises(InvalidParameterError, match="metric='bce' needs a model with a sigmoid"):
        model.reconstruction_error(X, metric="bce")


def test_same_random_state_gives_identical_models(train_data: np.ndarray) -> None:
    X = train_data[:128]
    first = Autoencoder(**FAST, random_state=3).fit(X)
    second = Autoencoder(**FAST, random_state=3).fit(X)
    other = Autoencoder(**FAST, random_state=4).fit(X)

    assert _same_weights(first, second)
    np.testing.assert_array_equal(first.transform(X), second.transform(X))
    np.testing.assert_array_equal(first.reconstruct(X), second.reconstruct(X))
    assert first.history_["loss"] == second.history_["loss"]
    assert not _same_weights(first, other)


@pytest.mark.parametrize("make", [np.random.RandomState, np.random.default_rng])
def test_random_state_objects_are_reproducible(make: Any, train_data: np.ndarray) -> None:
    X = train_data[:64]

    first = Autoencoder(**FAST, random_state=make(0)).fit(X)
    second = Autoencoder(**FAST, random_state=make(0)).fit(X)

    assert _same_weights(first, second)


def test_torch_input_trains_the_same_model_as_numpy(train_data: np.ndarray) -> None:
    X = train_data[:64]

    from_numpy = Autoencoder(**FAST, random_state=0).fit(X)
    from_torch = Autoencoder(**FAST, random_state=0).fit(torch.from_numpy(X.copy()))

    assert _same_weights(from_numpy, from_torch)


def test_scores_are_deterministic_and_independent_of_batching(model: Autoencoder) -> None:
    X = _on_plane(300, seed=8)

    whole = model.reconstruction_error(X)

    np.testing.assert_array_equal(whole, model.reconstruction_error(X))
    parts = np.concatenate(
        [model.reconstruction_error(X[:100]), model.reconstruction_error(X[100:])]
    )
    np.testing.assert_allclose(parts, whole, rtol=1e-5)


def test_fit_does_not_modify_the_input(train_data: np.ndarray) -> None:
    X = train_data[:64].copy()

    Autoencoder(**FAST, random_state=0).fit(X)

    np.testing.assert_array_equal(X, train_data[:64])


def test_validation_data_is_evaluated_every_epoch(train_data: np.ndarray) -> None:
    estimator = Autoencoder(**{**FAST, "epochs": 3}, random_state=0)

    estimator.fit(train_data[:128], validation_data=_on_plane(40, seed=9))

    assert len(estimator.history_["val_loss"]) == 3
    assert len(estimator.history_["val_mae"]) == 3


def test_validation_data_must_match_the_sample_shape(train_data: np.ndarray) -> None:
    with pytest.raises(InvalidInputError, match="validation_data has samples of shape"):
        Autoencoder(**FAST).fit(train_data[:64], validation_data=train_data[:8].reshape(8, 2, 5))


def test_validation_fraction_without_early_stopping(train_data: np.ndarray) -> None:
    estimator = Autoencoder(**FAST, validation_fraction=0.25, random_state=0).fit(train_data[:64])

    assert len(estimator.history_["val_loss"]) == 2
    assert estimator.best_epoch_ is None


def test_early_stopping_with_validation_fraction(train_data: np.ndarray) -> None:
    patience, epochs = 2, 40
    estimator = Autoencoder(
        latent_dim=2,
        epochs=epochs,
        learning_rate=0.02,
        early_stopping=True,
        validation_fraction=0.25,
        patience=patience,
        verbose=0,
        random_state=0,
    ).fit(train_data[:256])

    val_loss = estimator.history_["val_loss"]
    assert len(val_loss) == estimator.n_epochs_
    assert estimator.best_epoch_ == int(np.argmin(val_loss))
    if estimator.n_epochs_ < epochs:  # stopped early: exactly `patience` epochs after the best
        assert estimator.n_epochs_ == estimator.best_epoch_ + patience + 1


def test_validation_fraction_must_leave_training_samples() -> None:
    X = np.random.default_rng(0).random((2, 3), dtype=np.float32)

    with pytest.raises(InvalidInputError, match="leaves no training samples out of 2"):
        Autoencoder(**FAST, validation_fraction=0.9).fit(X)


def test_diverging_training_raises_training_error(train_data: np.ndarray) -> None:
    with pytest.raises(TrainingError, match="learning rate"):
        Autoencoder(latent_dim=2, epochs=5, learning_rate=1e12, verbose=0, random_state=0).fit(
            1000 * train_data[:128]
        )


def test_refit_replaces_the_fitted_state(train_data: np.ndarray) -> None:
    estimator = Autoencoder(**FAST, random_state=0).fit(train_data[:64])

    estimator.fit(train_data[:64, :4])

    assert estimator.n_features_in_ == 4
    assert estimator.transform(train_data[:5, :4]).shape == (5, 2)


@pytest.mark.parametrize("method", ["transform", "reconstruct", "reconstruction_error"])
def test_methods_before_fit_raise_not_fitted(method: str) -> None:
    with pytest.raises(NotFittedError, match="not fitted yet") as error:
        getattr(Autoencoder(), method)(np.zeros((2, 3), dtype=np.float32))
    assert isinstance(error.value, sklearn.exceptions.NotFittedError)


def test_verbose_controls_the_progress_bar(
    train_data: np.ndarray, capsys: pytest.CaptureFixture[str]
) -> None:
    Autoencoder(**FAST, random_state=0).fit(train_data[:64])
    silent = capsys.readouterr()
    Autoencoder(**{**FAST, "verbose": 1}, random_state=0).fit(train_data[:64])
    noisy = capsys.readouterr()

    assert silent.out == silent.err == ""
    assert "Autoencoder.fit" in noisy.err


def test_long_scoring_passes_show_a_progress_bar_only_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys

    X = np.random.default_rng(0).random((300_000, 2), dtype=np.float32)
    model = Autoencoder(latent_dim=1, epochs=1, verbose=0, random_state=0).fit(X[:500])
    model.set_params(verbose=1)
    capsys.readouterr()
    model.reconstruction_error(X)  # 74 blocks, but not a terminal: no bar
    assert "scoring" not in capsys.readouterr().err
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    model.reconstruction_error(X)
    assert "scoring" in capsys.readouterr().err
    model.reconstruction_error(X[:1000])  # a short pass: no bar
    assert "scoring" not in capsys.readouterr().err
