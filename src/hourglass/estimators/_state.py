"""An estimator's fitted state as a model file: what is saved, and checked on loading.

A model file is untrusted input: anything ``fit`` cannot have produced (a wrong
type, a size that disagrees with another) raises ``ValueError``, which
``load`` reports as a :class:`~hourglass.exceptions.ModelFileError`.
"""

from __future__ import annotations

import math
import os
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import torch
from numpy.typing import NDArray

from hourglass import persistence
from hourglass._version import __version__
from hourglass.estimators._fitting import build_module
from hourglass.estimators._params import resolve_device
from hourglass.exceptions import InvalidInputError, ModelFileError
from hourglass.families import ARCHITECTURES, FAMILY_BEFORE_ARCH_WAS_SAVED, get_family

if TYPE_CHECKING:
    from hourglass.estimators._base import BaseAutoencoder

__all__ = [
    "check_model_class",
    "estimator_contents",
    "estimator_from_file",
    "fitted_state",
    "load_estimator",
    "restore_fitted_state",
    "save_estimator",
]

Estimator = TypeVar("Estimator", bound="BaseAutoencoder")

#: What models saved before a parameter existed were trained with (``trim``: untrimmed).
PARAMETERS_BEFORE_THEY_EXISTED: dict[str, Any] = {"trim": 0.0}


def fitted_state(estimator: BaseAutoencoder) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
    """Fitted attributes split into JSON-able values and arrays."""
    state: dict[str, Any] = {
        "arch_": estimator.arch_,
        "input_shape_": list(estimator.input_shape_),
        "n_features_in_": estimator.n_features_in_,
        "scales_uint8_": estimator.scales_uint8_,
        "output_activation_": estimator.output_activation_,
        "loss_": estimator.loss_,
        "history_": estimator.history_,
        "n_epochs_": estimator.n_epochs_,
        "best_epoch_": estimator.best_epoch_,
        "fit_time_": estimator.fit_time_,
    }
    if hasattr(estimator, "feature_names_in_"):
        state["feature_names_in_"] = [str(n) for n in estimator.feature_names_in_]
    arrays: dict[str, NDArray[Any]] = {
        "data_min_": estimator.data_min_,
        "data_max_": estimator.data_max_,
    }
    own_state, own_arrays = estimator.family_.fitted_state(estimator)
    state.update(own_state)
    arrays.update(own_arrays)
    if hasattr(estimator, "reference_codes_"):
        arrays["reference_codes_"] = np.ascontiguousarray(estimator.reference_codes_)
    return state, arrays


def restore_fitted_state(
    estimator: BaseAutoencoder, state: dict[str, Any], arrays: dict[str, NDArray[Any]]
) -> None:
    """Set the fitted attributes saved by :func:`fitted_state`, checking each."""
    shape = state["input_shape_"]
    if not isinstance(shape, list) or not 1 <= len(shape) <= 3:
        raise ValueError(
            f"input_shape_ must list 1 to 3 sizes; got {persistence.short_repr(shape)}"
        )
    estimator.input_shape_ = tuple(persistence.check_int(s, "input_shape_", low=1) for s in shape)
    # Models saved before arch_ existed were dense or used their arch parameter.
    default = FAMILY_BEFORE_ARCH_WAS_SAVED if estimator.arch == "auto" else estimator.arch
    arch = state.get("arch_", default)
    estimator.arch_ = persistence.check_choice(arch, "arch_", ARCHITECTURES)
    family = get_family(estimator.arch_)
    n_features = math.prod(estimator.input_shape_)
    low, high = family.n_features_in_bounds(estimator.input_shape_)
    estimator.n_features_in_ = persistence.check_int(
        state["n_features_in_"], "n_features_in_", low=low, high=high
    )
    estimator.scales_uint8_ = persistence.check_bool(state["scales_uint8_"], "scales_uint8_")
    estimator.output_activation_ = persistence.check_choice(
        state["output_activation_"], "output_activation_", family.saved_outputs
    )
    estimator.loss_ = persistence.check_choice(state["loss_"], "loss_", family.saved_losses)
    if estimator.loss_ == "bce" and estimator.output_activation_ != "sigmoid":
        raise ValueError("loss_='bce' needs output_activation_='sigmoid'")
    _restore_history(estimator, state)
    if "feature_names_in_" in state:
        names = state["feature_names_in_"]
        if (
            not isinstance(names, list)
            or not all(isinstance(name, str) for name in names)
            or len(names) != estimator.n_features_in_
        ):
            raise ValueError(f"feature_names_in_ must list {estimator.n_features_in_} column names")
        estimator.feature_names_in_ = np.asarray(names, dtype=object)
    estimator._legacy_table = False
    family.restore_fitted_state(estimator, state, arrays)
    if "reference_codes_" in arrays:
        codes = persistence.check_array(arrays, "reference_codes_", (None, estimator.latent_dim))
        if codes.shape[0] == 0:
            raise ValueError("the fitted array reference_codes_ is empty")
        estimator.reference_codes_ = codes.astype(np.float32)
    for name in ("data_min_", "data_max_"):
        values = persistence.check_array(arrays, name, (n_features,)).astype(np.float32)
        setattr(estimator, name, values)


def _restore_history(estimator: BaseAutoencoder, state: dict[str, Any]) -> None:
    history = state["history_"]
    if not isinstance(history, dict) or not all(isinstance(v, list) for v in history.values()):
        raise ValueError("history_ must map metric names to lists of numbers")
    estimator.history_ = {
        str(k): [persistence.check_real(v, f"history_[{k!r}]") for v in values]
        for k, values in history.items()
    }
    estimator.n_epochs_ = persistence.check_int(state["n_epochs_"], "n_epochs_")
    best = state["best_epoch_"]
    estimator.best_epoch_ = None if best is None else persistence.check_int(best, "best_epoch_")
    estimator.fit_time_ = persistence.check_real(state["fit_time_"], "fit_time_")


def estimator_contents(
    estimator: BaseAutoencoder,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, torch.Tensor]]:
    """A fitted estimator's parameters, fitted state and tensors, as a model file holds them."""
    estimator._check_fitted()
    state, arrays = estimator._fitted_state()
    module = estimator.module_
    tensors = {f"module.{k}": v.detach().cpu() for k, v in module.state_dict().items()}
    tensors.update(
        {f"state.{k}": torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
    )
    return persistence.json_params(estimator.get_params(deep=False)), state, tensors


def save_estimator(estimator: BaseAutoencoder, path: str | os.PathLike[str]) -> Path:
    """Write ``config.json`` and ``model.safetensors`` for a fitted estimator (atomically)."""
    params, state, tensors = estimator_contents(estimator)
    return persistence.write_model_dir(
        path, class_name=type(estimator).__name__, params=params, state=state, tensors=tensors
    )


def _load_params(path: str | os.PathLike[str], saved: dict[str, Any], device: str | None) -> Any:
    """The saved parameters, completed for older files, with ``device`` overridden."""
    params = dict(saved)
    # Parameters added after a model was saved take the value it was trained with.
    for name, value in PARAMETERS_BEFORE_THEY_EXISTED.items():
        params.setdefault(name, value)
    if device is not None:
        params["device"] = device
    if not isinstance(params.get("device", "auto"), str):
        raise ModelFileError(f"{path} has an invalid 'device' parameter; re-save the model.")
    return params


def _load_device(path: str | os.PathLike[str], params: dict[str, Any]) -> torch.device:
    # A device this machine lacks is the caller's to fix (pass device="cpu"), not a
    # damaged file.
    device_ = resolve_device(params.get("device", "auto"))
    if device_.type not in ("cpu", "cuda") or (
        device_.type == "cuda" and (device_.index or 0) >= torch.cuda.device_count()
    ):
        raise InvalidInputError(
            f"Cannot load the model in {path} on device {str(device_)!r}; pass "
            "device='cpu' (or 'cuda' on a machine with a GPU) to load()."
        )
    return device_


def load_estimator(
    cls: type[Estimator], path: str | os.PathLike[str], device: str | None
) -> Estimator:
    """An estimator of class ``cls`` read from the model directory ``path``."""
    return estimator_from_file(cls, persistence.read_model_dir(path), path, device)


def check_model_class(
    model: persistence.ModelFile, cls: type, path: str | os.PathLike[str]
) -> None:
    """Refuse a model file that holds another class than ``cls`` (ModelFileError)."""
    if model.class_name != cls.__name__:
        raise ModelFileError(
            f"{path} holds a model of class {model.class_name}, not {cls.__name__}; load "
            "it with hourglass.load()."
        )


def estimator_from_file(
    cls: type[Estimator],
    model: persistence.ModelFile,
    path: str | os.PathLike[str],
    device: str | None,
) -> Estimator:
    """An estimator of class ``cls`` built from a model file's content (read from ``path``)."""
    check_model_class(model, cls, path)
    params = _load_params(path, model.params, device)
    device_ = _load_device(path, params)
    try:
        for key in ("hidden_dims", "categorical_columns"):
            if params.get(key) is not None:
                params[key] = tuple(params[key])
        estimator = cls(**params)
        estimator._validate_params()  # what fit would refuse, a file may not smuggle in
        arrays = {
            k.removeprefix("state."): v.numpy()
            for k, v in model.tensors.items()
            if k.startswith("state.")
        }
        estimator._restore_fitted_state(model.state, arrays)
        estimator.device_ = device_
        weights = {
            k.removeprefix("module."): v
            for k, v in model.tensors.items()
            if k.startswith("module.")
        }
        # Building allocates what the config describes: allow a few times what the
        # file holds, never what a tampered config announces. A private generator
        # and a forked RNG: the initial weights are overwritten below, and loading
        # must not advance torch's global RNG (default initialisations draw from it).
        n_values = sum(tensor.numel() for tensor in weights.values())
        with persistence.allocation_limit(4 * n_values + 2**20, 16 * len(weights) + 256):
            module = build_module(estimator, torch.Generator())
        module.load_state_dict(weights, strict=True)
    except (LookupError, TypeError, ValueError, ArithmeticError, RuntimeError) as error:
        problem = textwrap.shorten(str(error), width=400, placeholder=" ...")
        raise ModelFileError(
            f"{path} is inconsistent: its config and weights do not describe a valid "
            f"{cls.__name__} ({type(error).__name__}: {problem}). Re-save the model with "
            f"hourglass {__version__}."
        ) from None
    estimator.module_ = module.to(estimator.device_).eval()
    return estimator
