"""Input handling: accepted containers and shapes, scaling, and the errors for unusable data."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.utils._param_validation import InvalidParameterError

from helpers import DENSE_FAST
from hourglass import Autoencoder, AutoencoderOutlierDetector
from hourglass.estimators._input import prepare_input
from hourglass.exceptions import InvalidInputError

FAST = DENSE_FAST  # these tests are about the dense family


def _unit_data(n: int = 96, d: int = 6, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, d), dtype=np.float32)


@pytest.fixture(scope="module")
def unit_model() -> Autoencoder:
    """Fitted on data in [0, 1]: a sigmoid output."""
    return Autoencoder(**FAST, random_state=0).fit(_unit_data())


@pytest.fixture(scope="module")
def linear_data() -> np.ndarray:
    rng = np.random.default_rng(1)
    return (rng.normal(size=(96, 6)) * [1.0, 2.0, 0.5, 1.0, 3.0, 1.0]).astype(np.float32)


@pytest.fixture(scope="module")
def linear_model(linear_data: np.ndarray) -> Autoencoder:
    """Fitted on centred data: a linear output."""
    return Autoencoder(**FAST, random_state=0).fit(linear_data)


# ----------------------------------------------------------- accepted inputs


@pytest.mark.parametrize("shape", [(5, 6), (5, 3, 4), (5, 2, 3, 4)])
def test_numpy_arrays_of_2_to_4_dimensions(shape: tuple[int, ...]) -> None:
    X = np.random.default_rng(0).normal(size=shape)  # float64

    prepared = prepare_input(Autoencoder(), X, reset=True)

    assert prepared.values.dtype == np.float32
    assert prepared.values.shape == shape
    assert prepared.values.flags.c_contiguous
    np.testing.assert_array_equal(prepared.values, X.astype(np.float32))
    assert not prepared.was_uint8


def test_torch_tensors_match_numpy() -> None:
    X = np.random.default_rng(0).random((4, 2, 3), dtype=np.float32)

    prepared = prepare_input(Autoencoder(), torch.from_numpy(X).requires_grad_(), reset=True)

    np.testing.assert_array_equal(prepared.values, X)


def test_lists_are_accepted() -> None:
    prepared = prepare_input(Autoencoder(), [[0, 1, 2], [3, 4, 5]], reset=True)

    np.testing.assert_array_equal(prepared.values, np.arange(6, dtype=np.float32).reshape(2, 3))


def test_numeric_dataframe_records_feature_names() -> None:
    frame = pd.DataFrame(
        {
            "a": [0.5, 1.5],
            "b": np.array([1, 2], dtype=np.int8),
            "c": [True, False],
            "d": pd.array([3, 4], dtype="Int64"),
        }
    )
    estimator = Autoencoder()

    prepared = prepare_input(estimator, frame, reset=True)

    np.testing.assert_array_equal(prepared.values, [[0.5, 1, 1, 3], [1.5, 2, 0, 4]])
    assert list(estimator.feature_names_in_) == ["a", "b", "c", "d"]


@pytest.mark.parametrize(
    "column",
    [
        pd.Series(["x", "y"], dtype=object),
        pd.Series(["x", "y"], dtype="string"),
        pd.Series(["x", "y"], dtype="category"),
    ],
    ids=["object", "string", "category"],
)
def test_non_numeric_dataframe_column_names_the_column(column: pd.Series) -> None:
    frame = pd.DataFrame({"size": [1.0, 2.0], "colour": column})

    with pytest.raises(InvalidInputError, match=r"'colour'.*not numeric.*Encode categorical"):
        Autoencoder(**FAST).fit(frame)


def test_missing_values_in_a_nullable_column_are_rejected() -> None:
    frame = pd.DataFrame({"a": [0.5, 0.2], "b": pd.array([1, None], dtype="Int64")})

    with pytest.raises(InvalidInputError, match="NaN"):
        prepare_input(Autoencoder(), frame, reset=True)


def test_uint8_is_recognised_as_pixel_intensities() -> None:
    images = np.array([[0, 51, 255], [0, 0, 102]], dtype=np.uint8)

    assert prepare_input(Autoencoder(), images, reset=True).was_uint8
    assert prepare_input(Autoencoder(), torch.from_numpy(images), reset=True).was_uint8
    assert not prepare_input(Autoencoder(), images.astype(np.int64), reset=True).was_uint8

    model = Autoencoder(**FAST, random_state=0).fit(images)

    # Divided by 255, the data lie in [0, 1]: a sigmoid output is chosen.
    assert model.scales_uint8_
    assert model.output_activation_ == "sigmoid"
    reconstruction = model.reconstruct(images)
    assert reconstruction.dtype == np.float32
    assert ((reconstruction >= 0) & (reconstruction <= 1)).all()


def test_uint8_input_is_treated_as_input_over_255() -> None:
    images = np.random.default_rng(0).integers(0, 256, size=(32, 4, 4), dtype=np.uint8)
    scaled = images.astype(np.float32) / np.float32(255)

    model = Autoencoder(**FAST, random_state=0).fit(images)
    same = Autoencoder(**FAST, random_state=0).fit(scaled)

    assert model.scales_uint8_
    assert not same.scales_uint8_
    np.testing.assert_array_equal(model.reconstruct(images), model.reconstruct(scaled))
    np.testing.assert_array_equal(model.reconstruct(images), same.reconstruct(scaled))


# ------------------------------------------------------------ rejected inputs


@pytest.mark.parametrize(
    ("bad", "message"),
    [(np.nan, "NaN"), (np.inf, "infinity"), (-np.inf, "infinity")],
)
@pytest.mark.parametrize("shape", [(4, 3), (4, 2, 2)])
def test_non_finite_values_are_rejected(bad: float, message: str, shape: tuple[int, ...]) -> None:
    X = np.zeros(shape, dtype=np.float32)
    X.flat[5] = bad

    with pytest.raises(InvalidInputError, match=message):
        Autoencoder(**FAST).fit(X)


@pytest.mark.parametrize(
    ("X", "message"),
    [
        (np.zeros((0, 3)), "0 sample"),
        (np.zeros((4, 0)), "0 feature"),
        (np.zeros((4, 0, 3)), "samples are empty"),
        (np.zeros(3), "Expected 2D array"),
        (np.zeros((2, 1, 1, 2, 2)), r"\(n, c, h, w\); got an array with 5 dimensions"),
    ],
    ids=["no samples", "no features", "empty samples", "1-D", "5-D"],
)
def test_unusable_shapes_are_rejected(X: np.ndarray, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        Autoencoder(**FAST).fit(X)


def test_wrong_number_of_features_names_both_numbers(unit_model: Autoencoder) -> None:
    with pytest.raises(InvalidInputError, match=r"X has 4 features.*expecting 6 features"):
        unit_model.transform(np.zeros((2, 4), dtype=np.float32))


def test_same_number_of_features_in_another_shape_is_accepted(unit_model: Autoencoder) -> None:
    X = _unit_data(3)

    np.testing.assert_array_equal(unit_model.transform(X.reshape(3, 2, 3)), unit_model.transform(X))


def test_sigmoid_output_needs_data_in_unit_range() -> None:
    X = np.random.default_rng(0).uniform(-1.0, 2.0, size=(32, 3)).astype(np.float32)

    with pytest.raises(
        InvalidInputError, match=r"sigmoid output needs data in \[0, 1\].*Scale.*'linear'"
    ):
        Autoencoder(output_activation="sigmoid", **FAST).fit(X)


def test_sigmoid_model_scores_out_of_range_data_as_badly_reconstructed(
    unit_model: Autoencoder,
) -> None:
    # After fit, values outside [0, 1] are what an outlier detector must score, not reject.
    inside = np.full((1, 6), 0.5, dtype=np.float32)
    outside = np.array([[0.5] * 5 + [2.0]], dtype=np.float32)
    assert unit_model.reconstruct(outside).max() <= 1.0
    assert unit_model.reconstruction_error(outside)[0] > unit_model.reconstruction_error(inside)[0]
    with pytest.raises(InvalidInputError, match=r"metric='bce' needs data in \[0, 1\].*'mae'"):
        unit_model.reconstruction_error(outside, metric="bce")


def test_output_activation_auto_follows_the_data_range(
    unit_model: Autoencoder, linear_model: Autoencoder
) -> None:
    assert (unit_model.output_activation_, unit_model.loss_) == ("sigmoid", "bce")
    assert (linear_model.output_activation_, linear_model.loss_) == ("linear", "mse")


@pytest.mark.parametrize("output_activation", ["auto", "linear"])
def test_bce_loss_needs_a_sigmoid_output(output_activation: str) -> None:
    X = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)

    with pytest.raises(InvalidInputError, match=r"loss='bce' needs output_activation='sigmoid'"):
        Autoencoder(loss="bce", output_activation=output_activation, **FAST).fit(X)


def test_linear_reconstructions_are_clipped_to_the_training_range(
    linear_model: Autoencoder, linear_data: np.ndarray
) -> None:
    np.testing.assert_array_equal(linear_model.data_min_, linear_data.min(axis=0))
    np.testing.assert_array_equal(linear_model.data_max_, linear_data.max(axis=0))
    far = np.random.default_rng(2).normal(scale=50.0, size=(200, 6)).astype(np.float32)

    reconstruction = linear_model.reconstruct(far)

    assert (reconstruction >= linear_model.data_min_).all()
    assert (reconstruction <= linear_model.data_max_).all()
    # The clipping is active: some values sit exactly on a bound.
    on_bound = (reconstruction == linear_model.data_min_) | (
        reconstruction == linear_model.data_max_
    )
    assert on_bound.any()


# -------------------------------------------------------------- parameters


@pytest.mark.parametrize("estimator_class", [Autoencoder, AutoencoderOutlierDetector])
def test_invalid_parameters_raise_at_fit_not_init(estimator_class: type[Autoencoder]) -> None:
    estimator = estimator_class(latent_dim=0)  # no error yet
    assert estimator.get_params()["latent_dim"] == 0

    name = estimator_class.__name__
    expected = (
        rf"^The 'latent_dim' parameter of {name} must be an int in the range \[1, inf\)\. "
        r"Got 0 instead\.$"
    )
    with pytest.raises(InvalidParameterError, match=expected):
        estimator.fit(_unit_data(8))


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"epochs": 0}, "epochs"),
        ({"activation": "swish"}, "activation"),
        ({"output_activation": "tanh"}, "output_activation"),
        ({"validation_fraction": 1.0}, "validation_fraction"),
        ({"hidden_dims": 5}, "hidden_dims"),
    ],
)
def test_other_invalid_parameters(params: dict[str, Any], name: str) -> None:
    with pytest.raises(InvalidParameterError, match=f"The '{name}' parameter of Autoencoder"):
        Autoencoder(verbose=0, **params).fit(_unit_data(8))


@pytest.mark.parametrize("hidden_dims", [(8, 4.5), ("8",), (8, 0), (True,)])
def test_hidden_dims_must_be_positive_ints(hidden_dims: tuple[Any, ...]) -> None:
    with pytest.raises(
        ValueError, match=r"The 'hidden_dims' parameter of Autoencoder must be a sequence"
    ):
        Autoencoder(hidden_dims=hidden_dims, verbose=0).fit(_unit_data(8))
