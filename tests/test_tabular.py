"""The table schema: column types, robust scaling, vocabularies, missing values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from helpers import mixed_table
from hourglass.exceptions import InvalidInputError
from hourglass.tabular import MISSING_CODE, UNSEEN_CODE, TableSchema, pack_table, scale_numeric


def test_column_types_are_inferred() -> None:
    frame = mixed_table(200, seed=0).assign(kind=pd.Categorical(["x", "y"] * 100))
    schema = TableSchema.fit(frame)
    assert schema.numeric == ["age", "income"]
    assert schema.categorical == ["city", "owner", "kind"]
    assert set(schema.vocabularies[0]) == {"north", "centre", "south"}
    assert schema.columns == ["age", "income", "city", "owner", "kind"]
    assert schema.category_sizes == [5, 4, 4]  # missing + unseen + the values


def test_numeric_columns_are_scaled_robustly() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, 1000.0]})
    schema = TableSchema.fit(frame)
    assert schema.medians == [3.0]
    assert schema.scales == [2.0]  # the interquartile range, untouched by the outlier
    np.testing.assert_allclose(schema.encode(frame)[:, 0], [-1.0, -0.5, 0.0, 0.5, 498.5])


def test_layout_missing_values_and_unseen_categories() -> None:
    train = pd.DataFrame({"x": [1.0, 2.0, 3.0], "c": ["a", "b", "a"]})
    schema = TableSchema.fit(train)
    new = pd.DataFrame({"x": [np.nan, 2.0, 5.0], "c": ["a", None, "zebra"], "extra": [0, 0, 0]})
    packed = schema.encode(new)
    assert packed.shape == (3, schema.width) == (3, 3)
    np.testing.assert_array_equal(packed[:, 1], [0.0, 1.0, 1.0])  # present-mask of x
    assert packed[0, 0] == 0.0  # missing numeric -> 0
    assert packed[1, 2] == MISSING_CODE
    assert packed[2, 2] == UNSEEN_CODE
    assert packed[0, 2] == 2 + schema.vocabularies[0].index("a")


def test_encode_is_scale_numeric_then_pack_table() -> None:
    """The steps the scoring service and the ONNX graph share with encode give its bits."""
    schema = TableSchema.fit(mixed_table(200, seed=0))
    frame = mixed_table(50, seed=1)
    frame.loc[[2, 7], "age"] = np.nan
    frame.loc[4, "city"] = "atlantis"
    numbers = frame[schema.numeric].to_numpy(dtype=np.float64)
    lookups = schema.lookups()
    codes = np.array(
        [
            [
                MISSING_CODE if pd.isna(value) else lookup.get(str(value), UNSEEN_CODE)
                for lookup, value in zip(lookups, row, strict=True)
            ]
            for row in frame[schema.categorical].itertuples(index=False)
        ],
        dtype=np.float32,
    )

    scaled, present = scale_numeric(numbers, np.array(schema.medians), np.array(schema.scales))

    assert present.dtype == bool
    assert scaled[2, 0] == 0.0
    assert not present[2, 0]
    np.testing.assert_array_equal(pack_table(scaled, present, codes), schema.encode(frame))


def test_scale_numeric_gives_the_same_bits_in_numpy_and_torch() -> None:
    values = np.random.default_rng(0).normal(scale=1e3, size=(40, 3))
    values[::7, 1] = np.nan
    medians, scales = np.array([1.5, -2.0, 1e-3]), np.array([3.0, 0.1, 7.0])

    scaled, present = scale_numeric(values, medians, scales)
    tensor_scaled, tensor_present = scale_numeric(
        torch.from_numpy(values), torch.from_numpy(medians), torch.from_numpy(scales), xp=torch
    )

    np.testing.assert_array_equal(tensor_scaled.numpy(), scaled)
    np.testing.assert_array_equal(tensor_present.numpy(), present)
    np.testing.assert_array_equal(scaled[~present], 0.0)


def test_schema_survives_json() -> None:
    schema = TableSchema.fit(mixed_table(100, seed=1))
    assert TableSchema.from_json(schema.to_json()) == schema


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"age": [1, 2], "city": ["a", "b"]}), r"lacks column\(s\) \['income'"),
        (pd.DataFrame({"age": ["x", "y"], "income": [1, 2], "city": ["a", "b"]}), "non-numeric"),
    ],
)
def test_unusable_tables_are_clear_errors(frame: pd.DataFrame, message: str) -> None:
    schema = TableSchema.fit(pd.DataFrame({"age": [1, 2], "income": [3, 4], "city": ["a", "b"]}))
    with pytest.raises(InvalidInputError, match=message):
        schema.encode(frame)


def test_infinite_values_are_rejected_at_fit() -> None:
    with pytest.raises(InvalidInputError, match="infinite values"):
        TableSchema.fit(pd.DataFrame({"x": [1.0, np.inf]}))
