"""Fitting an estimator on prepared data: the family's checks, the network, the training run.

Everything here is the same for every family: the family object decides what
differs (see :mod:`hourglass.families`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
from numpy.typing import NDArray

from hourglass import distributed, persistence
from hourglass.checkpoint import Checkpoint
from hourglass.data.stream import Stream, StreamSource
from hourglass.estimators._input import UINT8_SCALE, PreparedInput, as_tensor, to_unit_float
from hourglass.estimators._params import resolve_device, uses_bfloat16
from hourglass.estimators._streaming import StreamInput, scan_stream, scan_table_stream
from hourglass.exceptions import InvalidInputError
from hourglass.families import Family, get_family
from hourglass.nn import ReconstructionModule
from hourglass.sliced_gradients import SLICES
from hourglass.threads import num_threads
from hourglass.training import BatchSource, History, TensorSource, TrainingConfig, train

if TYPE_CHECKING:
    from hourglass.estimators._base import BaseAutoencoder

__all__ = ["build_module", "fit_prepared"]

_LOGGER = logging.getLogger("hourglass")


def fit_prepared(
    estimator: BaseAutoencoder,
    prepared: PreparedInput | StreamInput,
    *,
    validation_data: Any,
    seed: int,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
) -> None:
    """Build and train ``estimator``'s network on validated data (in memory or a stream)."""
    started = time.perf_counter()
    family = _set_up(estimator, prepared)
    if isinstance(prepared, StreamInput):
        estimator.data_min_, estimator.data_max_ = prepared.feature_min, prepared.feature_max
        training, validation = _stream_sources(
            estimator, prepared.stream, validation_data, seed, prepared.encode
        )
        fingerprint: str | None = _fingerprint(
            estimator, seed, prepared.stream.fingerprint(), validation
        )
        _train_module(estimator, training, validation, seed, fingerprint, checkpoint_dir, resume)
        family.after_fit(estimator, prepared.sample)
        estimator.fit_time_ = time.perf_counter() - started
        return
    values = prepared.values
    flat = values.reshape(values.shape[0], -1)
    scale = np.float32(1.0 / UINT8_SCALE if prepared.was_uint8 else 1.0)
    estimator.data_min_ = flat.min(axis=0).astype(np.float32) * scale
    estimator.data_max_ = flat.max(axis=0).astype(np.float32) * scale
    values, validation_values = _split_validation(estimator, values, validation_data, seed)
    validation = None if validation_values is None else TensorSource(as_tensor(validation_values))
    fingerprint = None
    if checkpoint_dir is not None:
        fingerprint = _fingerprint(estimator, seed, values, validation_values)
    _train_module(
        estimator,
        TensorSource(as_tensor(values)),
        validation,
        seed,
        fingerprint,
        checkpoint_dir,
        resume,
    )
    family.after_fit(estimator, values)
    estimator.fit_time_ = time.perf_counter() - started


def _set_up(estimator: BaseAutoencoder, prepared: PreparedInput | StreamInput) -> Family:
    """Set the fitted attributes known before training; the family, checked against the data."""
    if isinstance(prepared, StreamInput):
        estimator.input_shape_ = prepared.sample_shape
    else:
        estimator.input_shape_ = tuple(int(s) for s in prepared.values.shape[1:])
    family = get_family(prepared.family)
    estimator.arch_ = family.name
    family.check_fit(estimator, prepared)
    if estimator.arch == "auto":
        _LOGGER.info(
            "%s(arch='auto') chose arch=%r for samples of shape %s.",
            type(estimator).__name__,
            family.name,
            estimator.input_shape_,
        )
    estimator.n_features_in_ = family.n_features_in(estimator)
    estimator._legacy_table = False
    estimator.scales_uint8_ = prepared.was_uint8
    estimator.output_activation_, estimator.loss_ = family.output_and_loss(estimator, prepared)
    estimator.device_ = distributed.process_device(resolve_device(estimator.device))
    return family


def _validation_fraction(estimator: BaseAutoencoder) -> float:
    fraction = estimator.validation_fraction
    if fraction is None:
        fraction = 0.1 if estimator.early_stopping else 0.0
    return float(fraction)


def _split_validation(
    estimator: BaseAutoencoder, values: NDArray[Any], validation_data: Any, seed: int
) -> tuple[NDArray[Any], NDArray[Any] | None]:
    """The training rows, and the validation rows: given, or split off at random."""
    if validation_data is not None:
        return values, estimator._prepare_validation(validation_data)
    fraction = _validation_fraction(estimator)
    n_val = round(fraction * values.shape[0])
    if n_val <= 0:
        return values, None
    if values.shape[0] - n_val < 1:
        raise InvalidInputError(
            f"validation_fraction={fraction} leaves no training samples out of "
            f"{values.shape[0]}; use a smaller fraction or more data."
        )
    order = np.random.default_rng(seed).permutation(values.shape[0])
    return values[np.sort(order[n_val:])], values[order[:n_val]]


def _stream_sources(
    estimator: BaseAutoencoder,
    stream: Stream,
    validation_data: Any,
    seed: int,
    encode: Any = None,
) -> tuple[StreamSource, BatchSource | None]:
    """Training batches from a stream, and validation ones (a split of it, or given)."""
    training = StreamSource(stream, encode=encode)
    if validation_data is not None:
        if isinstance(validation_data, Stream):
            checked = (
                scan_stream(estimator, validation_data, reset=False)
                if encode is None
                else scan_table_stream(estimator, validation_data, encode)
            )
            if checked.sample_shape != estimator.input_shape_:
                raise InvalidInputError(
                    f"validation_data has samples of shape {checked.sample_shape}, but the "
                    f"training data has samples of shape {estimator.input_shape_}; they must "
                    "match."
                )
            return training, StreamSource(validation_data, encode=encode)
        return training, TensorSource(as_tensor(estimator._prepare_validation(validation_data)))
    fraction = _validation_fraction(estimator)
    if not fraction:
        return training, None
    held_out, kept = stream.split(fraction, seed)
    if held_out.n_rows == 0 or kept.n_rows == 0:
        part = "validation" if kept.n_rows else "training"
        raise InvalidInputError(
            f"validation_fraction={fraction} leaves no {part} samples out of "
            f"{stream.n_rows}; use another fraction or more data."
        )
    return StreamSource(kept, encode=encode), StreamSource(held_out, encode=encode)


def build_module(estimator: BaseAutoencoder, generator: torch.Generator) -> Any:
    """A freshly initialised network for the estimator's family and fitted input shape.

    Weights come from ``generator``; torch's global generator, which some
    layers' default initialisation draws from before being overwritten, is
    left as it was.
    """
    with torch.random.fork_rng(devices=[]):
        return estimator.family_.build_module(estimator, generator)


def _train_module(
    estimator: BaseAutoencoder,
    inputs: BatchSource,
    validation: BatchSource | None,
    seed: int,
    fingerprint: str | None,
    checkpoint_dir: str | os.PathLike[str] | None,
    resume: bool,
) -> None:
    """Build the network and train it on ``inputs``; sets ``module_`` and the history."""
    family = estimator.family_
    generator = torch.Generator().manual_seed(seed)
    with num_threads(1):  # small tensors: several threads only wait for each other
        module = build_module(estimator, generator).to(estimator.device_)
    # One stream per source of randomness, so that none shifts another.
    random_generators = {
        name: torch.Generator(device=estimator.device_).manual_seed(
            distributed.rank_seed(seed + offset)  # per process in data-parallel training
        )
        for name, offset in (("corruption", 2), ("sampling", 3), ("augmentation", 4))
    }
    family.attach_generators(module, random_generators)
    corruption = family.corruption(estimator, random_generators["corruption"])
    with num_threads(estimator._threads()):
        history = train(
            module,
            lambda network, x, target: family.objective(
                estimator, cast(ReconstructionModule, network), x, target
            ),
            inputs,
            validation=validation,
            config=_training_config(estimator, inputs.n_samples),
            generator=generator,
            device=estimator.device_,
            prepare_batch=to_unit_float,
            corrupt_inputs=corruption,
            random_generators=random_generators,
            checkpoint=None
            if checkpoint_dir is None or fingerprint is None
            else Checkpoint(checkpoint_dir, fingerprint=fingerprint, resume=resume),
            compiled_batches=family.compiled_batches(estimator, module, corruption),
        )
    estimator.module_ = module
    _record_history(estimator, history)


def _training_config(estimator: BaseAutoencoder, n_samples: int) -> TrainingConfig:
    """The training loop's settings; ``epochs="auto"`` resolved for ``n_samples`` samples."""
    epochs = estimator.epochs
    if epochs == "auto":
        epochs = estimator.family_.auto_epochs(n_samples, int(estimator.batch_size))
    return TrainingConfig(
        epochs=int(epochs),
        batch_size=int(estimator.batch_size),
        learning_rate=float(estimator.learning_rate),
        weight_decay=float(estimator.weight_decay),
        shuffle=bool(estimator.shuffle),
        early_stopping=bool(estimator.early_stopping),
        patience=int(estimator.patience),
        verbose=int(estimator.verbose),
        num_threads="auto" if estimator.num_threads is None else None,
        mixed_precision=uses_bfloat16(bool(estimator.mixed_precision), estimator.device_),
        batch_slices=SLICES if estimator.family_.slices_batches(estimator) else 1,
        progress_description=f"{type(estimator).__name__}.fit",
    )


def _fingerprint(
    estimator: BaseAutoencoder,
    seed: int,
    values: NDArray[Any] | str,
    validation: NDArray[Any] | BatchSource | None,
) -> str:
    """A digest of the settings and data a training run depends on.

    ``epochs`` is left out (a checkpoint may be continued for more epochs), as
    are settings that do not change the result (verbosity, device, threads).
    """
    params = persistence.json_params(estimator.get_params(deep=False))
    for name in ("epochs", "verbose", "device", "num_threads"):
        params.pop(name, None)
    digest = hashlib.sha256()
    digest.update(json.dumps([type(estimator).__name__, seed, params], sort_keys=True).encode())
    for array in (values, validation):
        if isinstance(array, str):  # a stream's own fingerprint
            digest.update(array.encode())
        elif isinstance(array, StreamSource):
            digest.update(array.stream.fingerprint().encode())
        elif isinstance(array, TensorSource):
            digest.update(np.ascontiguousarray(array.inputs.numpy()).tobytes())
        elif isinstance(array, np.ndarray):
            digest.update(repr((array.shape, str(array.dtype))).encode())
            digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _record_history(estimator: BaseAutoencoder, history: History) -> None:
    estimator.history_ = {key: list(values) for key, values in history.metrics.items()}
    estimator.n_epochs_ = history.n_epochs
    estimator.best_epoch_ = history.best_epoch
