"""The registry resolves ``arch`` in one place, "auto" included."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import bar_images, mixed_table
from hourglass import Autoencoder
from hourglass.families import (
    ARCHITECTURES,
    FAMILIES,
    choose_family,
    get_family,
    takes_missing_values,
)


def test_every_family_is_registered_under_its_name() -> None:
    assert ARCHITECTURES == (
        "dense",
        "conv",
        "vae",
        "conv_vae",
        "sequence",
        "tabular",
        "transformer",
    )
    for name, family in FAMILIES.items():
        assert family.name == name
        assert get_family(name) is family


def test_an_unknown_family_name_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown model family 'mlp'"):
        get_family("mlp")


@pytest.mark.parametrize(
    ("X", "params", "expected"),
    [
        (["a text", "another text"], {}, "transformer"),
        (mixed_table(20, 0), {}, "tabular"),
        (np.zeros((20, 5)), {}, "tabular"),
        (pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]}), {}, "tabular"),
        (bar_images(5, 0), {}, "dense"),
        (np.zeros((20, 5)), {"noise": "gaussian"}, "dense"),
        (np.zeros((20, 5)), {"loss": "mse"}, "dense"),
        (mixed_table(20, 0), {"noise": "gaussian"}, "tabular"),  # categories need tabular
    ],
)
def test_auto_chooses_the_family_from_the_data(X: object, params: dict, expected: str) -> None:
    assert choose_family(Autoencoder(**params), X).name == expected


def test_an_explicit_arch_is_taken_as_given() -> None:
    for name in ARCHITECTURES:
        assert choose_family(Autoencoder(arch=name), np.zeros((4, 3))).name == name


def test_only_auto_and_the_tabular_family_read_nan_as_missing() -> None:
    assert takes_missing_values("auto")
    assert takes_missing_values("tabular")
    assert not any(takes_missing_values(name) for name in ARCHITECTURES if name != "tabular")
