"""Every public class documents each of its parameters; estimators, their fitted attributes.

The docstrings are read as numpydoc reads them (the documentation build renders them
the same way), and the attributes are those ``fit`` actually sets on several kinds of
data, so a new parameter or fitted attribute cannot go undocumented.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import numpy as np
import pandas as pd
import pytest
from numpydoc import docscrape  # in the dev extra: the docs build reads docstrings the same way

from hourglass import Autoencoder, AutoencoderClusterer, AutoencoderOutlierDetector

ESTIMATORS = (Autoencoder, AutoencoderOutlierDetector, AutoencoderClusterer)
#: The modules of the API reference (docs/api/), whose ``__all__`` is public.
PUBLIC_MODULES = (
    "hourglass",
    "hourglass.clustering",
    "hourglass.complexity",
    "hourglass.dask",
    "hourglass.data",
    "hourglass.datasets",
    "hourglass.distributed",
    "hourglass.estimators",
    "hourglass.exceptions",
    "hourglass.export",
    "hourglass.image_metrics",
    "hourglass.neighbors",
    "hourglass.projection",
    "hourglass.report",
    "hourglass.scoring",
    "hourglass.serve",
    "hourglass.tabular",
)


def _public_classes() -> list[type]:
    classes: dict[str, type] = {}
    for name in PUBLIC_MODULES:
        module = importlib.import_module(name)
        for public in module.__all__:
            value = getattr(module, public)
            if inspect.isclass(value) and not issubclass(value, BaseException):
                classes[f"{value.__module__}.{value.__qualname__}"] = value
    return [classes[key] for key in sorted(classes)]


def _documented(cls: type, section: str) -> set[str]:
    names: set[str] = set()
    for entry in docscrape.ClassDoc(cls)[section]:
        names.update(name.strip() for name in entry.name.split(","))
    return names


def _fitted_attributes(estimator: Any) -> set[str]:
    return {name for name in vars(estimator) if name.endswith("_") and not name.startswith("_")}


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda cls: cls.__name__)
def test_every_parameter_is_documented(cls: type) -> None:
    parameters = set(inspect.signature(cls.__init__).parameters) - {"self"}
    documented = _documented(cls, "Parameters")
    assert parameters - documented == set(), "parameters missing from the docstring"
    assert documented - parameters == set(), "the docstring names parameters that do not exist"


@pytest.mark.parametrize("cls", _public_classes(), ids=lambda cls: cls.__qualname__)
def test_every_public_class_documents_its_constructor(cls: type) -> None:
    try:
        signature = inspect.signature(cls.__init__)
    except (TypeError, ValueError):  # a C-level constructor: nothing of ours to document
        return
    parameters = set(signature.parameters) - {"self", "args", "kwargs"}
    documented = _documented(cls, "Parameters") | _documented(cls, "Attributes")
    assert parameters - documented == set(), f"{cls.__qualname__} leaves parameters undocumented"


def _training_data() -> dict[str, tuple[Any, dict[str, Any]]]:
    rng = np.random.default_rng(0)
    table = pd.DataFrame(
        {"amount": rng.normal(size=160), "city": rng.choice(["north", "south"], size=160)}
    )
    images = (rng.random((96, 8, 8)) * 255).astype(np.uint8)
    texts = [f"sentence number {i}" for i in range(48)]
    return {
        "table": (table, {}),
        "images": (images, {}),
        "vae": (images, {"arch": "vae"}),
        "texts": (texts, {}),
    }


@pytest.mark.parametrize("cls", [Autoencoder, AutoencoderOutlierDetector], ids=lambda c: c.__name__)
@pytest.mark.parametrize("kind", ["table", "images", "vae", "texts"])
def test_every_fitted_attribute_is_documented(cls: type, kind: str) -> None:
    X, params = _training_data()[kind]
    estimator = cls(epochs=1, verbose=0, random_state=0, **params).fit(X)
    estimator.set_index(X)
    missing = _fitted_attributes(estimator) - _documented(cls, "Attributes")
    assert missing == set(), f"fitted attributes missing from the docstring of {cls.__name__}"


def test_every_fitted_attribute_of_the_clusterer_is_documented() -> None:
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(c, 0.05, (40, 4)) for c in (0.2, 0.8)])
    clusterer = AutoencoderClusterer(n_clusters=2, random_state=0).fit(X)
    missing = _fitted_attributes(clusterer) - _documented(AutoencoderClusterer, "Attributes")
    assert missing == set()
