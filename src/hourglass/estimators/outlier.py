"""The :class:`AutoencoderOutlierDetector`: reconstruction error as an outlier score."""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from numbers import Real
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray
from sklearn.base import OutlierMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions

from hourglass import distributed, persistence
from hourglass.complexity import (
    DEFAULT_FEATURES,
    FEATURE_SETS,
    complexity_features,
    corrected_scores,
    fit_correction,
)
from hourglass.data.stream import Stream
from hourglass.distributed import broadcast_seed
from hourglass.estimators._base import BaseAutoencoder
from hourglass.estimators._input import PreparedInput
from hourglass.estimators._params import seed_from
from hourglass.estimators._streaming import StreamInput, piecewise
from hourglass.exceptions import HourglassError, InvalidInputError, InvalidParameterError
from hourglass.scoring import (
    ERROR_METRICS,
    THRESHOLD_CONSTRAINTS,
    conformal_p_values,
    result_column_names,
    result_columns,
    rule_threshold,
    take_rows,
    threshold_rule,
)

__all__ = ["AutoencoderOutlierDetector"]

#: Training samples used to fit the complexity correction (more change nothing measurable).
COMPLEXITY_FIT_SAMPLES = 5000
#: Images per chunk when computing complexity features (bounds memory).
COMPLEXITY_CHUNK = 4096
SCORE_TYPES = ("auto", "error", "complexity", "distance")


class AutoencoderOutlierDetector(OutlierMixin, BaseAutoencoder):  # type: ignore[misc]
    """Outlier detection by autoencoder reconstruction error.

    Train on normal data; samples the model reconstructs badly are outliers.
    Follows scikit-learn's outlier-detector conventions: :meth:`score_samples`
    is the negated reconstruction error (the lower, the more abnormal),
    ``decision_function = score_samples - offset_`` (negative for outliers),
    and :meth:`predict` returns +1 for inliers and -1 for outliers.

    The threshold comes from exactly one of three rules:

    - ``fpr=alpha`` (the default, with alpha = 0.01): a calibration split of
      the training data is held out of training, and the threshold is set by
      split-conformal calibration so that at most a fraction ``alpha`` of normal
      data is flagged;
    - ``contamination=c``: the threshold is the (1 - c) quantile of the errors
      of all the training data;
    - ``threshold=t``: a fixed reconstruction error.

    Whenever a calibration split exists (``calibration_fraction > 0``),
    :meth:`p_values` gives conformal p-values against it.

    Parameters
    ----------
    arch, latent_dim, hidden_dims, activation, output_activation, loss, learning_rate, \
weight_decay, epochs, batch_size, shuffle, validation_fraction, early_stopping, \
patience, device, num_threads, mixed_precision, beta, categorical_columns, noise, noise_strength, \
invariance, verbose, random_state
        As in :class:`hourglass.Autoencoder`.
    trim : float in [0, 0.5) or "auto", default="auto"
        ``arch="tabular"`` only: contamination-robust training. The fraction of
        the rows of every training batch with the highest loss is left out of
        the loss (a trimmed mean), so that outliers in the training data, which
        reconstruct worst, do not teach the model to reconstruct them.
        ``"auto"`` trims 0.2 for tabular models (a fifth: on ADBench's dev
        sets, 0.2 to 0.3 did alike, and trimming cost almost nothing on clean
        training data) and nothing for other families; 0 trains on every row.
    metric : {"mae", "mse", "bce"}, default="mae"
        Reconstruction error used as the outlier score. Mean absolute error is
        the most robust default; binary cross-entropy rewards simple (mostly
        dark) images and should be used with care. Text models
        (``arch="transformer"`` or ``"sequence"``) are always scored by their
        negative log-likelihood of the text and tabular models by the mean per-column loss;
        ``metric_`` names the score in use.
    score_type : {"auto", "error", "complexity", "distance"}, default="auto"
        The outlier score that is thresholded. ``"error"``: the reconstruction
        error (``metric``). ``"complexity"`` (images only): the log of the
        error minus its expected value for an image that complex (total variation
        and gradient energy, fitted on the training data; see
        :mod:`hourglass.complexity`), so that simple outliers that reconstruct
        well (MNIST digits under a Fashion-MNIST model) are caught too.
        ``"distance"`` (tables only): robust z-scores of how far a row lies
        from the training rows: the larger of the Mahalanobis distance of its
        code and scaled numbers and the mean absolute scaled value of its
        numbers, averaged (tables of numbers only) with the distance of its
        numbers to their 10th nearest of up to 1,000 training rows, or (tables
        with categories) the larger of those and the categories' loss, all
        fitted on the training rows that reconstruct best (the likeliest
        outliers left out); on ADBench it ranks outliers better than the error.
        ``"auto"``: ``"complexity"`` for images and ``"distance"`` for tables
        unless a fixed ``threshold`` is given, ``"error"`` otherwise.
        ``score_type_`` says which is used.
    fpr : float in (0, 1) or None, default=None
        Target false-positive rate for the conformal threshold. Used (with
        0.01) when neither ``contamination`` nor ``threshold`` is given.
    contamination : float in (0, 0.5] or None, default=None
        Expected fraction of outliers in the training data.
    threshold : float or None, default=None
        A fixed threshold on the outlier score (the reconstruction error unless
        ``score_type="complexity"``); scores above it are outliers.
    calibration_fraction : float in [0, 1), default=0.2
        Fraction of the training data held out of training for calibration
        (thresholds at a given ``fpr``, and p-values). Must be positive when
        the threshold rule is ``fpr``.

    Attributes
    ----------
    threshold_ : float
        Outlier score above which a sample is an outlier.
    score_type_ : {"error", "complexity", "distance"}
        The outlier score in use (``score_type`` with ``"auto"`` resolved).
    complexity_coef_ : ndarray of shape (3,)
        With ``score_type_ == "complexity"``: the coefficients of the expected log
        error (one per complexity feature, then the intercept).
    complexity_features_ : {"gradient", "zlib"}
        With ``score_type_ == "complexity"``: the complexity features in use
        (:func:`hourglass.complexity.complexity_features`). Fitted models use
        ``"gradient"``; models saved before it existed load with ``"zlib"`` and
        score as they did.
    offset_ : float
        ``-threshold_``, so that ``decision_function = score_samples - offset_``.
    threshold_method_ : {"fpr", "contamination", "fixed"}
        Which rule set the threshold.
    calibration_scores_ : ndarray of shape ``(n_calibration_,)``
        Outlier scores of the held-out calibration samples (empty without
        calibration).
    n_calibration_ : int
        Number of calibration samples.
    distance_location_ : ndarray of shape (latent_dim + n_numeric,)
        With ``score_type_ == "distance"``: the mean of the codes and scaled
        numbers of the training rows that reconstruct best (the worst fifth
        left out), the centre of the Mahalanobis distance.
    distance_precision_ : ndarray of shape (latent_dim + n_numeric, latent_dim + n_numeric)
        With ``score_type_ == "distance"``: the inverse of their Ledoit-Wolf
        shrunk covariance.
    distance_reference_ : ndarray of shape (n_reference, 2 * n_numeric) or None
        With ``score_type_ == "distance"``: the scaled numbers of those rows
        and their presence flags (at most 1,000 rows, evenly thinned),
        against which the score's local term measures each row's distance to
        its 10th nearest neighbour. None for tables with categorical columns
        or without numeric ones.
    distance_scaling_ : ndarray of shape (2, 4)
        With ``score_type_ == "distance"``: the median (first row) and
        interquartile range (second row) of the logarithm of each of the
        score's four terms on those rows, which turn them into robust
        z-scores (three columns for tables with categories or without
        numbers, which have no local term, and in models saved before it).
    module_ : hourglass.nn.ReconstructionModule
        The trained network.
    arch_ : str
        The family actually used (``arch`` with ``"auto"`` resolved).
    input_shape_ : tuple of int
        Shape of one training sample.
    n_features_in_ : int
        Number of values per sample (product of ``input_shape_``).
    feature_names_in_ : ndarray of str
        Column names, when fitted on a DataFrame with string column names.
    scales_uint8_ : bool
        Whether the training data was uint8 and scaled by 1/255.
    output_activation_, loss_ : str
        The resolved output activation and loss.
    data_min_, data_max_ : ndarray of shape ``(n_features_in_,)``
        Per-feature range of the training data (linear outputs are clipped to it).
    history_ : dict of str to list of float
        Per-epoch ``loss``, ``mae``, ``epoch_time`` (seconds) and, with
        validation, ``val_loss`` and ``val_mae``.
    n_epochs_ : int
        Epochs actually run.
    best_epoch_ : int or None
        0-based epoch whose weights were restored by early stopping.
    fit_time_ : float
        Seconds spent in :meth:`fit`.
    device_ : torch.device
        Where the model lives.
    table_schema_ : hourglass.tabular.TableSchema
        ``arch_ == "tabular"`` only: each column's type, the medians and
        interquartile ranges that scale the numbers, and the categories'
        vocabularies, fitted on the training rows.
    column_scales_ : ndarray of shape (n_columns,)
        ``arch_ == "tabular"`` only: each column's typical (median) loss on the
        training rows; :meth:`explain` divides by it.
    vocabulary_, vocabulary_counts_ : list of str, list of int
        ``arch_ == "transformer"`` only: the training texts' most frequent
        words (lowered; at most 50,000) and their counts, with which
        :meth:`denoise` corrects words it does not know.
    reference_codes_ : ndarray of shape (n_references, latent_dim)
        After :meth:`set_index`: the codes of the reference samples that
        :meth:`nearest` searches (saved with the model).

    Examples
    --------
    >>> import numpy as np
    >>> from hourglass import AutoencoderOutlierDetector
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(500, 8)).astype(np.float32)
    >>> det = AutoencoderOutlierDetector(latent_dim=2, epochs=5, fpr=0.05, verbose=0,
    ...                                  random_state=0).fit(X)
    >>> det.predict([[0.0] * 8, [9.0] * 8])
    array([ 1, -1])
    >>> float(det.p_values([[9.0] * 8])[0]) < 0.05
    True
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **BaseAutoencoder._parameter_constraints,
        "metric": [StrOptions(set(ERROR_METRICS))],
        **THRESHOLD_CONSTRAINTS,  # fpr, contamination, threshold: shared with hourglass score
        "calibration_fraction": [Interval(Real, 0, 1, closed="left")],
        "score_type": [StrOptions(set(SCORE_TYPES))],
    }

    def __init__(
        self,
        *,
        arch: str = "auto",
        latent_dim: int = 64,
        hidden_dims: tuple[int, ...] = (),
        activation: str = "relu",
        output_activation: str = "auto",
        loss: str = "auto",
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        epochs: int | str = "auto",
        batch_size: int = 64,
        shuffle: bool = True,
        validation_fraction: float | None = None,
        early_stopping: bool = False,
        patience: int = 5,
        device: str = "auto",
        num_threads: int | None = None,
        mixed_precision: bool = False,
        beta: float = 1.0,
        categorical_columns: tuple[str, ...] | None = None,
        noise: str | None = None,
        noise_strength: float = 0.3,
        invariance: float = 0.0,
        trim: float | str = "auto",
        verbose: int = 1,
        random_state: Any = None,
        metric: str = "mae",
        fpr: float | None = None,
        contamination: float | None = None,
        threshold: float | None = None,
        calibration_fraction: float = 0.2,
        score_type: str = "auto",
    ) -> None:
        self.arch = arch
        self.latent_dim = latent_dim
        self.hidden_dims = hidden_dims
        self.activation = activation
        self.output_activation = output_activation
        self.loss = loss
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.patience = patience
        self.device = device
        self.num_threads = num_threads
        self.mixed_precision = mixed_precision
        self.beta = beta
        self.categorical_columns = categorical_columns
        self.noise = noise
        self.noise_strength = noise_strength
        self.invariance = invariance
        self.trim = trim
        self.verbose = verbose
        self.random_state = random_state
        self.metric = metric
        self.fpr = fpr
        self.contamination = contamination
        self.threshold = threshold
        self.calibration_fraction = calibration_fraction
        self.score_type = score_type

    def _default_metric(self) -> str:
        return str(self.metric)

    def _threshold_rule(self) -> str:
        rule = (
            threshold_rule(
                fpr=self.fpr,
                contamination=self.contamination,
                threshold=self.threshold,
                caller=type(self).__name__,
            )
            or "fpr"
        )
        if rule == "fpr" and self.calibration_fraction <= 0:
            raise InvalidParameterError(
                "The fpr threshold needs held-out calibration data, but "
                "calibration_fraction=0. Use calibration_fraction > 0 (e.g. 0.2), or set "
                "'contamination' or 'threshold' instead."
            )
        return rule

    @_fit_context(prefer_skip_nested_validation=True)  # type: ignore[untyped-decorator]
    def fit(
        self,
        X: Any,
        y: Any = None,
        *,
        validation_data: Any = None,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        resume: bool = False,
    ) -> AutoencoderOutlierDetector:
        """Train on (mostly) normal data and set the outlier threshold.

        Parameters
        ----------
        X : array-like, torch.Tensor, pandas.DataFrame or Stream
            Training data of shape (n_samples, n_features), (n, h, w) or
            (n, c, h, w). uint8 data is divided by 255. A
            :class:`hourglass.data.stream.Stream` (files larger than memory)
            is read in pieces: a checking pass, then shuffled batches through
            a bounded buffer (numeric models only).
        y : None
            Ignored; present for scikit-learn compatibility.
        validation_data : array-like, optional
            As in :meth:`hourglass.Autoencoder.fit`.
        checkpoint_dir : path, optional
            Save the training state to ``checkpoint_dir/checkpoint.safetensors``
            after every epoch (atomically: an interruption never leaves a
            partial file).
        resume : bool, default=False
            With ``checkpoint_dir``: continue from its checkpoint if there is
            one (else start afresh). The resumed fit ends with the same weights
            as an uninterrupted one (same data, parameters and seed, on CPU).
            ``epochs`` may be raised to train further.

        Returns
        -------
        self : AutoencoderOutlierDetector
            The fitted detector.

        Notes
        -----
        **Data-parallel training.** While a ``torch.distributed`` process group of
        several processes is initialised (``hourglass train --nproc N``, or
        ``torchrun`` and ``torch.distributed.init_process_group``; see
        :mod:`hourglass.distributed`), every process calls ``fit`` with the same
        data and settings, and the network trains with
        ``torch.nn.parallel.DistributedDataParallel``: each process computes the
        gradient of its share of every batch, ``batch_size / world_size`` rows
        (``batch_size`` stays the global batch, so it must be a multiple of the
        number of processes). Every process ends with the same fitted model
        (statistics of the data and the threshold included), equal to a single-process fit's up
        to rounding; save it from rank 0 only. Checkpoints are written by rank 0.
        """
        rule = self._threshold_rule()
        prepared = self._prepare_training_input(X)
        output_activation, _ = self._resolve_output_and_loss(prepared)
        if self.metric == "bce" and output_activation != "sigmoid":
            raise InvalidInputError(
                "metric='bce' needs data in [0, 1] and a sigmoid output; use metric='mae' or "
                "'mse' for this data (or output_activation='sigmoid' with data scaled to [0, 1])."
            )
        seed = broadcast_seed(seed_from(self.random_state))  # the same in every process
        if isinstance(prepared, StreamInput):
            return self._fit_stream(prepared, rule, seed, validation_data, checkpoint_dir, resume)
        values = prepared.values
        n = values.shape[0]
        n_calibration = math.ceil(self.calibration_fraction * n) if self.calibration_fraction else 0
        if n_calibration and n - n_calibration < 1:
            raise self._too_few_error(n)
        rng = np.random.default_rng(seed + 1)  # a stream independent of the training one
        order = rng.permutation(n)
        calibration = values[np.sort(order[:n_calibration])]
        training = values[np.sort(order[n_calibration:])]

        def complexity_rows() -> NDArray[Any]:
            if len(training) <= COMPLEXITY_FIT_SAMPLES:
                return training
            return training[rng.choice(len(training), COMPLEXITY_FIT_SAMPLES, replace=False)]

        return self._train_and_calibrate(
            replace(prepared, values=training),
            calibration if n_calibration else None,
            complexity_rows,
            rule,
            values,
            seed=seed,
            validation_data=validation_data,
            checkpoint_dir=checkpoint_dir,
            resume=resume,
        )

    def _fit_stream(
        self,
        prepared: StreamInput,
        rule: str,
        seed: int,
        validation_data: Any,
        checkpoint_dir: str | os.PathLike[str] | None,
        resume: bool,
    ) -> AutoencoderOutlierDetector:
        """:meth:`fit` on a stream; the calibration rows are drawn row by row."""
        stream = prepared.stream
        fraction = float(self.calibration_fraction or 0.0)
        calibration, training = stream.split(fraction, seed + 1)
        n_calibration = calibration.n_rows if fraction else 0
        if fraction and (n_calibration < 1 or training.n_rows < 1):
            raise self._too_few_error(stream.n_rows)
        return self._train_and_calibrate(
            replace(prepared, stream=training, n_samples=training.n_rows),
            calibration if n_calibration else None,
            functools.partial(self._stream_rows, training, prepared.encode, seed),
            rule,
            stream,
            seed=seed,
            validation_data=validation_data,
            checkpoint_dir=checkpoint_dir,
            resume=resume,
        )

    def _train_and_calibrate(
        self,
        training: PreparedInput | StreamInput,
        calibration: NDArray[Any] | Stream | None,
        complexity_rows: Callable[[], NDArray[Any]],
        rule: str,
        data: NDArray[Any] | Stream,
        *,
        seed: int,
        validation_data: Any,
        checkpoint_dir: str | os.PathLike[str] | None,
        resume: bool,
    ) -> AutoencoderOutlierDetector:
        """Train on ``training``; fit the score, calibrate and threshold (``data``: all rows)."""
        self._fit_prepared(
            training,
            validation_data=validation_data,
            seed=seed,
            checkpoint_dir=checkpoint_dir,
            resume=resume,
        )
        self.score_type_ = self._resolve_score()
        if self.score_type_ == "complexity":
            self._fit_complexity(complexity_rows())
        elif self.score_type_ == "distance":
            self.family_.fit_distance_score(self, complexity_rows())
        if calibration is None:
            self.n_calibration_ = 0
            self.calibration_scores_ = np.empty(0, dtype=np.float64)
        else:
            self.calibration_scores_ = self._scores_of(calibration)
            self.n_calibration_ = int(self.calibration_scores_.size)
        self._set_threshold(rule, data)
        return self

    def _scores_of(self, data: NDArray[Any] | Stream) -> NDArray[np.float64]:
        """Outlier scores of prepared rows, or of a stream (read piece by piece).

        In data-parallel training each process scores its own blocks of a stream
        and every process gets all the scores, in rank order.
        """
        if not isinstance(data, Stream):
            return self._outlier_scores(data)
        if distributed.world_size() == 1:
            return self.outlier_score(data)
        part = data.shard(distributed.rank(), distributed.world_size())
        own = self.outlier_score(part) if part.n_rows else np.empty(0, dtype=np.float64)
        return distributed.gather_arrays(own)

    def _fit_complexity(self, rows: NDArray[Any]) -> None:
        self.complexity_features_ = DEFAULT_FEATURES
        self.complexity_coef_ = fit_correction(
            self._errors(rows, self.metric), self._complexity(rows)
        )

    def _set_threshold(self, rule: str, data: NDArray[Any] | Stream) -> None:
        """Set ``threshold_`` by ``rule``; ``data`` is the training data (for ``contamination``)."""
        self.threshold_method_ = rule
        self.threshold_ = rule_threshold(
            rule,
            fpr=self.fpr,
            contamination=self.contamination,
            threshold=self.threshold,
            calibration_scores=self.calibration_scores_,
            scores=self._scores_of(data) if rule == "contamination" else None,
        )
        self.offset_ = -self.threshold_

    @staticmethod
    def _stream_rows(
        stream: Stream, encode: Callable[[Any], NDArray[Any]] | None, seed: int
    ) -> NDArray[Any]:
        """Up to ``COMPLEXITY_FIT_SAMPLES`` rows of a training stream, as the model reads them.

        Table streams are read as DataFrames and encoded (``encode``); others as arrays.
        """
        if encode is None:
            return np.asarray(stream.sample(COMPLEXITY_FIT_SAMPLES, seed=seed, as_frame=False))
        return encode(stream.sample(COMPLEXITY_FIT_SAMPLES, seed=seed, as_frame=True))

    def _too_few_error(self, n: int) -> InvalidInputError:
        return InvalidInputError(
            f"{type(self).__name__} holds out calibration_fraction="
            f"{self.calibration_fraction} of the data for calibration, which needs at "
            f"least 2 samples; got {n} sample(s). Pass more data, or use "
            "calibration_fraction=0 with 'contamination' or 'threshold'."
        )

    def _resolve_score(self) -> str:
        images = self.family_.input_kind(self.input_shape_) == "images"
        if self.score_type == "complexity" and not images:
            raise InvalidInputError(
                "score_type='complexity' measures the complexity of images; the data are "
                f"samples of shape {self.input_shape_} (arch={self.arch_!r}). Use "
                "score_type='error' (or 'auto')."
            )
        if self.score_type == "distance" and not self.family_.distance_score:
            raise InvalidInputError(
                "score_type='distance' measures how far table rows lie from the training rows; "
                f"this model has arch={self.arch_!r}. Use score_type='error' (or 'auto')."
            )
        if self.score_type == "auto" and self.threshold is None:
            if images:
                return "complexity"
            if self.family_.distance_score:
                return "distance"
        if self.score_type == "auto":
            return "error"
        return str(self.score_type)

    def _complexity(self, values: NDArray[Any]) -> NDArray[np.float64]:
        """Complexity features of prepared samples, as images scaled to [0, 1]."""
        # As the model reads them: uint8 is divided by 255 (whatever it was trained on);
        # floats are used as they are, in [0, 1] for a sigmoid output or uint8-trained
        # model, else mapped from the training range to [0, 1].
        low, high = 0.0, 1.0
        if not self.scales_uint8_ and self.output_activation_ != "sigmoid":
            low, high = float(self.data_min_.min()), float(self.data_max_.max())
        chunks = []
        for start in range(0, len(values), COMPLEXITY_CHUNK):
            chunk = values[start : start + COMPLEXITY_CHUNK].reshape(-1, *self.input_shape_)
            images = chunk.astype(np.float32)
            if chunk.dtype == np.uint8:
                images /= 255
            else:
                images = (images - low) / max(high - low, float(np.finfo(np.float32).tiny))
            chunks.append(complexity_features(images, self.complexity_features_))
        return np.concatenate(chunks) if chunks else np.empty((0, 2))

    def _errors_and_scores(
        self, values: NDArray[Any]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        errors = self._errors(values, self.metric)
        return errors, self._scores_given_errors(values, errors)

    def _scores_given_errors(
        self, values: NDArray[Any], errors: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """The outlier scores of prepared ``values`` whose reconstruction ``errors`` are known."""
        if self.score_type_ == "distance":
            return self.family_.distance_scores(self, values)
        if self.score_type_ == "complexity":
            return corrected_scores(errors, self._complexity(values), self.complexity_coef_)
        return errors

    def _default_result_columns(self, *, table: bool = True) -> tuple[str, ...]:
        """The results ``hourglass score`` writes for this model (``table``: data are a table)."""
        return result_column_names(
            outlier_score=self.score_type_ != "error",
            p_value=self.n_calibration_ > 0,
            top_columns=self.family_.explains and table,
        )

    def _result_columns(
        self,
        X: Any,
        errors: NDArray[np.float64],
        scores: NDArray[np.float64],
        *,
        threshold: float,
        columns: Sequence[str],
    ) -> dict[str, Any]:
        """The ``columns`` of :func:`hourglass.scoring.result_columns` for the samples ``X``."""
        return result_columns(
            errors,
            scores,
            threshold=threshold,
            calibration_scores=self.calibration_scores_,
            columns=columns,
            explain=lambda rows: self.explain(take_rows(X, rows)),
        )

    @property
    def score_name_(self) -> str:
        """What :meth:`outlier_score` computes, as reports name it.

        The error's metric (``metric_``), that metric ``", complexity-corrected"``,
        or ``"distance"``, following ``score_type_``.
        """
        self._check_fitted()
        if self.score_type_ == "complexity":
            return f"{self.metric_}, complexity-corrected"
        if self.score_type_ == "distance":
            return "distance"
        return self.metric_

    def _outlier_scores(self, values: NDArray[Any]) -> NDArray[np.float64]:
        return self._errors_and_scores(values)[1]

    @piecewise
    def errors_and_scores(self, X: Any) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """``reconstruction_error(X)`` and ``outlier_score(X)`` from one pass over ``X``.

        Parameters
        ----------
        X : array-like or Stream
            Data shaped like the training data; a stream is scored piece by piece.

        Returns
        -------
        errors, scores : ndarray of shape (n_samples,)
            The same array twice when ``score_type_ == "error"``.
        """
        return self._errors_and_scores(self._prepare_for_inference(X))

    @piecewise
    def outlier_score(self, X: Any) -> NDArray[np.float64]:
        """The score that is thresholded: the higher, the more abnormal.

        The reconstruction error (``metric``) when ``score_type_ == "error"``; with
        ``"complexity"``, the log error minus its expected value for an input
        that complex (see :mod:`hourglass.complexity`).

        Parameters
        ----------
        X : array-like or Stream
            Data shaped like the training data; a stream is scored piece by piece.

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        return self._outlier_scores(self._prepare_for_inference(X))

    @piecewise
    def score_samples(self, X: Any) -> NDArray[np.float64]:
        """Negated outlier score: the lower, the more abnormal.

        Parameters
        ----------
        X : array-like or Stream
            Data shaped like the training data; a stream is scored piece by piece.

        Returns
        -------
        ndarray of shape (n_samples,)
            ``-outlier_score(X)`` (the negated reconstruction error when
            ``score_type_ == "error"``).
        """
        return -self.outlier_score(X)

    @piecewise
    def decision_function(self, X: Any) -> NDArray[np.float64]:
        """``score_samples(X) - offset_``: negative for outliers, positive for inliers.

        Parameters
        ----------
        X : array-like or Stream
            Data shaped like the training data; a stream is scored piece by piece.

        Returns
        -------
        ndarray of shape (n_samples,)
            The lower, the more abnormal; below 0 means outlier.
        """
        return self.score_samples(X) - self.offset_

    @piecewise
    def predict(self, X: Any) -> NDArray[np.int64]:
        """Label each sample: +1 inlier, -1 outlier.

        Parameters
        ----------
        X : array-like or Stream
            Data shaped like the training data; a stream is scored piece by piece.

        Returns
        -------
        ndarray of shape (n_samples,)
            -1 where the outlier score exceeds ``threshold_``, else +1.
        """
        return np.where(self.decision_function(X) < 0, -1, 1).astype(np.int64)

    @piecewise
    def p_values(self, X: Any) -> NDArray[np.float64]:
        """Split-conformal p-values against the held-out calibration scores.

        For a normal sample, the p-value is (super-)uniform: ``P(p <= a) <= a``.
        The smaller, the stronger the evidence that the sample is abnormal.

        Parameters
        ----------
        X : array-like or Stream
            Data shaped like the training data; a stream is scored piece by piece.

        Returns
        -------
        ndarray of shape (n_samples,)
            Values in (0, 1].
        """
        self._check_fitted()
        if self.n_calibration_ == 0:
            raise HourglassError(
                "This detector was fitted with calibration_fraction=0, so it has no "
                "calibration errors to compute p-values from; refit with "
                "calibration_fraction > 0."
            )
        return conformal_p_values(self.outlier_score(X), self.calibration_scores_)

    # -------------------------------------------------------------- persistence

    def _fitted_state(self) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
        state, arrays = super()._fitted_state()
        state.update(
            threshold_=self.threshold_,
            threshold_method_=self.threshold_method_,
            n_calibration_=self.n_calibration_,
            score_type_=self.score_type_,
        )
        arrays["calibration_scores_"] = np.asarray(self.calibration_scores_, dtype=np.float64)
        if self.score_type_ == "complexity":
            state["complexity_features_"] = self.complexity_features_
            arrays["complexity_coef_"] = np.asarray(self.complexity_coef_, dtype=np.float64)
        if self.score_type_ == "distance":
            arrays.update(self.family_.distance_state(self))
        return state, arrays

    def _restore_fitted_state(self, state: dict[str, Any], arrays: dict[str, NDArray[Any]]) -> None:
        super()._restore_fitted_state(state, arrays)
        self.threshold_ = persistence.check_real(state["threshold_"], "threshold_", finite=True)
        self.offset_ = -self.threshold_
        self.threshold_method_ = persistence.check_choice(
            state["threshold_method_"], "threshold_method_", ("fpr", "contamination", "fixed")
        )
        self.n_calibration_ = persistence.check_int(state["n_calibration_"], "n_calibration_")
        scores = persistence.check_array(arrays, "calibration_scores_", (self.n_calibration_,))
        self.calibration_scores_ = scores.astype(np.float64)
        # Models saved before scores were selectable scored by the error.
        self.score_type_ = persistence.check_choice(
            state.get("score_type_", "error"), "score_type_", SCORE_TYPES[1:]
        )
        if self.score_type_ == "distance":
            self._restore_distance_state(arrays)
        if self.score_type_ == "complexity":
            coef = persistence.check_array(arrays, "complexity_coef_", (3,))
            if not np.isfinite(coef).all():
                raise ValueError("complexity_coef_ holds non-finite values.")
            self.complexity_coef_ = coef.astype(np.float64)
            # Models saved before the feature set was recorded used zlib's.
            self.complexity_features_ = persistence.check_choice(
                state.get("complexity_features_", "zlib"), "complexity_features_", FEATURE_SETS
            )

    def _restore_distance_state(self, arrays: dict[str, NDArray[Any]]) -> None:
        """The distance score's arrays, checked against the model they belong to."""
        if not self.family_.distance_score:
            raise ValueError(f"score_type_='distance' does not apply to arch_={self.arch_!r}")
        self.family_.restore_distance_state(self, arrays)
