"""The scoring service's model side, without HTTP: checks, encoding, scores equal the library's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import bar_images, mixed_table
from hourglass import Autoencoder, AutoencoderOutlierDetector
from hourglass.exceptions import InvalidInputError, InvalidParameterError
from hourglass.serve import RequestError, ScoringModel
from hourglass.serve._scoring import parse_json
from serving import as_records


@pytest.fixture(scope="module")
def table_detector() -> AutoencoderOutlierDetector:
    return AutoencoderOutlierDetector(
        arch="tabular", epochs=2, latent_dim=2, fpr=0.05, verbose=0, random_state=0
    ).fit(mixed_table(400, 0))


@pytest.fixture(scope="module")
def table_model(table_detector: AutoencoderOutlierDetector) -> ScoringModel:
    return ScoringModel(table_detector, max_batch=64)


@pytest.fixture(scope="module")
def vector_detector() -> AutoencoderOutlierDetector:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(300, 5)), columns=list("abcde"))
    return AutoencoderOutlierDetector(
        arch="dense", latent_dim=2, epochs=2, fpr=0.05, verbose=0, random_state=0
    ).fit(frame)


def test_table_encoding_equals_the_schema_s(
    table_model: ScoringModel, table_detector: AutoencoderOutlierDetector
) -> None:
    frame = mixed_table(60, 1)
    frame.loc[3, "city"] = "atlantis"  # never seen in training
    expected = table_detector.table_schema_.encode(frame)
    records = table_model.prepare({"records": as_records(frame)})
    rows = table_model.prepare(
        {"rows": [[r[c] for c in table_model.columns] for r in as_records(frame)]}
    )
    np.testing.assert_array_equal(records.values, expected)
    np.testing.assert_array_equal(rows.values, expected)


def test_table_scores_equal_the_library_s(
    table_model: ScoringModel, table_detector: AutoencoderOutlierDetector
) -> None:
    frame = mixed_table(40, 2)
    results = table_model.score({"records": as_records(frame)})["results"]
    errors = table_detector.reconstruction_error(frame)
    np.testing.assert_array_equal([r["reconstruction_error"] for r in results], errors)
    np.testing.assert_array_equal(
        [r["score"] for r in results], table_detector.score_samples(frame)
    )
    np.testing.assert_array_equal([r["p_value"] for r in results], table_detector.p_values(frame))
    np.testing.assert_array_equal(
        [r["outlier"] for r in results], table_detector.predict(frame) == -1
    )
    explained = table_detector.explain(frame).to_numpy()
    for result, row in zip(results, explained, strict=True):
        best = np.argsort(-row, kind="stable")[:3]
        assert [c["column"] for c in result["top_columns"]] == [
            table_model.columns[j] for j in best
        ]
        np.testing.assert_array_equal([c["contribution"] for c in result["top_columns"]], row[best])


def test_a_row_scores_the_same_alone_or_in_any_batch(
    table_model: ScoringModel, table_detector: AutoencoderOutlierDetector
) -> None:
    frame = mixed_table(20, 3)
    records = as_records(frame)
    whole = [r["score"] for r in table_model.score({"records": records})["results"]]
    alone = [table_model.score({"records": [r]})["results"][0]["score"] for r in records]
    prepared = [table_model.prepare({"records": records[i : i + 3]}) for i in range(0, 20, 3)]
    together = [
        r["score"] for response in table_model.score_prepared(prepared) for r in response["results"]
    ]
    assert alone == whole == together
    # The library itself agrees, on the whole table and row by row.
    np.testing.assert_array_equal(whole, table_detector.score_samples(frame))
    np.testing.assert_array_equal(
        alone, [table_detector.score_samples(frame.iloc[i : i + 1])[0] for i in range(20)]
    )


def test_requests_batched_at_random_score_as_the_library_does() -> None:
    """Concurrent requests are stacked into one batch: any grouping gives the same bits."""
    images = bar_images(200, 4, shape=(12, 12))
    detector = AutoencoderOutlierDetector(epochs=2, fpr=0.05, verbose=0, random_state=0).fit(
        bar_images(300, 3)
    )
    model = ScoringModel(detector)
    expected = detector.score_samples(images)
    rng = np.random.default_rng(0)
    for _ in range(3):
        order, start, requests = rng.permutation(len(images)), 0, []
        while start < len(images):
            size = int(rng.integers(1, 40))
            requests.append(order[start : start + size])
            start += size
        prepared = [model.prepare({"rows": images[rows].tolist()}) for rows in requests]
        responses = model.score_prepared(prepared)
        got = np.empty(len(images))
        for rows, response in zip(requests, responses, strict=True):
            got[rows] = [r["score"] for r in response["results"]]
        np.testing.assert_array_equal(got, expected)


def test_vector_model_takes_records_and_rows(vector_detector: AutoencoderOutlierDetector) -> None:
    model = ScoringModel(vector_detector)
    X = np.random.default_rng(1).normal(size=(10, 5))
    expected = vector_detector.score_samples(pd.DataFrame(X, columns=list("abcde")))
    by_rows = model.score({"rows": X.tolist()})["results"]
    by_records = model.score(
        {"records": [dict(zip("abcde", row, strict=True)) for row in X.tolist()]}
    )
    np.testing.assert_array_equal([r["score"] for r in by_rows], expected)
    np.testing.assert_array_equal([r["score"] for r in by_records["results"]], expected)
    assert "top_columns" not in by_rows[0]


def test_overflowing_errors_are_null_and_outliers(
    vector_detector: AutoencoderOutlierDetector,
) -> None:
    model = ScoringModel(vector_detector)
    response = model.score({"rows": [[3e38] * 5, [0.0] * 5]})
    json.dumps(response, allow_nan=False)  # valid JSON: no NaN or Infinity
    huge, normal = response["results"]
    assert huge["outlier"] is True
    assert huge["reconstruction_error"] is None or huge["reconstruction_error"] > 1e30
    assert normal["outlier"] is False


def test_image_model_takes_pixels_nested_or_flat() -> None:
    images = bar_images(200, 0)
    detector = AutoencoderOutlierDetector(
        latent_dim=4, epochs=2, fpr=0.1, verbose=0, random_state=0
    ).fit(images)
    model = ScoringModel(detector)
    query = bar_images(9, 1)
    expected = detector.score_samples(query)
    nested = model.score({"rows": query.tolist()})["results"]
    flat = model.score({"rows": query.reshape(9, -1).tolist()})["results"]
    as_floats = model.score({"rows": query.astype(float).tolist()})["results"]
    np.testing.assert_array_equal([r["score"] for r in nested], expected)
    np.testing.assert_array_equal([r["score"] for r in flat], expected)
    np.testing.assert_array_equal([r["score"] for r in as_floats], expected)
    for bad in (256, -1, 0.5):
        with pytest.raises(RequestError, match="as integers from 0 to 255"):
            model.score({"rows": [[[bad] * 12] * 12]})
    with pytest.raises(InvalidInputError, match="shape"):
        model.score({"rows": [[[0] * 6] * 24]})


def test_text_model_takes_strings() -> None:
    texts = ["the cat sat", "a dog ran", "the bird flew", "one fish swam"] * 5
    detector = AutoencoderOutlierDetector(
        arch="sequence",
        latent_dim=4,
        hidden_dims=(8,),
        epochs=1,
        fpr=0.25,
        verbose=0,
        random_state=0,
    ).fit(texts)
    model = ScoringModel(detector)
    query = ["the cat ran", "zzzz qqqq"]
    results = model.score({"rows": query})["results"]
    np.testing.assert_array_equal([r["score"] for r in results], detector.score_samples(query))
    with pytest.raises(RequestError, match="Row 1 is a number"):
        model.score({"rows": ["fine", 3]})
    with pytest.raises(RequestError, match="send 'rows', not 'records'"):
        model.score({"records": [{"text": "x"}]})


@pytest.mark.parametrize(
    ("payload", "status", "fragment"),
    [
        ([], 422, "not a JSON object"),
        ({"rows": [], "x": 1}, 422, "unknown field(s) ['x']"),
        ({"rows": [], "records": []}, 422, "both 'records' and 'rows'"),
        ({}, 422, "no 'records' or 'rows'"),
        ({"records": []}, 422, "non-empty array"),
        ({"records": "x"}, 422, "non-empty array"),
        ({"records": [1]}, 422, "Record 0 is a number"),
        ({"records": [{"age": 1}]}, 422, "lacks column(s) ['income', 'city', 'owner']"),
        (
            {"records": [{"age": 1, "income": 2, "city": "x", "owner": True, "id": 7}]},
            422,
            "unknown column(s) ['id']",
        ),
        (
            {"records": [{"age": "41", "income": 2, "city": "x", "owner": True}]},
            422,
            "column 'age' is numeric",
        ),
        (
            {"records": [{"age": True, "income": 2, "city": "x", "owner": True}]},
            422,
            "got a boolean",
        ),
        (
            {"records": [{"age": 1, "income": 2, "city": {"a": 1}, "owner": True}]},
            422,
            "column 'city' is categorical",
        ),
        ({"rows": [[1, 2, "x"]]}, 422, "array of 4 values"),
        ({"rows": [[1e308 * 10, 2, "x", True]]}, 422, "too large for a float"),
        ({"rows": [[10**400, 2, "x", True]]}, 422, "too large for a float"),
        ({"rows": [[1e300, 2, "x", True]]}, 422, "too far to compute with"),
        ({"rows": [[1, 2, "x", True]] * 65}, 413, "at most 64 per request"),
    ],
)
def test_requests_that_do_not_fit_are_refused_with_what_to_do(
    table_model: ScoringModel, payload: object, status: int, fragment: str
) -> None:
    with pytest.raises(RequestError) as caught:
        table_model.score(payload)
    assert caught.value.status == status
    assert fragment in caught.value.message
    assert "\n" not in caught.value.message


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"", "empty"),
        (b"{", "not valid JSON"),
        (b'{"rows": [[NaN]]}', "NaN is not a JSON number"),
        (b'{"rows": [[Infinity]]}', "Infinity is not a JSON number"),
        (b"\xff\xfe{", "not"),
        (b"[" * 200_000, "nested too deeply"),
    ],
)
def test_bodies_that_are_not_json_are_refused(body: bytes, fragment: str) -> None:
    with pytest.raises(RequestError) as caught:
        parse_json(body)
    assert caught.value.status == 400
    assert fragment in caught.value.message


def test_only_outlier_detectors_are_served() -> None:
    autoencoder = Autoencoder(latent_dim=2, epochs=1, verbose=0, random_state=0).fit(
        np.random.default_rng(0).normal(size=(50, 4))
    )
    with pytest.raises(InvalidInputError, match="needs an AutoencoderOutlierDetector"):
        ScoringModel(autoencoder)  # type: ignore[arg-type]


@pytest.mark.parametrize("max_batch", [0, 2.5, True])
def test_a_max_batch_that_cannot_work_is_a_parameter_error(
    table_detector: AutoencoderOutlierDetector, max_batch: object
) -> None:
    with pytest.raises(InvalidParameterError, match="max_batch must be an int >= 1"):
        ScoringModel(table_detector, max_batch=max_batch)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"workers": 0}, "workers must be an int >= 1; got 0."),
        ({"port": -1}, "port must be an int >= 0; got -1."),
        ({"read_timeout": 0.0}, "read_timeout must be a positive number; got 0.0."),
    ],
)
def test_server_limits_that_cannot_work_are_parameter_errors(
    limits: dict[str, float], message: str, tmp_path: Path
) -> None:
    from hourglass.serve import serve

    with pytest.raises(InvalidParameterError, match=message):  # before the model is read
        serve(tmp_path / "no-model", **limits)  # type: ignore[arg-type]


def test_the_schema_s_example_scores(table_model: ScoringModel) -> None:
    schema = table_model.request_schema()
    assert schema["properties"]["records"]["maxItems"] == 64
    assert schema["properties"]["records"]["items"]["required"] == table_model.columns
    result = table_model.score(schema["examples"][0])
    assert len(result["results"]) == 1
