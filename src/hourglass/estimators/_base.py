"""What every hourglass estimator shares: parameters, fitting, batched inference, persistence."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import os
import textwrap
import time
from collections.abc import Callable
from dataclasses import replace
from numbers import Integral, Real
from pathlib import Path
from typing import Any, ClassVar, TypeVar, cast

import numpy as np
import pandas as pd
import torch
from numpy.typing import NDArray
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import TransformerTags
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from hourglass import distributed, persistence
from hourglass._version import __version__
from hourglass.checkpoint import Checkpoint
from hourglass.data.stream import Stream, StreamSource
from hourglass.estimators._blocks import BLOCK_ROW_MULTIPLE, map_blocks
from hourglass.estimators._input import (
    UINT8_SCALE,
    PreparedInput,
    as_tensor,
    is_text,
    prepare_input,
    prepare_table,
    prepare_text,
    to_unit_float,
)
from hourglass.estimators._streaming import (
    StreamInput,
    piecewise,
    scan_stream,
    scan_table_stream,
)
from hourglass.exceptions import InvalidInputError, InvalidParameterError, ModelFileError
from hourglass.exceptions import NotFittedError as HourglassNotFittedError
from hourglass.neighbors import NEIGHBOR_METRICS, nearest_codes
from hourglass.nn import (
    ConvAutoencoder,
    ConvConfig,
    DenseAutoencoder,
    DenseConfig,
    ReconstructionModule,
    VariationalAutoencoder,
)
from hourglass.nn.blocks import ACTIVATIONS
from hourglass.nn.invariance import InvariantAutoencoder
from hourglass.nn.noise import NOISE_KINDS, corrupt
from hourglass.nn.sequence import PAD, ByteTokenizer, SequenceAutoencoder, SequenceConfig
from hourglass.nn.tabular import TabularAutoencoder, TabularConfig
from hourglass.nn.variational import gaussian_kl
from hourglass.scoring import ERROR_METRICS, per_sample_error
from hourglass.tabular import TableSchema
from hourglass.threads import num_threads
from hourglass.training import BatchSource, History, TensorSource, TrainingConfig, train

__all__ = ["BaseAutoencoder"]

Self = TypeVar("Self", bound="BaseAutoencoder")

_LOGGER = logging.getLogger("hourglass")

#: Model families: ``arch`` values.
ARCHITECTURES: tuple[str, ...] = ("dense", "conv", "vae", "conv_vae", "sequence", "tabular")
#: Texts are cut to this many UTF-8 bytes (including the end-of-text marker).
TEXT_MAX_BYTES = 256
#: Width of the features a variational head reads from a convolutional body.
CONV_VAE_FEATURES = 256
#: Hidden widths of a dense variational body when ``hidden_dims`` is empty.
VAE_HIDDEN_DIMS = (256,)
#: Rows of a table stream its schema (medians, scales, vocabularies) is fitted on.
TABLE_SCHEMA_SAMPLE_ROWS = 100_000
#: What models saved before a parameter existed were trained with (``trim``: untrimmed).
PARAMETERS_BEFORE_THEY_EXISTED: dict[str, Any] = {"trim": 0.0}
#: ``trim="auto"`` for tabular models: the fraction of each training batch's rows with the
#: highest loss left out of the loss. On ADBench's 12 dev sets, whose training parts hold
#: 1-35% outliers, trimming a fifth raised the mean AUROC from 0.863 to 0.898 (0.2 to 0.3
#: performed alike); on their normal rows only it cost 0.003 (benchmarks/adbench.py).
TABULAR_TRIM = 0.2

#: Input values per forward pass at inference (the last block is padded): large
#: enough to amortise per-call overhead, small enough to keep memory bounded and a
#: single sample cheap. The rows per block follow from the model's input width, so
#: they are fixed for a model and a sample's outputs never depend on its batch.
INFERENCE_BLOCK_VALUES = 2**18
#: The most rows per block: a sample scored alone costs a whole block. Tables of a few
#: columns would get 4,096-row blocks from INFERENCE_BLOCK_VALUES alone, which cut the
#: scoring service's single-row throughput from 1,152 to 193 requests/s (measured).
MAX_INFERENCE_BLOCK_ROWS = 512
#: Rows per block for the convolutional and sequence families.
SMALL_INFERENCE_BLOCK_ROWS = 64


def _seed_from(random_state: Any) -> int:
    """A 63-bit seed derived from ``random_state`` without touching global RNGs."""
    if random_state is None:
        # Fresh OS entropy: the global NumPy and torch generators are left alone.
        return int(np.random.SeedSequence().generate_state(1, dtype=np.uint64)[0] >> 1)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**63 - 1))
    if isinstance(random_state, Integral) and not isinstance(random_state, bool):
        return int(random_state)
    raise InvalidParameterError(
        "random_state must be None, an int, a numpy RandomState or a numpy Generator; got "
        f"{random_state!r}."
    )


def _check_count(name: str, value: Any) -> int:
    """``value`` as an int >= 0, or an InvalidParameterError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 0:
        raise InvalidParameterError(f"{name} must be an int >= 0; got {value!r}.")
    return int(value)


def _has_non_numeric_columns(X: Any) -> bool:
    """Whether ``X`` is a DataFrame with at least one non-numeric (or boolean) column."""
    if not hasattr(X, "columns") or not hasattr(X, "dtypes"):
        return False
    import pandas as pd

    return any(
        not pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)
        for dtype in X.dtypes
    )


def _as_frame(X: Any) -> Any:
    """``X`` as a pandas DataFrame (2-D arrays get columns named "0", "1", ...)."""
    import pandas as pd

    if isinstance(X, pd.DataFrame):
        return X
    array = np.asarray(X)
    if array.ndim != 2:
        raise InvalidInputError(
            f"arch='tabular' needs a table: a pandas DataFrame or a 2-D array; got an array "
            f"of shape {array.shape}."
        )
    return pd.DataFrame(array, columns=[str(i) for i in range(array.shape[1])])


#: Texts are computed in groups of lengths up to a multiple of this many bytes.
TEXT_LENGTH_STEP = 32


def _next_power_of_two(n: int) -> int:
    return 1 << max(0, n - 1).bit_length()


def _texts_by_length(tokens: NDArray[Any]) -> list[tuple[NDArray[np.intp], Any]]:
    """Texts grouped by their own length, rounded up, each group cut to that length.

    A text's group, and so the shape of every tensor it meets, depends on the text
    alone; cutting all-padding columns saves most of the work on short texts.
    """
    lengths = np.maximum((tokens != PAD).sum(axis=1), 1)
    limits = np.minimum(-(-lengths // TEXT_LENGTH_STEP) * TEXT_LENGTH_STEP, tokens.shape[1])
    return [
        (np.flatnonzero(limits == limit), functools.partial(_first_columns, n=int(limit)))
        for limit in np.unique(limits)
    ]


def _first_columns(rows: NDArray[Any], n: int) -> NDArray[Any]:
    return rows[:, :n]


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else as torch understands it."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as error:
        raise InvalidInputError(
            f"Unknown device {device!r}: use 'auto', 'cpu', 'cuda' or 'cuda:N'."
        ) from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InvalidInputError(
            f"device={device!r} was requested but CUDA is not available on this machine; "
            "use device='auto' or device='cpu'."
        )
    return resolved


class BaseAutoencoder(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Shared implementation of :class:`Autoencoder` and :class:`AutoencoderOutlierDetector`.

    Not part of the public API: subclasses define ``__init__`` with their full,
    explicit parameter list, as scikit-learn requires.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "arch": [StrOptions({"auto", *ARCHITECTURES})],
        "latent_dim": [Interval(Integral, 1, None, closed="left")],
        "hidden_dims": ["array-like"],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "output_activation": [StrOptions({"auto", "sigmoid", "linear"})],
        "loss": [StrOptions({"auto", *ERROR_METRICS})],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left"), None],
        "early_stopping": ["boolean"],
        "patience": [Interval(Integral, 1, None, closed="left")],
        "device": [str],
        "num_threads": [Interval(Integral, 1, None, closed="left"), None],
        "beta": [Interval(Real, 0, None, closed="left")],
        "categorical_columns": ["array-like", None],
        "noise": [StrOptions(set(NOISE_KINDS)), None],
        "noise_strength": [Interval(Real, 0, None, closed="neither")],
        "invariance": [Interval(Real, 0, None, closed="left")],
        "trim": [Interval(Real, 0, 0.5, closed="left"), StrOptions({"auto"})],
        "verbose": ["verbose"],
        "random_state": ["random_state", np.random.Generator],  # as documented
    }

    # Set by subclasses' __init__; declared for type checkers.
    arch: str
    latent_dim: int
    hidden_dims: tuple[int, ...]
    activation: str
    output_activation: str
    loss: str
    learning_rate: float
    weight_decay: float
    epochs: int
    batch_size: int
    shuffle: bool
    validation_fraction: float | None
    early_stopping: bool
    patience: int
    device: str
    num_threads: int | None
    beta: float
    categorical_columns: tuple[str, ...] | None
    noise: str | None
    noise_strength: float
    invariance: float
    trim: float | str
    verbose: int
    random_state: Any

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        # Every estimator here encodes (``transform``) into float32 codes,
        # whatever the input's dtype: the networks compute in float32.
        tags.transformer_tags = TransformerTags(preserves_dtype=["float32"])
        # The tabular family reads NaN as a missing value (arch="auto" trains it on
        # tables and 2-D arrays); the others need finite values.
        tags.input_tags.allow_nan = self.arch in ("auto", "tabular")
        return tags

    # ------------------------------------------------------------------ fitting

    def _validated_hidden_dims(self) -> tuple[int, ...]:
        dims = tuple(self.hidden_dims)
        if not all(isinstance(d, Integral) and not isinstance(d, bool) and d >= 1 for d in dims):
            raise InvalidParameterError(
                f"The 'hidden_dims' parameter of {type(self).__name__} must be a sequence of "
                f"positive ints (e.g. (256, 128)). Got {self.hidden_dims!r} instead."
            )
        return tuple(int(d) for d in dims)

    def _prepare_training_input(self, X: Any) -> PreparedInput | StreamInput:
        """Validate the training data: texts, mixed tables or arrays, following ``arch``."""
        if isinstance(X, Stream):
            if self.arch == "sequence":
                raise InvalidInputError(
                    "arch='sequence' cannot be trained from a stream yet. Fit on texts that fit "
                    "in memory, then score the whole stream."
                )
            if self.arch == "tabular" or (self.arch == "auto" and self._auto_picks_table(X)):
                return self._prepare_table_stream(X)
            return scan_stream(self, X)
        if self.arch == "sequence" or (self.arch == "auto" and is_text(X)):
            return prepare_text(self, X, max_length=TEXT_MAX_BYTES)
        if self.arch == "tabular" or (self.arch == "auto" and self._auto_picks_table(X)):
            frame = prepare_table(self, X, reset=True)
            forced = None if self.categorical_columns is None else list(self.categorical_columns)
            self.table_schema_ = TableSchema.fit(frame, categorical=forced)
            return PreparedInput(values=self.table_schema_.encode(frame), is_table=True)
        if is_text(X):
            raise InvalidInputError(
                f"arch={self.arch!r} needs numeric arrays; got texts. Use arch='sequence' "
                "(or 'auto') for text."
            )
        return prepare_input(self, X, reset=True)

    def _asks_for_dense(self) -> bool:
        """Whether options only the dense family has were set: denoising, a fixed output or loss."""
        return self.noise is not None or self.output_activation != "auto" or self.loss != "auto"

    def _auto_picks_table(self, X: Any) -> bool:
        """Whether ``arch="auto"`` trains the tabular family on ``X``.

        Tables with non-numeric columns always; DataFrames, table files and 2-D
        arrays of numbers too, unless options of the dense family were set.
        """
        if isinstance(X, Stream):
            if not X.is_numeric:
                return True
            rows = X.list_column is None and len(X.sample_shape) == 1
            return rows and not self._asks_for_dense()
        if _has_non_numeric_columns(X):
            return True
        if type(X).__module__.startswith("scipy.sparse"):
            return False  # refused with its own message
        try:
            two_dimensional = hasattr(X, "columns") or np.asarray(X).ndim == 2
        except (ValueError, TypeError):  # ragged nested lists: refused with their own message
            return False
        return two_dimensional and not self._asks_for_dense()

    def _prepare_table_stream(self, stream: Stream) -> StreamInput:
        """A table too large for memory: its schema from a sample, then every piece checked.

        Medians, interquartile ranges and category vocabularies come from about
        ``TABLE_SCHEMA_SAMPLE_ROWS`` rows drawn uniformly; a category missing from
        the sample is treated as unseen, as after fit.
        """
        if stream.list_column is not None or len(stream.sample_shape) != 1:
            raise InvalidInputError(
                "arch='tabular' needs a table (Parquet or CSV columns, or .npy rows); "
                f"{stream!r} holds samples of shape {stream.sample_shape}. Use arch='dense' "
                "(or 'auto')."
            )
        sample = prepare_table(self, self._table_sample(stream), reset=True)
        forced = None if self.categorical_columns is None else list(self.categorical_columns)
        self.table_schema_ = TableSchema.fit(sample, categorical=forced)
        schema = self.table_schema_
        scanned = scan_table_stream(self, stream, lambda piece: schema.encode(_as_frame(piece)))
        return replace(scanned, sample=self.table_schema_.encode(sample))

    @staticmethod
    def _table_sample(stream: Stream) -> Any:
        """About ``TABLE_SCHEMA_SAMPLE_ROWS`` rows of ``stream`` drawn uniformly.

        A DataFrame for tables, an array for ``.npy`` rows. In data-parallel
        training each process draws from its own blocks and every process gets
        the whole sample.
        """
        fraction = min(1.0, TABLE_SCHEMA_SAMPLE_ROWS / max(1, stream.n_rows))
        if distributed.world_size() == 1:
            return stream.split(fraction, 0)[0].read(as_frame=True)
        own = stream.shard(distributed.rank(), distributed.world_size()).split(fraction, 0)[0]
        part = own.read(as_frame=True) if own.n_rows else stream.head(1, as_frame=True)[:0]
        parts = distributed.gather_objects(part)
        if isinstance(part, pd.DataFrame):
            return pd.concat(parts, ignore_index=True)
        return np.concatenate(parts)

    def _prepare_later_input(self, X: Any) -> PreparedInput:
        """Validate data given after fit (validation data, or data to transform or score)."""
        if getattr(self, "arch_", None) == "sequence":
            return prepare_text(self, X, max_length=self.input_shape_[0])
        if getattr(self, "arch_", None) == "tabular":
            # Models saved before feature names and counts were checked for tables
            # keep their behaviour (no new warnings about names).
            checked = prepare_table(self, X, reset=False) if not self._legacy_table else X
            return PreparedInput(
                values=self.table_schema_.encode(_as_frame(checked)), is_table=True
            )
        return prepare_input(self, X, reset=False)

    def _resolve_output_and_loss(self, prepared: PreparedInput | StreamInput) -> tuple[str, str]:
        if prepared.is_text:
            return "softmax", "nll"  # next-byte distribution, negative log-likelihood
        if prepared.is_table:
            return "mixed", "mixed"  # per column: Huber error or cross-entropy
        low, high = prepared.value_range()
        in_unit_range = low >= 0.0 and high <= 1.0
        output = self.output_activation
        if output == "auto":
            output = "sigmoid" if in_unit_range else "linear"
        if output == "sigmoid" and not in_unit_range:
            raise InvalidInputError(self._range_message(low, high))
        loss = self.loss
        if loss == "auto":
            loss = "bce" if output == "sigmoid" else "mse"
        if loss == "bce" and output != "sigmoid":
            raise InvalidInputError(
                f"loss='bce' needs output_activation='sigmoid' and data in [0, 1]; got "
                f"output_activation={output!r}. Use loss='mse' or 'mae' for data outside [0, 1]."
            )
        return output, loss

    def _range_message(self, low: float, high: float) -> str:
        return (
            f"{type(self).__name__} with a sigmoid output needs data in [0, 1], but the values "
            f"range from {low:.4g} to {high:.4g}. Scale the data "
            "to [0, 1] (divide pixel intensities by 255, or use "
            "sklearn.preprocessing.MinMaxScaler), or use output_activation='linear'."
        )

    def _resolve_arch(self, prepared: PreparedInput | StreamInput) -> str:
        """``arch``, with ``"auto"`` resolved from the training data (and logged)."""
        if not prepared.is_table and not isinstance(self.trim, str) and self.trim > 0:
            raise InvalidInputError(
                f"trim={self.trim} trims the training loss of tables; it needs arch='tabular' "
                "(or a table with arch='auto'). Set trim=0 or 'auto' for this data."
            )
        if self.arch != "auto":
            return str(self.arch)
        if prepared.is_text:
            arch = "sequence"
        elif prepared.is_table:
            arch = "tabular"
        else:  # images (the reference model), or rows with options of the dense family
            arch = "dense"
        _LOGGER.info(
            "%s(arch='auto') chose arch=%r for samples of shape %s.",
            type(self).__name__,
            arch,
            self.input_shape_,
        )
        return arch

    def _threads(self) -> int | None:
        """Intra-op thread count for torch, or None to leave torch's setting alone.

        ``num_threads=None`` lets the training loop measure which count is fastest
        (see hourglass.threads); inference then computes its blocks on as many
        threads as torch uses (see :meth:`_inference_workers`).
        """
        return None if self.num_threads is None else int(self.num_threads)

    def _objective(
        self, module: torch.nn.Module, x: torch.Tensor, target: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        network = cast(ReconstructionModule, module)
        if torch.is_grad_enabled() and isinstance(network, TabularAutoencoder):
            # A training step: trimmed; validation losses (no gradients) are plain means.
            loss, mae = network.reconstruction_loss(
                x, target, self.loss_, trim=self._trim_fraction()
            )
            return {"loss": loss, "mae": mae}
        if torch.is_grad_enabled() and isinstance(network, InvariantAutoencoder):
            return network.training_loss(x, target, self.loss_)
        # A training step; under DDP only autograd's gradients are synchronised.
        if (
            torch.is_grad_enabled()
            and network.has_fused_gradients
            and distributed.world_size() == 1
        ):
            loss, mae = network.loss_and_gradients(x, target, self.loss_)
        else:
            loss, mae = network.reconstruction_loss(x, target, self.loss_)
        # Text models report the share of mispredicted next bytes instead of the MAE.
        return {"loss": loss, "error_rate" if self.arch_ == "sequence" else "mae": mae}

    def _trim_fraction(self) -> float:
        """The fraction of each training batch left out of the loss (``trim`` resolved)."""
        if self.trim == "auto":
            return TABULAR_TRIM if self.arch_ == "tabular" else 0.0
        return float(self.trim)

    def _prepare_validation(
        self, validation_data: Any, sample_shape: tuple[int, ...]
    ) -> NDArray[Any]:
        prepared = self._prepare_later_input(validation_data)
        if prepared.values.shape[1:] != sample_shape:
            raise InvalidInputError(
                f"validation_data has samples of shape {prepared.values.shape[1:]}, but the "
                f"training data has samples of shape {sample_shape}; they must match."
            )
        return prepared.values

    def _fit_prepared(
        self,
        prepared: PreparedInput | StreamInput,
        *,
        validation_data: Any,
        seed: int,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        resume: bool = False,
    ) -> None:
        """Build and train the module on already validated data (in memory or a stream)."""
        started = time.perf_counter()
        if isinstance(prepared, StreamInput):
            self.input_shape_ = prepared.sample_shape
        else:
            self.input_shape_ = tuple(int(s) for s in prepared.values.shape[1:])
        self.arch_ = self._resolve_arch(prepared)
        if prepared.is_table and self.noise is not None:
            raise InvalidInputError("noise= does not apply to arch='tabular'. Remove it.")
        if prepared.is_text != (self.arch_ == "sequence"):
            raise InvalidInputError(
                f"arch={self.arch_!r} needs numeric arrays; got texts. Use arch='sequence' for "
                "text."
                if prepared.is_text
                else "arch='sequence' needs texts (a list of strings); got numeric data."
            )
        if self.arch_ == "sequence" and self.noise is not None:
            raise InvalidInputError(
                "noise= corrupts numeric values; it does not apply to arch='sequence'. Remove it."
            )
        if self.invariance > 0 and (
            self.arch_ not in ("dense", "conv") or len(self.input_shape_) not in (2, 3)
        ):
            raise InvalidInputError(
                "invariance= deforms images, so it needs arch='dense' or 'conv' and images: X of "
                f"shape (n, h, w) or (n, c, h, w). Got arch={self.arch_!r} and samples of shape "
                f"{self.input_shape_}; set invariance=0 or pass images."
            )
        if self.arch_ in ("conv", "conv_vae") and len(self.input_shape_) not in (2, 3):
            raise InvalidInputError(
                f"arch={self.arch_!r} needs images: X of shape (n, h, w) or (n, c, h, w). Got "
                f"samples of shape {self.input_shape_}; reshape image rows to (n, h, w), or use "
                "arch='dense'."
            )
        # Tables: columns (what scikit-learn counts); otherwise values per sample.
        self.n_features_in_ = (
            len(self.table_schema_.columns) if prepared.is_table else math.prod(self.input_shape_)
        )
        self._legacy_table = False
        self.scales_uint8_ = prepared.was_uint8
        self.output_activation_, self.loss_ = self._resolve_output_and_loss(prepared)
        self.device_ = distributed.process_device(resolve_device(self.device))
        if isinstance(prepared, StreamInput):
            self.data_min_, self.data_max_ = prepared.feature_min, prepared.feature_max
            training_source, validation_source = self._stream_sources(
                prepared.stream, validation_data, seed, prepared.encode
            )
            fingerprint: str | None = self._training_fingerprint(
                seed, prepared.stream.fingerprint(), validation_source
            )
            self._train_module(
                training_source, validation_source, seed, fingerprint, checkpoint_dir, resume
            )
            if self.arch_ == "tabular" and prepared.sample is not None:
                self.column_scales_ = self._typical_column_losses(prepared.sample)
            self.fit_time_ = time.perf_counter() - started
            return
        values = prepared.values
        flat = values.reshape(values.shape[0], -1)
        scale = np.float32(1.0 / UINT8_SCALE if prepared.was_uint8 else 1.0)
        self.data_min_ = flat.min(axis=0).astype(np.float32) * scale
        self.data_max_ = flat.max(axis=0).astype(np.float32) * scale

        rng = np.random.default_rng(seed)
        validation_values: NDArray[Any] | None = None
        if validation_data is not None:
            validation_values = self._prepare_validation(validation_data, self.input_shape_)
        else:
            fraction = self.validation_fraction
            if fraction is None:
                fraction = 0.1 if self.early_stopping else 0.0
            n_val = round(fraction * values.shape[0])
            if n_val > 0:
                if values.shape[0] - n_val < 1:
                    raise InvalidInputError(
                        f"validation_fraction={fraction} leaves no training samples out of "
                        f"{values.shape[0]}; use a smaller fraction or more data."
                    )
                order = rng.permutation(values.shape[0])
                validation_values = values[order[:n_val]]
                values = values[np.sort(order[n_val:])]
        validation = None
        if validation_values is not None:
            validation = TensorSource(as_tensor(validation_values))
        fingerprint = None
        if checkpoint_dir is not None:
            fingerprint = self._training_fingerprint(seed, values, validation_values)
        self._train_module(
            TensorSource(as_tensor(values)), validation, seed, fingerprint, checkpoint_dir, resume
        )
        if self.arch_ == "tabular":
            self.column_scales_ = self._typical_column_losses(values)
        self.fit_time_ = time.perf_counter() - started

    def _stream_sources(
        self,
        stream: Stream,
        validation_data: Any,
        seed: int,
        encode: Callable[[Any], NDArray[np.float32]] | None = None,
    ) -> tuple[StreamSource, BatchSource | None]:
        """Training batches from a stream, and validation ones (a split of it, or given)."""
        training = StreamSource(stream, encode=encode)
        if validation_data is not None:
            if isinstance(validation_data, Stream):
                checked = (
                    scan_stream(self, validation_data, reset=False)
                    if encode is None
                    else scan_table_stream(self, validation_data, encode)
                )
                if checked.sample_shape != self.input_shape_:
                    raise InvalidInputError(
                        f"validation_data has samples of shape {checked.sample_shape}, but the "
                        f"training data has samples of shape {self.input_shape_}; they must match."
                    )
                return training, StreamSource(validation_data, encode=encode)
            values = self._prepare_validation(validation_data, self.input_shape_)
            return training, TensorSource(as_tensor(values))
        fraction = self.validation_fraction
        if fraction is None:
            fraction = 0.1 if self.early_stopping else 0.0
        if not fraction:
            return training, None
        held_out, kept = stream.split(float(fraction), seed)
        if held_out.n_rows == 0 or kept.n_rows == 0:
            part = "validation" if kept.n_rows else "training"
            raise InvalidInputError(
                f"validation_fraction={fraction} leaves no {part} samples out of "
                f"{stream.n_rows}; use another fraction or more data."
            )
        return StreamSource(kept, encode=encode), StreamSource(held_out, encode=encode)

    def _train_module(
        self,
        inputs: BatchSource,
        validation: BatchSource | None,
        seed: int,
        fingerprint: str | None,
        checkpoint_dir: str | os.PathLike[str] | None,
        resume: bool,
    ) -> None:
        """Build the network and train it on ``inputs``; sets ``module_`` and the history."""
        generator = torch.Generator().manual_seed(seed)
        module = self._build_module(generator).to(self.device_)
        # One stream per source of randomness, so that none shifts another.
        random_generators = {
            name: torch.Generator(device=self.device_).manual_seed(
                distributed.rank_seed(seed + offset)  # per process in data-parallel training
            )
            for name, offset in (("corruption", 2), ("sampling", 3), ("augmentation", 4))
        }
        if isinstance(module, VariationalAutoencoder):
            module.sampling_generator = random_generators["sampling"]
        if isinstance(module, InvariantAutoencoder):
            module.augmentation_generator = random_generators["augmentation"]
        training = TrainingConfig(
            epochs=int(self.epochs),
            batch_size=int(self.batch_size),
            learning_rate=float(self.learning_rate),
            weight_decay=float(self.weight_decay),
            shuffle=bool(self.shuffle),
            early_stopping=bool(self.early_stopping),
            patience=int(self.patience),
            verbose=int(self.verbose),
            num_threads="auto" if self.num_threads is None else None,
            progress_description=f"{type(self).__name__}.fit",
        )
        with num_threads(self._threads()):
            history = train(
                module,
                self._objective,
                inputs,
                validation=validation,
                config=training,
                generator=generator,
                device=self.device_,
                prepare_batch=to_unit_float,
                corrupt_inputs=self._input_corruption(random_generators["corruption"]),
                random_generators=random_generators,
                checkpoint=None
                if checkpoint_dir is None or fingerprint is None
                else Checkpoint(checkpoint_dir, fingerprint=fingerprint, resume=resume),
            )
        self.module_ = module
        self._record_history(history)

    def _training_fingerprint(
        self, seed: int, values: NDArray[Any] | str, validation: NDArray[Any] | BatchSource | None
    ) -> str:
        """A digest of the settings and data a training run depends on.

        ``epochs`` is left out (a checkpoint may be continued for more epochs), as
        are settings that do not change the result (verbosity, device, threads).
        """
        params = persistence.json_params(self.get_params(deep=False))
        for name in ("epochs", "verbose", "device", "num_threads"):
            params.pop(name, None)
        digest = hashlib.sha256()
        digest.update(json.dumps([type(self).__name__, seed, params], sort_keys=True).encode())
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

    def _input_corruption(
        self, generator: torch.Generator
    ) -> Callable[[torch.Tensor], torch.Tensor] | None:
        """The training-time corruption of a denoising autoencoder (None without ``noise``)."""
        if self.noise is None:
            return None
        if self.noise != "gaussian" and self.noise_strength > 1:
            raise InvalidParameterError(
                f"The 'noise_strength' parameter of {type(self).__name__} is the fraction of "
                f"values hit by noise={self.noise!r}, so it must be in (0, 1]. Got "
                f"{self.noise_strength} instead."
            )
        if self.output_activation_ == "sigmoid":
            low, high = 0.0, 1.0
        else:
            low, high = float(self.data_min_.min()), float(self.data_max_.max())
        return functools.partial(
            corrupt,
            kind=self.noise,
            strength=float(self.noise_strength),
            generator=generator,
            low=low,
            high=high,
        )

    def _record_history(self, history: History) -> None:
        self.history_ = {key: list(values) for key, values in history.metrics.items()}
        self.n_epochs_ = history.n_epochs
        self.best_epoch_ = history.best_epoch

    # ---------------------------------------------------------------- inference

    def _check_fitted(self) -> None:
        try:
            check_is_fitted(self, "module_")
        except Exception as error:  # scikit-learn's NotFittedError
            raise HourglassNotFittedError(str(error)) from None

    def _prepare_for_inference(self, X: Any) -> NDArray[Any]:
        self._check_fitted()
        prepared = self._prepare_later_input(X)
        values = prepared.values
        sample_shape = tuple(values.shape[1:])
        n_features = int(np.prod(sample_shape))
        expected = math.prod(self.input_shape_)
        if n_features != expected:  # tables: their schema has checked the columns
            raise InvalidInputError(
                f"X has {n_features} features, but {type(self).__name__} is expecting "
                f"{expected} features as input (samples of shape "
                f"{self.input_shape_}; got samples of shape {sample_shape})."
            )

        def squeezed(shape: tuple[int, ...]) -> tuple[int, ...]:
            return tuple(size for size in shape if size != 1)

        # A model of images takes flat rows, but not images of another shape with as
        # many pixels (a 2x8 image read as 4x4 would be scored silently wrong).
        if (
            len(self.input_shape_) > 1
            and len(sample_shape) > 1
            and squeezed(sample_shape) != squeezed(self.input_shape_)
        ):
            raise InvalidInputError(
                f"X has samples of shape {sample_shape}, but {type(self).__name__} was fitted "
                f"on samples of shape {self.input_shape_}. Pass samples of that shape, or flat "
                f"rows of {expected} values."
            )
        if sample_shape != self.input_shape_:  # flat rows, or a channel axis of size 1
            values = values.reshape(values.shape[0], *self.input_shape_)
        # Values outside the training range are accepted here (unlike at fit): they
        # reconstruct badly, which is exactly what an outlier score should report.
        # Only binary cross-entropy is undefined for them; _errors checks that.
        return values

    def _inference_block_rows(self) -> int:
        """Rows per forward pass at inference, fixed for a model (see ``_blocks``)."""
        if self.arch_ in ("conv", "conv_vae", "sequence"):
            # Convolutions and recurrences work on large intermediate tensors: small
            # blocks stay in cache (conv: as fast at 64 rows as at 2048, measured).
            return SMALL_INFERENCE_BLOCK_ROWS
        # About INFERENCE_BLOCK_VALUES input values: narrow rows come in larger blocks,
        # which amortise the per-operation overhead.
        rows = INFERENCE_BLOCK_VALUES // math.prod(self.input_shape_)
        return int(min(MAX_INFERENCE_BLOCK_ROWS, max(BLOCK_ROW_MULTIPLE, _next_power_of_two(rows))))

    def _inference_workers(self) -> int:
        """Threads computing inference blocks side by side: ``num_threads``, else torch's count."""
        threads = self._threads()
        return torch.get_num_threads() if threads is None else threads

    def _map_batches(
        self,
        values: NDArray[Any],
        fn: Any,
        *,
        parallel: bool = True,
    ) -> torch.Tensor:
        """Apply ``fn(module, x_block)`` to fixed-size blocks, in eval mode, without grad.

        A sample's outputs are the same bits whatever it is scored with (see
        :func:`hourglass.estimators._blocks.map_blocks`). ``parallel=False`` runs the
        blocks in order on this thread, for functions that draw random numbers.
        """
        module = self.module_
        module.eval()
        return map_blocks(
            values,
            lambda block: fn(module, block),
            block_rows=self._inference_block_rows(),
            device=self.device_,
            workers=self._inference_workers() if parallel else 1,
            groups=_texts_by_length(values) if self.arch_ == "sequence" else None,
            verbose=bool(self.verbose),
        )

    def _reconstruct_values(self, values: NDArray[Any]) -> NDArray[np.float32]:
        def run(module: ReconstructionModule, x: torch.Tensor) -> torch.Tensor:
            return self._clip(module.reconstruct(x))

        return self._map_batches(values, run).numpy().reshape(values.shape)

    def _clip(self, output: torch.Tensor) -> torch.Tensor:
        """Clip a linear output back into the per-feature range seen in training."""
        if self.output_activation_ != "linear":
            return output
        low = torch.from_numpy(self.data_min_).to(output.device).view(output.shape[1:])
        high = torch.from_numpy(self.data_max_).to(output.device).view(output.shape[1:])
        return torch.maximum(torch.minimum(output, high), low)

    def _errors(self, values: NDArray[Any], metric: str) -> NDArray[np.float64]:
        if self.arch_ == "sequence":  # texts: mean negative log-likelihood per byte

            def nll(module: SequenceAutoencoder, x: torch.Tensor) -> torch.Tensor:
                return module.per_text_nll(x)

            return self._map_batches(values, nll).numpy().astype(np.float64)
        if self.arch_ == "tabular":  # mixed columns: the mean column loss of each row

            def row_score(module: TabularAutoencoder, x: torch.Tensor) -> torch.Tensor:
                return module.row_scores(x)

            return self._map_batches(values, row_score).numpy().astype(np.float64)
        if metric not in ERROR_METRICS:
            raise InvalidParameterError(
                f"Unknown error metric {metric!r}; expected one of {list(ERROR_METRICS)}."
            )
        if metric == "bce" and self.output_activation_ == "sigmoid":
            low, high = float(np.min(values)), float(np.max(values))
            if values.dtype != np.uint8 and (low < 0.0 or high > 1.0):
                raise InvalidInputError(
                    f"metric='bce' needs data in [0, 1], but the values range from {low:.4g} to "
                    f"{high:.4g}. Use metric='mae' or 'mse', which score such values as badly "
                    "reconstructed, or scale the data to [0, 1] as for training."
                )
        if metric == "bce" and self.output_activation_ != "sigmoid":
            raise InvalidParameterError(
                "metric='bce' needs a model with a sigmoid output (data in [0, 1]); this one "
                "has a linear output. Use metric='mae' or 'mse'."
            )

        def run(module: ReconstructionModule, x: torch.Tensor) -> torch.Tensor:
            logits = module(x)
            if self.output_activation_ == "sigmoid":
                return per_sample_error(logits, x, metric, from_logits=True)
            return per_sample_error(self._clip(logits), x, metric, from_logits=False)

        return self._map_batches(values, run).numpy().astype(np.float64)

    @piecewise
    def transform(self, X: Any) -> NDArray[np.float32]:
        """Encode ``X`` into latent vectors.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), (n, h, w) or (n, c, h, w)
            Data shaped like the training data, or a Stream (encoded piece by
            piece). uint8 input is divided by 255.

        Returns
        -------
        ndarray of shape (n_samples, latent_dim)
            The codes.
        """
        values = self._prepare_for_inference(X)

        def run(module: ReconstructionModule, x: torch.Tensor) -> torch.Tensor:
            return module.encode(x)

        return self._map_batches(values, run).numpy()

    @piecewise
    def reconstruct(self, X: Any) -> NDArray[np.float32]:
        """Encode then decode ``X``.

        Parameters
        ----------
        X : array-like or Stream
            Data shaped like the training data. uint8 input is divided by 255.

        Returns
        -------
        ndarray of the same shape as ``X``, float32
            The reconstruction, in the (scaled) data space: in [0, 1] for a
            sigmoid output; clipped to the training data's per-feature range
            for a linear output. Text models return the greedily decoded texts
            (a list of str), tabular models a DataFrame with the table's
            columns (numbers in their original units, the most likely known
            category).
        """
        values = self._prepare_for_inference(X)
        if self.arch_ == "sequence":
            return self._reconstruct_texts(values)  # type: ignore[return-value]
        if self.arch_ == "tabular":
            return self._reconstruct_table(values)  # type: ignore[no-any-return]
        return self._reconstruct_values(values)

    def _reconstruct_table(self, values: NDArray[Any]) -> Any:
        """Decoded rows as a DataFrame: numbers unscaled, the most likely known category."""
        import pandas as pd

        def run(module: TabularAutoencoder, x: torch.Tensor) -> torch.Tensor:
            return module.decode_logits(module.encode(x))

        out = self._map_batches(values, run).numpy()
        schema = self.table_schema_
        columns: dict[str, Any] = {}
        for j, (name, median, scale) in enumerate(
            zip(schema.numeric, schema.medians, schema.scales, strict=True)
        ):
            columns[name] = out[:, j].astype(np.float64) * scale + median
        start = len(schema.numeric)
        for name, vocabulary, size in zip(
            schema.categorical, schema.vocabularies, schema.category_sizes, strict=True
        ):
            best = out[:, start + 2 : start + size].argmax(axis=1)  # known categories only
            columns[name] = [vocabulary[i] if vocabulary else None for i in best]
            start += size
        return pd.DataFrame(columns, columns=schema.columns)

    def _reconstruct_texts(self, values: NDArray[Any]) -> list[str]:
        length = self.input_shape_[0]

        def run(module: SequenceAutoencoder, x: torch.Tensor) -> torch.Tensor:
            return module.generate(module.encode(x), length)

        rows = self._map_batches(values, run).numpy()
        return [ByteTokenizer.decode(row) for row in rows]

    def set_index(self, X_ref: Any) -> Any:
        """Keep the codes of a reference set for :meth:`nearest` (saved with the model).

        Parameters
        ----------
        X_ref : array-like or list of str
            Data shaped like the training data.

        Returns
        -------
        self
        """
        self.reference_codes_ = self.transform(X_ref)
        return self

    def nearest(
        self, X_query: Any, k: int = 5, *, metric: str = "cosine", index: Any = None
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Nearest neighbours of each query among reference samples, in code space.

        Parameters
        ----------
        X_query : array-like, list of str or Stream
            Data shaped like the training data (a stream is encoded piece by piece).
        k : int, default=5
            Neighbours per query.
        metric : {"cosine", "euclidean"}, default="cosine"
            Cosine similarity (higher = closer) or Euclidean distance of codes.
        index : array-like, list of str or Stream, optional
            The reference samples; default: those given to :meth:`set_index`.

        Returns
        -------
        indices : ndarray of shape (n_queries, k)
            Positions in the reference set, nearest first.
        scores : ndarray of shape (n_queries, k)
            Cosine similarities or Euclidean distances.
        """
        if index is not None:
            references = self.transform(index)
        elif hasattr(self, "reference_codes_"):
            references = self.reference_codes_
        else:
            raise InvalidInputError(
                "nearest needs reference samples: pass index=X_ref, or call set_index(X_ref) "
                "once (the codes are then saved with the model)."
            )
        if metric not in NEIGHBOR_METRICS:
            raise InvalidParameterError(
                f"Unknown metric {metric!r}; expected one of {list(NEIGHBOR_METRICS)}."
            )
        return nearest_codes(self.transform(X_query), references, k, metric=metric)

    def most_similar(
        self, query: Any, corpus: Any, k: int = 5
    ) -> list[list[tuple[int, float, Any]]]:
        """The ``k`` items of ``corpus`` whose codes are closest to each query's (cosine).

        Works for every family: images, table rows and, with ``arch='sequence'``,
        sentences (``most_similar(["a query"], sentences)``).

        Parameters
        ----------
        query, corpus : array-like or list of str
            Data shaped like the training data.
        k : int, default=5
            Neighbours per query (at most ``len(corpus)``).

        Returns
        -------
        list of lists of (index, similarity, item)
            Per query, the nearest corpus items first: their index in
            ``corpus``, the cosine similarity of the codes (1 = same direction)
            and the item itself.
        """
        indices, similarities = self.nearest(query, k, index=corpus)
        pick = corpus.iloc.__getitem__ if hasattr(corpus, "iloc") else corpus.__getitem__
        return [
            [(int(i), float(v), pick(int(i))) for i, v in zip(row, values, strict=True)]
            for row, values in zip(indices, similarities, strict=True)
        ]

    def _column_losses(self, values: NDArray[Any]) -> NDArray[np.float64]:
        return self._column_losses_and_row_scores(values)[0]

    def _column_losses_and_row_scores(
        self, values: NDArray[Any]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Every column's loss and each row's score (their mean) from one forward pass.

        The row scores are those of :meth:`reconstruction_error`, bit for bit.
        """

        def run(module: TabularAutoencoder, x: torch.Tensor) -> torch.Tensor:
            losses = module.column_losses(x)
            return torch.cat([losses, losses.mean(dim=1, keepdim=True)], dim=1)

        both = self._map_batches(values, run).numpy().astype(np.float64)
        return both[:, :-1], both[:, -1]

    def _typical_column_losses(self, values: NDArray[Any]) -> NDArray[np.float64]:
        """Median loss of each column over the training rows where it is present."""
        losses = self._column_losses(values)
        p = len(self.table_schema_.numeric)
        present = np.concatenate([values[:, p : 2 * p] > 0, values[:, 2 * p :] > 0], axis=1)
        typical = np.array(
            [
                np.median(losses[present[:, j], j]) if present[:, j].any() else 1.0
                for j in range(losses.shape[1])
            ]
        )
        floored: NDArray[np.float64] = np.maximum(typical, 1e-6)
        return floored

    @piecewise
    def explain(self, X: Any) -> Any:
        """Each column's contribution to each row's score (``arch='tabular'`` only).

        A column's loss in a row divided by its typical (median) loss on the
        training data, so that columns are comparable: 1 is ordinary, 20 means
        twenty times worse than usual for that column. Missing values
        contribute 0; a category never seen in training contributes a lot.

        Returns
        -------
        pandas.DataFrame of shape (n_samples, n_columns)
            One column per table column, the same index as ``X`` when it is a
            DataFrame.
        """
        import pandas as pd

        self._check_fitted()
        if self.arch_ != "tabular":
            raise InvalidInputError(
                f"explain needs a tabular model (arch='tabular'); this one has arch={self.arch_!r}."
            )
        values = self._prepare_for_inference(X)
        contributions = self._column_losses(values) / self.column_scales_
        index = X.index if isinstance(X, pd.DataFrame) else None
        return pd.DataFrame(contributions, columns=self.table_schema_.columns, index=index)

    @piecewise
    def denoise(self, X: Any) -> NDArray[np.float32]:
        """Remove noise from ``X`` with a model trained with ``noise``.

        The same computation as :meth:`reconstruct`; a model fitted with
        ``noise="gaussian"`` (or another corruption) has learnt to map
        corrupted inputs to clean ones.

        Parameters
        ----------
        X : array-like or Stream
            Noisy data shaped like the training data. uint8 input is divided
            by 255.

        Returns
        -------
        ndarray of the same shape as ``X``, float32
            The cleaned data, in [0, 1] for a sigmoid output.
        """
        return self.reconstruct(X)

    def _variational_module(self, method: str) -> VariationalAutoencoder:
        self._check_fitted()
        if not isinstance(self.module_, VariationalAutoencoder):
            raise InvalidInputError(
                f"{method} needs a variational autoencoder (arch='vae' or 'conv_vae'); this "
                f"model has arch={self.arch_!r}."
            )
        return self.module_

    @piecewise
    def negative_elbo(
        self, X: Any, *, n_samples: int = 0, random_state: int = 0
    ) -> NDArray[np.float64]:
        """Negative evidence lower bound of each sample (VAE only): an outlier score.

        ``reconstruction loss summed over the input values + KL(q(z|x) || p(z))``,
        with the training loss as the reconstruction term (binary cross-entropy
        for a sigmoid output trained with ``loss="bce"``, else squared error).
        The higher, the less likely the sample under the model.

        Parameters
        ----------
        X : array-like or Stream
            Data shaped like the training data.
        n_samples : int, default=0
            0 decodes the posterior mean (deterministic); ``n >= 1`` averages
            the reconstruction term over ``n`` samples of ``z`` (Monte Carlo).
        random_state : int, default=0
            Seed of the Monte-Carlo samples: the same seed, the same scores.

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        module = self._variational_module("negative_elbo")
        n_samples = _check_count("n_samples", n_samples)  # 0: the posterior mean
        values = self._prepare_for_inference(X)
        metric = "bce" if self.loss_ == "bce" else "mse"
        generator = torch.Generator(device=self.device_).manual_seed(_seed_from(random_state))

        def summed_error(z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
            logits = module.decode_logits(z)
            if self.output_activation_ == "sigmoid":
                error = per_sample_error(logits, x, metric, from_logits=True)
            else:
                error = per_sample_error(self._clip(logits), x, metric, from_logits=False)
            return error * x[0].numel()  # a sum over the input values, as in the ELBO

        def run(network: ReconstructionModule, x: torch.Tensor) -> torch.Tensor:
            mean, log_var = module.posterior(x)
            if n_samples == 0:
                reconstruction = summed_error(mean, x)
            else:
                draws = [module.sample_latent(mean, log_var, generator) for _ in range(n_samples)]
                reconstruction = torch.stack([summed_error(z, x) for z in draws]).mean(dim=0)
            return reconstruction + gaussian_kl(mean, log_var)

        # The draws come from one generator: blocks run in order, on this thread.
        values_out = self._map_batches(values, run, parallel=False)
        return values_out.numpy().astype(np.float64)

    def sample(self, n: int, *, random_state: int | None = None) -> NDArray[np.float32]:
        """Draw ``n`` new samples by decoding codes from the prior (VAE only).

        Returns
        -------
        ndarray of shape (n, *input_shape_)
            In [0, 1] for a sigmoid output; clipped to the training range otherwise.
        """
        module = self._variational_module("sample")
        n = _check_count("The number of samples n", n)
        generator = torch.Generator(device=self.device_).manual_seed(_seed_from(random_state))
        module.eval()
        with num_threads(self._threads()), torch.inference_mode():
            z = torch.randn((n, module.latent_dim), generator=generator, device=self.device_)
            samples = self._clip(module.output(module.decode_logits(z)))
        return samples.cpu().numpy()

    @piecewise
    def reconstruction_error(self, X: Any, metric: str | None = None) -> NDArray[np.float64]:
        """Mean reconstruction error of each sample.

        Parameters
        ----------
        X : array-like or Stream
            Data shaped like the training data.
        metric : {"mae", "mse", "bce"}, optional
            Mean absolute error, mean squared error or binary cross-entropy
            (sigmoid-output models only). Defaults to the estimator's ``metric``
            for outlier detectors, ``"mae"`` otherwise. Tabular and text models
            have one score each (:attr:`metric_`) and take no other.

        Returns
        -------
        ndarray of shape (n_samples,)
            The higher, the worse the sample is reconstructed (the more abnormal).
        """
        own = self.metric_ if hasattr(self, "arch_") else None
        if metric is not None and own in ("nll", "column_loss") and metric != own:
            raise InvalidInputError(
                f"A {self.arch_} model scores samples by {own!r} only; got metric={metric!r}. "
                "Leave metric unset."
            )
        values = self._prepare_for_inference(X)
        return self._errors(values, metric or self.metric_)

    def _default_metric(self) -> str:
        return "mae"

    @property
    def metric_(self) -> str:
        """Name of the score :meth:`reconstruction_error` computes by default.

        ``"nll"`` (per-byte negative log-likelihood) for text models,
        ``"column_loss"`` (mean per-column loss) for tabular models, the
        ``metric`` parameter (``"mae"`` for :class:`Autoencoder`) otherwise.
        """
        self._check_fitted()
        if self.arch_ == "sequence":
            return "nll"
        if self.arch_ == "tabular":
            return "column_loss"
        return self._default_metric()

    # -------------------------------------------------------------- persistence

    def _fitted_state(self) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
        """Fitted attributes split into JSON-able values and arrays."""
        json_state: dict[str, Any] = {
            "arch_": self.arch_,
            "input_shape_": list(self.input_shape_),
            "n_features_in_": self.n_features_in_,
            "scales_uint8_": self.scales_uint8_,
            "output_activation_": self.output_activation_,
            "loss_": self.loss_,
            "history_": self.history_,
            "n_epochs_": self.n_epochs_,
            "best_epoch_": self.best_epoch_,
            "fit_time_": self.fit_time_,
        }
        if hasattr(self, "feature_names_in_"):
            json_state["feature_names_in_"] = [str(n) for n in self.feature_names_in_]
        if hasattr(self, "table_schema_"):
            json_state["table_schema_"] = self.table_schema_.to_json()
        arrays: dict[str, NDArray[Any]] = {"data_min_": self.data_min_, "data_max_": self.data_max_}
        if hasattr(self, "column_scales_"):
            arrays["column_scales_"] = self.column_scales_
        if hasattr(self, "reference_codes_"):
            arrays["reference_codes_"] = np.ascontiguousarray(self.reference_codes_)
        return json_state, arrays

    def _restore_fitted_state(self, state: dict[str, Any], arrays: dict[str, NDArray[Any]]) -> None:
        """Set the fitted attributes saved by :meth:`_fitted_state`.

        A model file is untrusted input: anything ``fit`` cannot have produced (a
        wrong type, a size that disagrees with another) raises ``ValueError``,
        which ``load`` reports as a :class:`ModelFileError`.
        """
        shape = state["input_shape_"]
        if not isinstance(shape, list) or not 1 <= len(shape) <= 3:
            raise ValueError(
                f"input_shape_ must list 1 to 3 sizes; got {persistence.short_repr(shape)}"
            )
        self.input_shape_ = tuple(persistence.check_int(s, "input_shape_", low=1) for s in shape)
        # Models saved before arch_ existed were dense or used their arch parameter.
        arch = state.get("arch_", "dense" if self.arch == "auto" else self.arch)
        self.arch_ = persistence.check_choice(arch, "arch_", ARCHITECTURES)
        n_features = math.prod(self.input_shape_)
        # Tables count columns (checked with the schema below); other models, values.
        self.n_features_in_ = persistence.check_int(
            state["n_features_in_"],
            "n_features_in_",
            low=1 if self.arch_ == "tabular" else n_features,
            high=n_features,
        )
        self.scales_uint8_ = persistence.check_bool(state["scales_uint8_"], "scales_uint8_")
        outputs, losses = {
            "sequence": (("softmax",), ("nll",)),
            "tabular": (("mixed",), ("mixed",)),
        }.get(self.arch_, (("sigmoid", "linear"), ERROR_METRICS))
        self.output_activation_ = persistence.check_choice(
            state["output_activation_"], "output_activation_", outputs
        )
        self.loss_ = persistence.check_choice(state["loss_"], "loss_", losses)
        if self.loss_ == "bce" and self.output_activation_ != "sigmoid":
            raise ValueError("loss_='bce' needs output_activation_='sigmoid'")
        history = state["history_"]
        if not isinstance(history, dict) or not all(isinstance(v, list) for v in history.values()):
            raise ValueError("history_ must map metric names to lists of numbers")
        self.history_ = {
            str(k): [persistence.check_real(v, f"history_[{k!r}]") for v in values]
            for k, values in history.items()
        }
        self.n_epochs_ = persistence.check_int(state["n_epochs_"], "n_epochs_")
        best = state["best_epoch_"]
        self.best_epoch_ = None if best is None else persistence.check_int(best, "best_epoch_")
        self.fit_time_ = persistence.check_real(state["fit_time_"], "fit_time_")
        if "feature_names_in_" in state:
            names = state["feature_names_in_"]
            if (
                not isinstance(names, list)
                or not all(isinstance(name, str) for name in names)
                or (self.arch_ != "tabular" and len(names) != n_features)
            ):
                raise ValueError(f"feature_names_in_ must list {n_features} column names")
            self.feature_names_in_ = np.asarray(names, dtype=object)
        if self.arch_ == "tabular":
            if not isinstance(state.get("table_schema_"), dict):
                raise ValueError("a tabular model needs its table_schema_")
            schema = TableSchema.from_json(state["table_schema_"])
            if (schema.width,) != self.input_shape_:
                raise ValueError(f"table_schema_ describes {schema.width} values, not {shape}")
            if not all(math.isfinite(m) for m in schema.medians) or not all(
                math.isfinite(s) and s > 0 for s in schema.scales
            ):
                raise ValueError("table_schema_ needs finite medians and positive scales")
            self.table_schema_ = schema
            n_columns = len(schema.columns)
            # Files from before tables counted columns hold the packed width instead.
            self._legacy_table = self.n_features_in_ != n_columns
            if self._legacy_table and self.n_features_in_ != n_features:
                raise ValueError(f"n_features_in_ must be {n_columns}, the table's columns")
            if self._legacy_table and "feature_names_in_" in state:
                raise ValueError("feature_names_in_ belongs with n_features_in_ columns")
            self.n_features_in_ = n_columns
            if len(getattr(self, "feature_names_in_", schema.columns)) != n_columns:
                raise ValueError(f"feature_names_in_ must list {n_columns} column names")
            column_scales = persistence.check_array(arrays, "column_scales_", (n_columns,))
            self.column_scales_ = column_scales.astype(np.float64)
        if "reference_codes_" in arrays:
            codes = persistence.check_array(arrays, "reference_codes_", (None, self.latent_dim))
            if codes.shape[0] == 0:
                raise ValueError("the fitted array reference_codes_ is empty")
            self.reference_codes_ = codes.astype(np.float32)
        self.data_min_ = persistence.check_array(arrays, "data_min_", (n_features,)).astype(
            np.float32
        )
        self.data_max_ = persistence.check_array(arrays, "data_max_", (n_features,)).astype(
            np.float32
        )

    def _build_module(self, generator: torch.Generator) -> ReconstructionModule:
        """A freshly initialised network for ``arch`` and the fitted input shape.

        Weights come from ``generator``; torch's global generator, which some
        layers' default initialisation draws from before being overwritten, is
        left as it was.
        """
        with torch.random.fork_rng(devices=[]):
            return self._build_module_from(generator)

    def _build_module_from(self, generator: torch.Generator) -> ReconstructionModule:
        hidden = self._validated_hidden_dims()
        latent = int(self.latent_dim)
        if self.arch_ == "tabular":
            schema = self.table_schema_
            return TabularAutoencoder(
                TabularConfig(
                    input_shape=self.input_shape_,
                    n_numeric=len(schema.numeric),
                    category_sizes=tuple(schema.category_sizes),
                    latent_dim=latent,
                    hidden_dims=hidden or TabularConfig.hidden_dims,
                    activation=self.activation,
                ),
                generator=generator,
            )
        if self.arch_ == "sequence":
            return SequenceAutoencoder(
                SequenceConfig(
                    input_shape=self.input_shape_,
                    latent_dim=latent,
                    hidden_dim=hidden[0] if hidden else SequenceConfig.hidden_dim,
                ),
                generator=generator,
            )
        if self.arch_ in ("conv", "conv_vae"):
            conv = ConvConfig(
                input_shape=self.input_shape_,
                latent_dim=CONV_VAE_FEATURES if self.arch_ == "conv_vae" else latent,
                channels=hidden or ConvConfig.channels,
                activation=self.activation,
                output_activation=self.output_activation_,
            )
            body: ReconstructionModule = ConvAutoencoder(conv, generator=generator)
        else:
            if self.arch_ == "vae":  # the body's code is the last hidden layer
                hidden = hidden or VAE_HIDDEN_DIMS
                hidden, latent = hidden[:-1], hidden[-1]
            dense = DenseConfig(
                input_shape=self.input_shape_,
                latent_dim=latent,
                hidden_dims=hidden,
                activation=self.activation,
                output_activation=self.output_activation_,
            )
            body = DenseAutoencoder(dense, generator=generator)
        if self.invariance > 0:  # only dense and conv bodies get here (checked in fit)
            assert isinstance(body, DenseAutoencoder | ConvAutoencoder)
            shape = self.input_shape_
            image_shape = (1, *shape) if len(shape) == 2 else shape
            return InvariantAutoencoder(
                body,
                (int(image_shape[0]), int(image_shape[1]), int(image_shape[2])),
                weight=float(self.invariance),
            )
        if self.arch_ not in ("vae", "conv_vae"):
            return body
        return VariationalAutoencoder(
            body, int(self.latent_dim), beta=float(self.beta), generator=generator
        )

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save the fitted estimator to the directory ``path``.

        Writes ``config.json`` (class, parameters, fitted state, versions) and
        ``model.safetensors`` (weights and arrays). No pickle is involved, so
        loading a model never executes code from the file. The write is atomic:
        an existing model at ``path`` is replaced only once the new one is
        complete.

        Returns
        -------
        pathlib.Path
            The directory written.
        """
        self._check_fitted()
        state, arrays = self._fitted_state()
        tensors = {f"module.{k}": v.detach().cpu() for k, v in self.module_.state_dict().items()}
        tensors.update(
            {f"state.{k}": torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
        )
        return persistence.write_model_dir(
            path,
            class_name=type(self).__name__,
            params=persistence.json_params(self.get_params(deep=False)),
            state=state,
            tensors=tensors,
        )

    @classmethod
    def load(cls: type[Self], path: str | os.PathLike[str], *, device: str | None = None) -> Self:
        """Load an estimator saved with :meth:`save`.

        Parameters
        ----------
        path : str or path-like
            The model directory.
        device : str, optional
            Overrides the saved ``device`` parameter (e.g. ``"cpu"`` to load a
            GPU-trained model on a machine without one).

        Raises
        ------
        ModelFileError
            If the directory is missing, incomplete, corrupted, or holds another
            kind of model.
        ModelVersionError
            If it was written by a newer hourglass.
        InvalidInputError
            If the device (saved, or passed here) is not one this machine can
            load the model on; pass ``device="cpu"``.
        """
        model = persistence.read_model_dir(path)
        if model.class_name != cls.__name__:
            raise ModelFileError(
                f"{path} holds a model of class {model.class_name}, not {cls.__name__}; load "
                "it with hourglass.load()."
            )
        params = dict(model.params)
        # Parameters added after a model was saved take the value it was trained with.
        for name, value in PARAMETERS_BEFORE_THEY_EXISTED.items():
            params.setdefault(name, value)
        if device is not None:
            params["device"] = device
        if not isinstance(params.get("device", "auto"), str):
            raise ModelFileError(f"{path} has an invalid 'device' parameter; re-save the model.")
        # Outside the try below: a device this machine lacks is the caller's to fix (pass
        # device="cpu"), not a damaged file.
        device_ = resolve_device(params.get("device", "auto"))
        if device_.type not in ("cpu", "cuda") or (
            device_.type == "cuda" and (device_.index or 0) >= torch.cuda.device_count()
        ):
            raise InvalidInputError(
                f"Cannot load the model in {path} on device {str(device_)!r}; pass "
                "device='cpu' (or 'cuda' on a machine with a GPU) to load()."
            )
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
            with (
                persistence.allocation_limit(4 * n_values + 2**20, 16 * len(weights) + 256),
                torch.random.fork_rng(devices=[]),
            ):
                module = estimator._build_module(torch.Generator())
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
