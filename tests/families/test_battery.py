"""One battery over every registered family: adding a family to the registry adds it here.

Each family is given the first kind of example data it accepts (images, a mixed
table or texts), and checked for shapes, seed determinism, bit-identical save and
load, bad input, streams (where it trains from them) and capability errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from helpers import bar_images, mixed_table
from hourglass import Autoencoder
from hourglass.data.stream import Stream
from hourglass.exceptions import InvalidInputError
from hourglass.families import FAMILIES, Family, UnsupportedByFamilyError

FAST: dict[str, Any] = {"epochs": 1, "batch_size": 32, "latent_dim": 4, "verbose": 0}


def _texts(n: int) -> list[str]:
    words = ["red apples", "green pears", "blue skies", "grey clouds", "old books"]
    return [f"{words[i % 5]} and {words[(3 * i + 1) % 5]}" for i in range(n)]


EXAMPLES: dict[str, Any] = {
    "images": bar_images(96, 0),
    "table": mixed_table(96, 0),
    "texts": _texts(96),
}


def _accepts(family: Family, data: Any) -> bool:
    try:
        family.prepare_training(Autoencoder(arch=family.name, **FAST), data)
    except InvalidInputError:
        return False
    return True


def _example(family: Family) -> tuple[str, Any]:
    """The first kind of example data ``family`` trains on."""
    for kind, data in EXAMPLES.items():
        if _accepts(family, data):
            return kind, data
    raise AssertionError(f"family {family.name!r} accepts none of the example data")


def _fit(name: str, X: Any, seed: int = 0) -> Autoencoder:
    return Autoencoder(arch=name, random_state=seed, **FAST).fit(X)


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def fitted(request: pytest.FixtureRequest) -> tuple[Family, Any, Autoencoder]:
    family = FAMILIES[request.param]
    _, X = _example(family)
    return family, X, _fit(family.name, X)


def test_outputs_have_the_documented_shapes(fitted: tuple[Family, Any, Autoencoder]) -> None:
    family, X, model = fitted
    assert model.arch_ == family.name
    assert model.family_ is family
    assert model.transform(X).shape == (len(X), 4)
    assert model.transform(X).dtype == np.float32
    assert model.reconstruction_error(X).shape == (len(X),)
    assert len(model.reconstruct(X)) == len(X)
    assert family.input_kind(model.input_shape_) in ("images", "vectors", "table", "texts")


def test_the_same_seed_gives_the_same_weights(fitted: tuple[Family, Any, Autoencoder]) -> None:
    family, X, model = fitted
    again = _fit(family.name, X)
    for (name, a), (_, b) in zip(
        model.module_.state_dict().items(), again.module_.state_dict().items(), strict=True
    ):
        assert a.equal(b), name
    np.testing.assert_array_equal(again.reconstruction_error(X), model.reconstruction_error(X))


def test_save_then_load_scores_bit_for_bit(
    fitted: tuple[Family, Any, Autoencoder], tmp_path: Path
) -> None:
    _, X, model = fitted
    loaded = Autoencoder.load(model.save(tmp_path / "model"))
    assert loaded.family_ is model.family_
    np.testing.assert_array_equal(loaded.reconstruction_error(X), model.reconstruction_error(X))
    np.testing.assert_array_equal(loaded.transform(X), model.transform(X))


def test_data_of_another_kind_is_a_clear_error(fitted: tuple[Family, Any, Autoencoder]) -> None:
    family = fitted[0]
    refused = [data for data in EXAMPLES.values() if not _accepts(family, data)]
    assert refused  # every family refuses some kind of data
    for data in refused:
        with pytest.raises(InvalidInputError, match=rf"{family.name}|needs|expect"):
            Autoencoder(arch=family.name, **FAST).fit(data)


def test_streams_train_where_the_family_supports_them(
    fitted: tuple[Family, Any, Autoencoder], tmp_path: Path
) -> None:
    family, X, _ = fitted
    kind, _ = _example(family)
    if kind == "table":
        path = tmp_path / "rows.csv"
        X.to_csv(path, index=False)
    elif kind == "images":
        path = tmp_path / "images.npy"
        np.save(path, X)
    else:
        path = tmp_path / "texts.txt"
        path.write_text("\n".join(X) + "\n", encoding="utf-8")
    stream = Stream.open(path)
    if not family.trains_from_streams:
        with pytest.raises(InvalidInputError, match="stream"):
            Autoencoder(arch=family.name, **FAST).fit(stream)
        return
    streamed = Autoencoder(arch=family.name, random_state=0, **FAST).fit(stream)
    assert streamed.arch_ == family.name
    assert np.isfinite(streamed.reconstruction_error(stream)).all()


def test_family_only_methods_raise_one_capability_error(
    fitted: tuple[Family, Any, Autoencoder],
) -> None:
    family, X, model = fitted
    calls = {
        "explain": (family.explains, lambda: model.explain(X)),
        "sample": (family.samples, lambda: model.sample(3, random_state=0)),
        "negative_elbo": (family.samples, lambda: model.negative_elbo(X)),
    }
    for method, (supported, call) in calls.items():
        if supported:
            assert len(call()) in (3, len(X))
        else:
            with pytest.raises(UnsupportedByFamilyError, match=f"{method} needs"):
                call()
