"""Arbitrary input to every estimator entry point: it works, or it fails the documented way.

Each property feeds generated data (any shape and dtype, NaN and infinity, empty
and one-row input, huge and tiny magnitudes, constant columns, DataFrames with
the wrong columns, unseen categories, odd texts and containers) to ``fit``,
``transform``, ``score_samples``, ``predict``, ``reconstruct`` and friends, and
checks that the call either returns a correct result (the right shape, finite
values for valid input, the same result as an equivalent float32 input) or
raises one of hourglass's documented exceptions with a message that says what
came and what to do. Never another exception from deep inside, and never a
silent wrong result such as NaN scores for NaN input.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import sparse
from sklearn.utils._param_validation import InvalidParameterError

from helpers import bounded_properties, mixed_table
from hourglass import Autoencoder, AutoencoderClusterer, AutoencoderOutlierDetector
from hourglass.exceptions import HourglassError, InvalidInputError, NotFittedError

#: A bounded, deterministic budget: the whole file runs in well under a minute.
PROPERTIES = bounded_properties(25)
#: The smallest models that still exercise every code path. Arrays go to the dense family
#: here, which refuses what is not a finite number; the default (arch="auto") gives 2-D
#: arrays to the tabular family, whose properties are tested further down.
TINY: dict[str, Any] = {
    "arch": "dense",
    "latent_dim": 2,
    "hidden_dims": (),
    "epochs": 1,
    "batch_size": 16,
    "num_threads": 1,
    "verbose": 0,
    "random_state": 0,
}
FLOAT32_MAX = float(np.finfo(np.float32).max)
N_FEATURES = 4

pytestmark = pytest.mark.filterwarnings(
    # Fits on a few dozen rows: too few calibration samples for a 1% guarantee.
    "ignore:.*calibration samples cannot guarantee:UserWarning",
    # Arrays given to models fitted on DataFrames (and the reverse), on purpose.
    "ignore:X (has|does not have valid) feature names:UserWarning",
)

Result = TypeVar("Result")


def assert_helpful(error: BaseException) -> None:
    """A documented error whose message is a sentence or more, not a data dump."""
    assert isinstance(error, HourglassError | InvalidParameterError), repr(error)
    message = str(error)
    assert len(message) >= 40, f"too terse to act on: {message!r}"
    assert "Traceback" not in message
    assert "array=[" not in message, f"dumps the data: {message!r}"


def attempt(call: Callable[[], Result]) -> Result | HourglassError:
    """The result of ``call``, or the documented error it raised (checked to be helpful).

    Any other exception propagates and fails the test, with its traceback.
    """
    try:
        return call()
    except (HourglassError, InvalidParameterError) as error:
        assert_helpful(error)
        if isinstance(error, InvalidParameterError):  # only from bad constructor params
            raise AssertionError(f"unexpected parameter error: {error}") from error
        return error


def is_valid_numeric(X: np.ndarray) -> bool:
    """Whether ``X`` is what the numeric estimators document that they accept."""
    return bool(
        X.dtype.kind in "biuf"
        and 2 <= X.ndim <= 4
        and X.shape[0] >= 1
        and all(side >= 1 for side in X.shape[1:])
        and np.isfinite(X).all()
        and np.abs(X.astype(np.float64)).max(initial=0.0) <= FLOAT32_MAX
    )


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def training_data() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(64, N_FEATURES)).astype(np.float32)


@pytest.fixture(scope="module")
def detector(training_data: np.ndarray) -> AutoencoderOutlierDetector:
    """A dense detector with a linear output (the training data are centred)."""
    return AutoencoderOutlierDetector(**TINY).fit(training_data)


@pytest.fixture(scope="module")
def frame_detector(training_data: np.ndarray) -> AutoencoderOutlierDetector:
    """The same kind of detector, fitted on a DataFrame with columns a, b, c, d."""
    frame = pd.DataFrame(training_data, columns=list("abcd"))
    return AutoencoderOutlierDetector(**TINY).fit(frame)


@pytest.fixture(scope="module")
def table_model() -> AutoencoderOutlierDetector:
    return AutoencoderOutlierDetector(**{**TINY, "hidden_dims": (8,), "arch": "tabular"}).fit(
        mixed_table(60, 0)
    )


TEXTS = ["hello world", "the cat sat", "", "Grüße ☃", "zzz", "a\tb", "x" * 300, "ok"] * 3


@pytest.fixture(scope="module")
def text_detector() -> AutoencoderOutlierDetector:
    return AutoencoderOutlierDetector(**{**TINY, "hidden_dims": (8,), "arch": "sequence"}).fit(
        TEXTS
    )


# ------------------------------------------------------------------ strategies

DTYPES = st.sampled_from(
    [
        np.float16,
        np.float32,
        np.float64,
        np.int8,
        np.int64,
        np.uint8,
        np.uint16,
        np.bool_,
        np.complex64,
        np.dtype("datetime64[s]"),
        np.dtype("timedelta64[ms]"),
        np.dtype("U4"),
    ]
)


@st.composite
def any_arrays(draw: st.DrawFn) -> np.ndarray:
    """Arrays of any dtype and 0 to 5 dimensions, NaN, infinity and extremes included."""
    dtype = np.dtype(draw(DTYPES))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=5))
    if dtype.kind == "U":
        elements = st.sampled_from(["1", "-2.5", "nan", "abc", "", "1e9"])
        return draw(hnp.arrays(dtype, shape, elements=elements))
    return draw(hnp.arrays(dtype, shape))


#: Values with magnitudes from 1e-30 to 1e30, both signs, and zero.
MAGNITUDES = st.one_of(
    st.just(0.0),
    st.builds(
        lambda sign, exponent, mantissa: sign * mantissa * 10.0**exponent,
        st.sampled_from([-1.0, 1.0]),
        st.integers(-30, 30),
        st.floats(1.0, 9.99),
    ),
)


@st.composite
def rows_to_score(draw: st.DrawFn, allow_special: bool = True) -> np.ndarray:
    """(n, 4) float64 arrays, n >= 1, with extreme values and maybe NaN or infinity."""
    n = draw(st.integers(1, 6))
    special = [np.nan, np.inf, -np.inf, 1e39, -1e300] if allow_special else []
    elements = st.one_of(MAGNITUDES, st.sampled_from(special)) if special else MAGNITUDES
    return draw(hnp.arrays(np.float64, (n, N_FEATURES), elements=elements))


# ------------------------------------------------------------- numeric arrays


@PROPERTIES
@given(X=any_arrays())
@example(X=np.full((3, 2), np.nan))
@example(X=np.zeros((0, 3)))
@example(X=np.ones((1, 3)))
@example(X=np.arange(6, dtype=np.float64).reshape(2, 3) * 1e300)
@example(X=np.array([[1, 2], [3, 4]], dtype=np.complex128))
def test_fit_on_any_array_works_or_raises_a_documented_error(X: np.ndarray) -> None:
    model = attempt(lambda: Autoencoder(**TINY).fit(X))

    if isinstance(model, HourglassError):
        return
    if not is_valid_numeric(X):
        # Strings of numbers ("1", "-2.5") are numbers too; nothing else may pass.
        assert X.dtype.kind == "U", f"accepted {X.dtype} {X.shape}"
        assert 2 <= X.ndim <= 4, f"accepted {X.dtype} {X.shape}"
    codes = model.transform(X)
    assert codes.shape == (X.shape[0], 2)
    assert np.isfinite(codes).all()


@PROPERTIES
@given(X=any_arrays())
@example(X=np.full((3, 2), np.nan))
@example(X=np.zeros((0, 3)))
@example(X=np.array([[1.0, np.inf], [2.0, 3.0]]))
@example(X=np.array([[1, 2], [3, 4]], dtype=np.complex128))
@example(X=np.array([["1", "abc"], ["2", "abc"]]))
def test_the_default_on_any_array_works_or_raises_a_documented_error(X: np.ndarray) -> None:
    """arch="auto": 2-D arrays become tables (NaN = missing), images the dense model."""
    model = attempt(lambda: Autoencoder(**{**TINY, "arch": "auto"}).fit(X))

    if isinstance(model, HourglassError):
        return
    assert X.ndim in (2, 3, 4), f"accepted {X.dtype} {X.shape}"
    assert X.dtype.kind not in "cmM", f"accepted {X.dtype}"
    values = X.astype(np.float64) if X.dtype.kind != "U" else None
    if values is not None:
        assert not np.isinf(values).any(), "accepted infinity"
    if model.arch_ != "tabular":  # images: finite numbers only
        assert values is not None
        assert np.isfinite(values).all()
    codes = model.transform(X)
    assert codes.shape == (X.shape[0], 2)
    assert np.isfinite(codes).all()
    assert np.isfinite(model.reconstruction_error(X)).all()


@PROPERTIES
@given(X=rows_to_score())
@example(X=np.full((2, N_FEATURES), np.nan))
@example(X=np.array([[1e39, 0.0, 0.0, 0.0]]))
def test_scores_are_finite_or_the_input_is_rejected(
    detector: AutoencoderOutlierDetector, X: np.ndarray
) -> None:
    scores = attempt(lambda: detector.score_samples(X))

    if not is_valid_numeric(X):
        # NaN in, NaN out would be a silent wrong result: it must be refused, and say why.
        assert isinstance(scores, InvalidInputError)
        assert any(word in str(scores) for word in ("NaN", "infinity", "float32"))
        return
    assert not isinstance(scores, HourglassError), scores
    assert scores.shape == (X.shape[0],)
    assert np.isfinite(scores).all()
    assert set(detector.predict(X)) <= {-1, 1}
    p_values = detector.p_values(X)
    assert ((p_values > 0) & (p_values <= 1)).all()


@PROPERTIES
@given(X=rows_to_score(allow_special=False))
def test_every_error_metric_is_finite_for_huge_and_tiny_values(
    detector: AutoencoderOutlierDetector, X: np.ndarray
) -> None:
    for metric in ("mae", "mse"):
        errors = detector.reconstruction_error(X, metric=metric)
        assert errors.shape == (X.shape[0],)
        assert np.isfinite(errors).all(), (metric, X, errors)
    assert np.isfinite(detector.transform(X)).all()
    assert np.isfinite(detector.reconstruct(X)).all()


@PROPERTIES
@given(
    X=hnp.arrays(
        np.float16,
        st.tuples(st.integers(1, 5), st.just(N_FEATURES)),
        elements=st.floats(width=16, allow_nan=False, allow_infinity=False),
    )
)
def test_float16_float64_int_and_torch_input_score_like_float32(
    detector: AutoencoderOutlierDetector, X: np.ndarray
) -> None:
    expected = detector.score_samples(X.astype(np.float32))

    np.testing.assert_array_equal(detector.score_samples(X), expected)
    np.testing.assert_array_equal(detector.score_samples(X.astype(np.float64)), expected)
    np.testing.assert_array_equal(detector.score_samples(torch.from_numpy(X)), expected)
    as_bfloat16 = torch.from_numpy(X.astype(np.float32)).to(torch.bfloat16)
    np.testing.assert_array_equal(
        detector.score_samples(as_bfloat16),
        detector.score_samples(as_bfloat16.float().numpy()),
    )
    integers = np.clip(np.nan_to_num(X), -1000, 1000).astype(np.int64)
    np.testing.assert_array_equal(
        detector.score_samples(integers), detector.score_samples(integers.astype(np.float32))
    )


@PROPERTIES
@given(
    constant_columns=st.sets(st.integers(0, N_FEATURES - 1), min_size=1),
    value=st.one_of(MAGNITUDES, st.just(1e-45)),
    n=st.sampled_from([2, 3, 20]),
)
def test_constant_columns_and_few_rows_fit_and_score(
    constant_columns: set[int], value: float, n: int
) -> None:
    X = np.random.default_rng(1).normal(size=(n, N_FEATURES))
    X[:, sorted(constant_columns)] = value

    detector = attempt(lambda: AutoencoderOutlierDetector(**TINY).fit(X))

    if isinstance(detector, HourglassError):
        # Values so large that squared errors overflow float32 stop training, with advice.
        assert abs(value) > 1e15, detector
        assert "scale" in str(detector)
        return
    assert np.isfinite(detector.threshold_)
    scores = detector.score_samples(X)
    assert scores.shape == (n,)
    assert np.isfinite(scores).all()


@pytest.mark.parametrize("n", [1, 2])
def test_one_and_two_rows(n: int) -> None:
    X = np.random.default_rng(2).random((n, 3))

    codes = Autoencoder(**TINY).fit(X).transform(X)
    assert codes.shape == (n, 2)
    assert np.isfinite(codes).all()

    detector = attempt(lambda: AutoencoderOutlierDetector(**TINY).fit(X))
    if n == 1:  # one row cannot be split into training and calibration rows
        assert isinstance(detector, InvalidInputError)
        assert "calibration" in str(detector)

    clusters = attempt(
        lambda: AutoencoderClusterer(n_clusters=3, autoencoder=Autoencoder(**TINY)).fit(X)
    )
    assert isinstance(clusters, InvalidInputError)
    assert "n_clusters=3" in str(clusters)


# ------------------------------------------------------------------ containers

NOT_ARRAYS: list[Any] = [
    None,
    "1,2,3",
    b"\x00\x01",
    3.5,
    {"a": [1.0, 2.0]},
    {1.0, 2.0},
    [],
    [[]],
    [[1.0, 2.0], [3.0]],
    [["a", "b"], ["c", "d"]],
    [[1.0, {"x": 1}]],
    [[1.0, None]],
    ["some", "texts"],
    [b"some", b"bytes"],
    np.zeros(N_FEATURES),
    np.zeros((2, 1, 1, 1, N_FEATURES)),
    np.zeros((2, N_FEATURES), dtype=[("a", "f4")]),
    np.array([[10**40, 1, 2, 3]], dtype=object),
    sparse.csr_matrix(np.eye(N_FEATURES)),
    pd.Series([1.0, 2.0, 3.0, 4.0]),
    torch.zeros(2, N_FEATURES, dtype=torch.complex64),
]


@pytest.mark.parametrize("X", NOT_ARRAYS, ids=lambda x: type(x).__name__)
@pytest.mark.parametrize(
    "method", ["fit", "transform", "score_samples", "predict", "reconstruct", "p_values"]
)
def test_things_that_are_not_numeric_arrays_are_refused_clearly(
    detector: AutoencoderOutlierDetector, X: Any, method: str
) -> None:
    if method == "fit":
        call = lambda: AutoencoderOutlierDetector(**TINY).fit(X)  # noqa: E731
    else:
        call = lambda: getattr(detector, method)(X)  # noqa: E731

    assert isinstance(attempt(call), InvalidInputError)


def test_messages_for_common_mistakes_say_what_to_do(detector: AutoencoderOutlierDetector) -> None:
    cases = {
        "X.reshape(1, -1)": np.zeros(N_FEATURES),
        "toarray": sparse.csr_matrix(np.eye(N_FEATURES)),
        "X.real": np.zeros((2, N_FEATURES), dtype=np.complex128),
        "StandardScaler": np.full((2, N_FEATURES), 1e300),
        "SimpleImputer": np.full((2, N_FEATURES), np.nan),
        "arch='auto'": ["some", "texts"],
        "equally long rows": [[1.0, 2.0], [3.0]],
        "OneHotEncoder": np.array([["a", "b", "c", "d"]]),
    }
    for advice, X in cases.items():
        with pytest.raises(InvalidInputError, match=advice.replace("(", r"\(").replace(")", r"\)")):
            detector.score_samples(X)
        with pytest.raises(InvalidInputError):
            Autoencoder(**TINY).fit(X)


@pytest.mark.parametrize(
    ("estimator", "method"),
    [
        (estimator, method)
        for estimator in (Autoencoder(**TINY), AutoencoderOutlierDetector(**TINY))
        for method in ("transform", "reconstruct", "reconstruction_error")
    ]
    + [(AutoencoderOutlierDetector(**TINY), m) for m in ("score_samples", "predict", "p_values")]
    + [(AutoencoderClusterer(), m) for m in ("transform", "predict")],
    ids=lambda value: value if isinstance(value, str) else type(value).__name__,
)
def test_methods_before_fit_raise_not_fitted(estimator: Any, method: str) -> None:
    with pytest.raises(NotFittedError, match="not fitted yet"):
        getattr(estimator, method)(np.zeros((2, N_FEATURES)))


@PROPERTIES
@given(k=st.integers(-3, 12), n_queries=st.integers(1, 3))
@example(k=0, n_queries=1)
def test_nearest_returns_k_neighbours_or_refuses_k(
    detector: AutoencoderOutlierDetector, training_data: np.ndarray, k: int, n_queries: int
) -> None:
    reference = training_data[:7]

    if k < 1:  # a bad argument, whatever the data: a parameter error
        with pytest.raises(InvalidParameterError, match="positive") as refused:
            detector.nearest(training_data[:n_queries], k, index=reference)
        assert_helpful(refused.value)
        return
    found = attempt(lambda: detector.nearest(training_data[:n_queries], k, index=reference))
    assert not isinstance(found, HourglassError)
    indices, similarities = found
    assert indices.shape == similarities.shape == (n_queries, min(k, len(reference)))
    assert ((indices >= 0) & (indices < len(reference))).all()
    assert np.isfinite(similarities).all()


#: BaseAutoencoder.sample and .negative_elbo pass their counts and seeds straight to torch.


@pytest.fixture(scope="module")
def vae(training_data: np.ndarray) -> Autoencoder:
    return Autoencoder(**{**TINY, "hidden_dims": (8,), "arch": "vae"}).fit(training_data)


def test_vae_sampling_and_elbo_with_valid_arguments(vae: Autoencoder) -> None:
    assert vae.sample(0).shape == (0, N_FEATURES)
    assert np.isfinite(vae.sample(3, random_state=1)).all()
    assert np.isfinite(vae.negative_elbo(np.zeros((2, N_FEATURES)), n_samples=2)).all()


@pytest.mark.parametrize(
    "call",
    [
        lambda model: model.sample(-1),
        lambda model: model.sample(2.5),
        lambda model: model.sample(2, random_state="seed"),
        lambda model: model.negative_elbo(np.zeros((2, N_FEATURES)), n_samples=-1),
        lambda model: model.negative_elbo(np.zeros((2, N_FEATURES)), n_samples=1.5),
    ],
    ids=["n=-1", "n=2.5", "random_state='seed'", "n_samples=-1", "n_samples=1.5"],
)
def test_vae_sampling_and_elbo_refuse_bad_counts_and_seeds(
    vae: Autoencoder, call: Callable[[Autoencoder], Any]
) -> None:
    with pytest.raises(InvalidParameterError):  # bad arguments, not bad data
        call(vae)


# ------------------------------------------------------------------ DataFrames

COLUMN_NAMES = st.lists(st.sampled_from(list("abcdxz")), min_size=1, max_size=6, unique=True)


@PROPERTIES
@given(columns=st.one_of(COLUMN_NAMES, st.permutations(list("abcd"))))
@example(columns=list("abcd"))
@example(columns=list("dcba"))
def test_dataframe_columns_must_be_those_of_fit_in_order(
    frame_detector: AutoencoderOutlierDetector, training_data: np.ndarray, columns: list[str]
) -> None:
    frame = pd.DataFrame(
        np.resize(training_data[:5], (5, len(columns))).astype(np.float32), columns=columns
    )

    scores = attempt(lambda: frame_detector.score_samples(frame))

    if columns == list("abcd"):
        assert not isinstance(scores, HourglassError)
        np.testing.assert_array_equal(scores, frame_detector.score_samples(frame.to_numpy()))
        return
    # Scoring columns under the wrong names would be a silent wrong result.
    assert isinstance(scores, InvalidInputError)
    assert "feature names" in str(scores) or "features" in str(scores)
    if sorted(columns) == list("abcd"):
        assert "same order" in str(scores)
        assert "feature_names_in_" in str(scores)


@pytest.mark.parametrize(
    ("columns", "message"),
    [(["a", "a", "b", "c"], "unique column names"), (["a", 1, "c", "d"], "all strings")],
)
def test_duplicate_and_mixed_type_column_names_are_refused(
    frame_detector: AutoencoderOutlierDetector, columns: list[Any], message: str
) -> None:
    frame = pd.DataFrame(np.zeros((2, 4)), columns=columns)

    with pytest.raises(InvalidInputError, match=message):
        frame_detector.score_samples(frame)
    with pytest.raises(InvalidInputError, match=message):
        Autoencoder(**TINY).fit(frame)


def test_a_complex_column_is_refused_not_truncated() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0], "z": np.array([1 + 2j, 3 - 1j])})

    with pytest.raises(InvalidInputError, match=r"'z' are not numeric"):
        Autoencoder(**TINY).fit(frame)
    with pytest.raises(InvalidInputError, match=r"complex"):
        Autoencoder(**{**TINY, "arch": "tabular"}).fit(frame)


# ----------------------------------------------------------------- mixed tables

TABLE_COLUMNS = ["age", "income", "city", "owner"]
NUMERIC_VALUES = st.one_of(
    MAGNITUDES, st.sampled_from([np.nan, np.inf, -np.inf, 1e300, -1e200]), st.none()
)
CATEGORIES = st.one_of(
    st.sampled_from(["north", "south", "centre"]),
    st.text(max_size=5),
    st.none(),
    st.integers(),
    st.floats(),
)


@st.composite
def tables(draw: st.DrawFn) -> pd.DataFrame:
    """Tables shaped like the training table: columns dropped, shuffled or added; odd values."""
    n = draw(st.integers(0, 5))
    columns = draw(st.lists(st.sampled_from([*TABLE_COLUMNS, "extra"]), unique=True, max_size=5))
    data: dict[str, list[Any]] = {}
    for column in columns:
        if column in ("age", "income"):
            data[column] = draw(st.lists(NUMERIC_VALUES, min_size=n, max_size=n))
        elif column == "owner":
            data[column] = draw(st.lists(st.booleans(), min_size=n, max_size=n))
        else:
            data[column] = draw(st.lists(CATEGORIES, min_size=n, max_size=n))
    return pd.DataFrame(data, columns=columns, index=range(n))


@PROPERTIES
@given(frame=tables())
@example(frame=mixed_table(3, 1)[["city", "owner", "age", "income"]].assign(city="mars"))
@example(frame=mixed_table(3, 1).assign(age=np.inf))
@example(frame=mixed_table(3, 1).iloc[:0])
def test_tables_with_odd_columns_and_values(
    table_model: AutoencoderOutlierDetector, frame: pd.DataFrame
) -> None:
    scores = attempt(lambda: table_model.score_samples(frame))

    missing = [c for c in TABLE_COLUMNS if c not in frame.columns]
    numbers = frame[[c for c in ("age", "income") if c in frame.columns]]
    numbers = numbers.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    if missing or len(frame) == 0 or np.isinf(numbers).any():
        assert isinstance(scores, InvalidInputError), frame
        if missing and len(frame) > 0:
            assert all(repr(c) in str(scores) for c in missing)
        return
    if isinstance(scores, HourglassError):
        # Only values absurdly far from the training data (1e30 interquartile ranges).
        assert np.nanmax(np.abs(numbers)) > 1e29, scores
        assert "too far" in str(scores)
        return
    assert scores.shape == (len(frame),)
    assert np.isfinite(scores).all()
    # Columns are found by name: their order and extra columns change nothing.
    np.testing.assert_array_equal(scores, table_model.score_samples(frame[TABLE_COLUMNS]))
    assert table_model.explain(frame).shape == (len(frame), len(TABLE_COLUMNS))


@PROPERTIES
@given(
    n=st.integers(1, 12),
    number=st.one_of(MAGNITUDES, st.just(np.nan)),
    category=st.one_of(st.text(max_size=3), st.none()),
)
def test_tables_with_constant_or_empty_columns_fit_and_score(
    n: int, number: float, category: str | None
) -> None:
    frame = mixed_table(n, 2).assign(constant=number, label=category)

    model = Autoencoder(**{**TINY, "arch": "tabular"}).fit(frame)

    scores = model.reconstruction_error(frame)
    assert scores.shape == (n,)
    assert np.isfinite(scores).all()
    assert np.isfinite(model.transform(frame)).all()


def test_a_detector_on_a_mixed_table_is_a_table_model() -> None:
    # Not a dense network on the packed encoding, which then cannot score the table.
    table = mixed_table(30, 3)

    detector = AutoencoderOutlierDetector(**{**TINY, "arch": "auto"}).fit(table)

    assert (detector.arch_, detector.output_activation_, detector.loss_) == (
        "tabular",
        "mixed",
        "mixed",
    )
    assert np.isfinite(detector.score_samples(table)).all()
    with pytest.raises(InvalidInputError, match="noise= does not apply to arch='tabular'"):
        AutoencoderOutlierDetector(**{**TINY, "arch": "tabular"}, noise="gaussian").fit(table)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (mixed_table(3, 0).iloc[:0], "at least one row"),
        (mixed_table(3, 0).set_axis(["age", "age", "city", "owner"], axis=1), "unique"),
        (mixed_table(4, 0).assign(city=[1 + 1j] * 4), "complex"),
    ],
    ids=["no rows", "duplicate columns", "complex column"],
)
def test_unusable_training_tables_are_refused(frame: pd.DataFrame, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        Autoencoder(**{**TINY, "arch": "tabular"}).fit(frame)


# ------------------------------------------------------------------------ texts

NASTY_TEXTS = st.sampled_from(
    ["", " ", "\x00", "\udcff lone surrogate", "\ufeffBOM", "a\x0cb\u2028c", "é" * 200, "\n"]
)
TEXT_ITEMS = st.one_of(st.text(max_size=20), NASTY_TEXTS)
NOT_TEXT_ITEMS = st.one_of(st.none(), st.binary(max_size=4), st.integers(), st.floats())


@PROPERTIES
@given(
    items=st.lists(st.one_of(TEXT_ITEMS, TEXT_ITEMS, NOT_TEXT_ITEMS), max_size=6),
    as_array=st.booleans(),
)
@example(items=["", ""], as_array=False)
@example(items=[b"\xff\xfe"], as_array=False)
def test_texts_of_any_content(
    text_detector: AutoencoderOutlierDetector, items: list[Any], as_array: bool
) -> None:
    texts: Any = np.array(items, dtype=object) if as_array else items

    scores = attempt(lambda: text_detector.score_samples(texts))

    if not items or not all(isinstance(item, str) for item in items):
        assert isinstance(scores, InvalidInputError)
        return
    assert not isinstance(scores, HourglassError), scores
    assert scores.shape == (len(items),)
    assert np.isfinite(scores).all()
    reconstructions = text_detector.reconstruct(texts)
    assert len(reconstructions) == len(items)
    assert all(isinstance(text, str) for text in reconstructions)


@pytest.mark.parametrize(
    "texts",
    [
        pd.DataFrame({"text": ["a", "b"]}),  # iterating it would give its column names
        {"a": 1, "b": 2},  # its keys
        {"a", "b"},  # no order to match scores to
        np.array([["a", "b"], ["c", "d"]]),
        "just one text",
        42,
    ],
    ids=["DataFrame", "dict", "set", "2-D array", "str", "int"],
)
def test_containers_that_are_not_lists_of_texts_are_refused(
    text_detector: AutoencoderOutlierDetector, texts: Any
) -> None:
    assert isinstance(attempt(lambda: text_detector.score_samples(texts)), InvalidInputError)


def test_numeric_models_refuse_texts_and_text_models_refuse_numbers(
    detector: AutoencoderOutlierDetector, text_detector: AutoencoderOutlierDetector
) -> None:
    with pytest.raises(InvalidInputError, match="got texts"):
        detector.score_samples(["a", "b"])
    with pytest.raises(InvalidInputError, match="needs strings"):
        text_detector.score_samples(np.zeros(3))
    with pytest.raises(InvalidInputError, match=r"decode"):
        Autoencoder(**{**TINY, "arch": "sequence"}).fit([b"bytes", b"more"])


def test_images_of_another_shape_with_as_many_pixels_are_refused() -> None:
    images = np.random.default_rng(0).random((40, 4, 4), dtype=np.float32)
    model = Autoencoder(arch="conv", latent_dim=2, epochs=1, verbose=0, random_state=0)
    model.fit(images)
    assert model.transform(images.reshape(40, 16)).shape == (40, 2)  # flat rows are fine
    assert model.transform(images[:, np.newaxis]).shape == (40, 2)  # so is a channel axis
    with pytest.raises(InvalidInputError, match=r"samples of shape \(2, 8\).*\(4, 4\)"):
        model.transform(images.reshape(40, 2, 8))
