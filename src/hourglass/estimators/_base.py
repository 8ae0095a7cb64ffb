"""What every hourglass estimator shares: parameters, fitting, batched inference, persistence.

Everything that depends on the kind of model lives with its family
(:mod:`hourglass.families`); the estimator keeps the scikit-learn contract and
delegates to ``family_``.
"""

from __future__ import annotations

import os
from numbers import Integral
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
from numpy.typing import NDArray
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import TransformerTags
from sklearn.utils.validation import check_is_fitted

from hourglass.estimators import _fitting, _params, _state
from hourglass.estimators._blocks import in_bfloat16, map_blocks
from hourglass.estimators._input import PreparedInput, shaped_like_training
from hourglass.estimators._similarity import SimilarityMixin
from hourglass.estimators._streaming import StreamInput, piecewise
from hourglass.exceptions import InvalidInputError, InvalidParameterError
from hourglass.exceptions import NotFittedError as HourglassNotFittedError
from hourglass.families import Family, choose_family, get_family, takes_missing_values
from hourglass.families._family import unsupported

__all__ = ["BaseAutoencoder"]

Self = TypeVar("Self", bound="BaseAutoencoder")


class BaseAutoencoder(SimilarityMixin, TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Shared implementation of :class:`Autoencoder` and :class:`AutoencoderOutlierDetector`.

    Not part of the public API: subclasses define ``__init__`` with their full,
    explicit parameter list, as scikit-learn requires.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = _params.PARAMETER_CONSTRAINTS

    # Set by subclasses' __init__; declared for type checkers.
    arch: str
    latent_dim: int
    hidden_dims: tuple[int, ...]
    activation: str
    output_activation: str
    loss: str
    learning_rate: float
    weight_decay: float
    epochs: int | str
    batch_size: int
    shuffle: bool
    validation_fraction: float | None
    early_stopping: bool
    patience: int
    device: str
    num_threads: int | None
    mixed_precision: bool
    beta: float
    categorical_columns: tuple[str, ...] | None
    noise: str | None
    noise_strength: float
    invariance: float
    trim: float | str
    verbose: int
    random_state: Any
    # Fitted attributes that only some families set; declared for type checkers.
    module_: Any
    table_schema_: Any
    column_scales_: NDArray[np.float64]
    distance_location_: NDArray[np.float64]
    distance_precision_: NDArray[np.float64]
    distance_scaling_: NDArray[np.float64]
    distance_reference_: NDArray[np.float64] | None
    _legacy_table: bool

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        # Every estimator here encodes (``transform``) into float32 codes,
        # whatever the input's dtype: the networks compute in float32.
        tags.transformer_tags = TransformerTags(preserves_dtype=["float32"])
        # The tabular family reads NaN as a missing value (arch="auto" trains it on
        # tables and 2-D arrays); the others need finite values.
        tags.input_tags.allow_nan = takes_missing_values(self.arch)
        return tags

    @property
    def family_(self) -> Family:
        """The fitted model's family (:mod:`hourglass.families`), named by ``arch_``."""
        if not hasattr(self, "arch_"):
            self._check_fitted()  # raises NotFittedError
        return get_family(self.arch_)

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
        """Validate the training data for the family that trains on it (``arch``)."""
        return choose_family(self, X).prepare_training(self, X)

    def _resolve_output_and_loss(self, prepared: PreparedInput | StreamInput) -> tuple[str, str]:
        """The output activation and loss training on ``prepared`` will use."""
        return get_family(prepared.family).output_and_loss(self, prepared)

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
        _fitting.fit_prepared(
            self,
            prepared,
            validation_data=validation_data,
            seed=seed,
            checkpoint_dir=checkpoint_dir,
            resume=resume,
        )

    def _prepare_validation(self, validation_data: Any) -> NDArray[Any]:
        prepared = self.family_.prepare_later(self, validation_data)
        if prepared.values.shape[1:] != self.input_shape_:
            raise InvalidInputError(
                f"validation_data has samples of shape {prepared.values.shape[1:]}, but the "
                f"training data has samples of shape {self.input_shape_}; they must match."
            )
        return prepared.values

    def _threads(self) -> int | None:
        """Intra-op thread count for torch, or None to leave torch's setting alone.

        ``num_threads=None`` lets the training loop measure which count is fastest
        (see hourglass.threads); inference then computes its blocks on as many
        threads as torch uses.
        """
        return None if self.num_threads is None else int(self.num_threads)

    def _trim_fraction(self) -> float:
        """The fraction of each training batch left out of the loss (``trim`` resolved)."""
        if self.trim == "auto":
            return self.family_.auto_trim
        return float(self.trim)

    # ---------------------------------------------------------------- inference

    def _check_fitted(self) -> None:
        try:
            check_is_fitted(self, "module_")
        except Exception as error:  # scikit-learn's NotFittedError
            raise HourglassNotFittedError(str(error)) from None

    def _prepare_for_inference(self, X: Any) -> NDArray[Any]:
        """``X`` validated by the family and shaped like the training samples."""
        self._check_fitted()
        values = self.family_.prepare_later(self, X).values
        return shaped_like_training(values, self.input_shape_, type(self).__name__)

    def _map_batches(self, values: NDArray[Any], fn: Any, *, parallel: bool = True) -> torch.Tensor:
        """Apply ``fn(module, x_block)`` to fixed-size blocks, in eval mode, without grad.

        A sample's outputs are the same bits whatever it is scored with (see
        :func:`hourglass.estimators._blocks.map_blocks`). ``parallel=False`` runs the
        blocks in order on this thread, for functions that draw random numbers.
        """
        module = self.module_
        module.eval()
        family = self.family_
        threads = self._threads()
        workers = torch.get_num_threads() if threads is None else threads
        return map_blocks(
            values,
            in_bfloat16(fn, module, _params.uses_bfloat16(self.mixed_precision, self.device_)),
            block_rows=family.inference_block_rows(self.input_shape_),
            device=self.device_,
            workers=workers if parallel else 1,
            groups=family.inference_groups(values),
            verbose=bool(self.verbose),
        )

    def _errors(self, values: NDArray[Any], metric: str) -> NDArray[np.float64]:
        return self.family_.scores(self, values, metric)

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
        return self._map_batches(values, lambda module, x: module.encode(x)).numpy()

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
            for a linear output. Text models return texts (a list of str): the
            transformer's words corrected towards its vocabulary, the GRU's
            greedily decoded bytes; tabular models a DataFrame with the table's
            columns (numbers in their original units, the most likely known
            category).
        """
        values = self._prepare_for_inference(X)
        return self.family_.reconstruct(self, values)  # type: ignore[no-any-return]

    @piecewise
    def explain(self, X: Any) -> Any:
        """Each column's contribution to each row's score (``arch='tabular'`` only).

        A column's loss in a row divided by its typical (median) loss on the
        training data, so that columns are comparable: 1 is ordinary, 20 means
        twenty times worse than usual for that column. Missing values
        contribute 0; a category never seen in training contributes a lot.

        Parameters
        ----------
        X : pandas.DataFrame, array-like of shape (n_samples, n_columns) or Stream
            Rows with the training table's columns.

        Returns
        -------
        pandas.DataFrame of shape (n_samples, n_columns)
            One column per table column, the same index as ``X`` when it is a
            DataFrame.
        """
        import pandas as pd

        family = self.family_
        if not family.explains:
            raise unsupported(self, "explain", "a tabular model (arch='tabular')")
        contributions, _ = family.explained_scores(self, self._prepare_for_inference(X))
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

    def _variational_family(self, method: str) -> Any:
        family = self.family_
        if not family.samples:
            raise unsupported(self, method, "a variational autoencoder (arch='vae' or 'conv_vae')")
        return family

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
        family = self._variational_family("negative_elbo")
        n_samples = _params.check_count("n_samples", n_samples)  # 0: the posterior mean
        values = self._prepare_for_inference(X)
        generator = torch.Generator(device=self.device_).manual_seed(
            _params.seed_from(random_state)
        )
        return family.negative_elbo(self, values, n_samples, generator)  # type: ignore[no-any-return]

    def sample(self, n: int, *, random_state: int | None = None) -> NDArray[np.float32]:
        """Draw ``n`` new samples by decoding codes from the prior (VAE only).

        Parameters
        ----------
        n : int
            Number of samples to draw.
        random_state : int or None, default=None
            Seeds the draws from the prior; the same seed gives the same samples.

        Returns
        -------
        ndarray of shape ``(n, *input_shape_)``
            In [0, 1] for a sigmoid output; clipped to the training range otherwise.
        """
        family = self._variational_family("sample")
        n = _params.check_count("The number of samples n", n)
        generator = torch.Generator(device=self.device_).manual_seed(
            _params.seed_from(random_state)
        )
        return family.sample(self, n, generator)  # type: ignore[no-any-return]

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
        own = self.family_.own_metric if hasattr(self, "arch_") else None
        if metric is not None and own is not None and metric != own:
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
        return self.family_.own_metric or self._default_metric()

    # -------------------------------------------------------------- persistence

    def _fitted_state(self) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
        """Fitted attributes split into JSON-able values and arrays."""
        return _state.fitted_state(self)

    def _restore_fitted_state(self, state: dict[str, Any], arrays: dict[str, NDArray[Any]]) -> None:
        """Set the fitted attributes saved by :meth:`_fitted_state` (ValueError if invalid)."""
        _state.restore_fitted_state(self, state, arrays)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save the fitted estimator to the directory ``path``.

        Writes ``config.json`` (class, parameters, fitted state, versions) and
        ``model.safetensors`` (weights and arrays). No pickle is involved, so
        loading a model never executes code from the file. The write is atomic:
        an existing model at ``path`` is replaced only once the new one is
        complete.

        Parameters
        ----------
        path : str or path-like
            The directory to write; a model already there is replaced.

        Returns
        -------
        pathlib.Path
            The directory written.
        """
        return _state.save_estimator(self, path)

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
        return _state.load_estimator(cls, path, device)
