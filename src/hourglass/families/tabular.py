"""The tabular family (``arch="tabular"``): tables of numbers and categories.

Each column keeps its type: numbers are scaled robustly and reconstructed with a
Huber loss, categories are predicted with cross-entropy, and missing values are
masked out. A row's score is its mean column loss; :meth:`TabularFamily.explain`
says which columns made it.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
import torch
from numpy.typing import NDArray

from hourglass import distributed, persistence
from hourglass.data.stream import Stream
from hourglass.estimators._input import PreparedInput, prepare_table
from hourglass.estimators._streaming import StreamInput, scan_table_stream
from hourglass.exceptions import InvalidInputError
from hourglass.families._family import ClusteringRecipe, Family
from hourglass.nn.tabular import TabularAutoencoder, TabularConfig
from hourglass.tabular import TableSchema

if TYPE_CHECKING:
    from hourglass.estimators._base import BaseAutoencoder
    from hourglass.nn import ReconstructionModule

__all__ = ["TABULAR_TRIM", "TabularFamily", "as_frame", "has_non_numeric_columns"]

#: Rows of a table stream its schema (medians, scales, vocabularies) is fitted on.
TABLE_SCHEMA_SAMPLE_ROWS = 100_000
#: ``trim="auto"`` for tabular models: the fraction of each training batch's rows with the
#: highest loss left out of the loss. On ADBench's 12 dev sets, whose training parts hold
#: 1-35% outliers, trimming a fifth raised the mean AUROC from 0.863 to 0.898 (0.2 to 0.3
#: performed alike); on their normal rows only it cost 0.003 (benchmarks/adbench.py).
TABULAR_TRIM = 0.2
#: The distance score is fitted on the training rows whose reconstruction error is at or
#: below this quantile: the likeliest outliers in the training data are left out.
DISTANCE_KEEP_QUANTILE = 0.8
#: Neighbours of a row in the manifold step of clustering tables: on load_digits, wine,
#: iris and breast_cancer, 15 gave 0.88, 0.96, 0.97, 0.95 and 30 gave 0.90, 0.95, 0.93, 0.95.
TABLE_CLUSTERING_NEIGHBORS = 15
#: Neighbours of the distance score's local term: a row's distance to its k-th nearest
#: reference row. Over 10 seeds of ADBench's 12 dev sets, adding the term raised the mean
#: AUROC from 0.910 to 0.915 and helped on every seed; k = 5 or 20 scored within 0.0006.
DISTANCE_NEIGHBORS = 10
#: At most this many reference rows (and this many values) are kept for the local term;
#: more kept rows are thinned evenly. They are saved with the model. On ADBench's dev sets
#: (10 seeds) thinning to 1,000 rows scored 0.9146, to 2,000 0.9141, keeping all (at
#: most 4,000 of the 5,000 rows the score is fitted on) 0.9137, and scores 4 times faster.
MAX_REFERENCE_ROWS = 1_000
MAX_REFERENCE_VALUES = 2**20
#: Added to the distance terms before their logarithm (a row at the centre scores finite).
LOG_FLOOR = 1e-12
#: Scales of the distance terms below this are treated as this (a constant term).
MIN_SPREAD = 1e-12


def nearest_distance(numbers: torch.Tensor, reference: torch.Tensor, k: int) -> torch.Tensor:
    """Each row's Euclidean distance to its ``k``-th nearest row of ``reference`` (float64).

    ``numbers`` (n, p) and ``reference`` (m, p), m >= k. The squared distances
    come from one matrix product of the rows extended by [1, |x|²] and the
    reference rows by [|r|², 1] (|x|² - 2 x·r + |r|² without an (n, m)
    temporary per term). The exported ONNX graph computes the same function.
    """
    numbers = numbers.to(torch.float64)
    ones = torch.ones_like(numbers[:, :1])
    rows = torch.cat([numbers, ones, (numbers * numbers).sum(dim=1, keepdim=True)], dim=1)
    squared_norms = (reference * reference).sum(dim=1, keepdim=True)
    columns = torch.cat([-2.0 * reference, squared_norms, torch.ones_like(squared_norms)], dim=1)
    squared = rows @ columns.T
    kth = torch.topk(squared, k, dim=1, largest=False).values[:, k - 1]
    return kth.clamp_min(0.0).sqrt()


def distance_log_terms(
    codes: torch.Tensor,
    numbers: torch.Tensor,
    category_losses: torch.Tensor | None,
    location: torch.Tensor,
    precision: torch.Tensor,
    reference: torch.Tensor | None = None,
    present: torch.Tensor | None = None,
    neighbors: int = DISTANCE_NEIGHBORS,
) -> torch.Tensor:
    """The terms of the distance score, per row, as logarithms (float64).

    1. the Mahalanobis distance of [code | numbers] (``location``, ``precision``);
    2. the mean absolute value of the numbers (``numbers``: scaled, 0 where missing);
    3. the mean loss of the categorical columns (``category_losses``: the
       model's cross-entropy of each row's categories, 0 where missing);
    4. with ``reference`` (typical training rows' scaled numbers, then their
       presence flags), the distance of the row's numbers and flags
       (``present``: 1 where a number is given) to its ``neighbors``-th
       nearest reference row. A row missing a number is near rows missing it
       too, not in the gap its median stands in.

    A term a table has no columns for is 0. The exported ONNX graph computes
    the same function.
    """
    numbers = numbers.to(torch.float64)
    centred = torch.cat([codes.to(torch.float64), numbers], dim=1) - location
    distance = ((centred @ precision) * centred).sum(dim=1).clamp_min(0.0).sqrt()
    spread = numbers.abs().mean(dim=1) if numbers.shape[1] else torch.zeros_like(distance)
    surprise = torch.zeros_like(distance)
    if category_losses is not None and category_losses.shape[1]:
        surprise = category_losses.to(torch.float64).mean(dim=1)
    terms = [distance, spread, surprise]
    if reference is not None:
        assert present is not None, "the local term measures numbers and presence flags"
        local = torch.cat([numbers, present.to(torch.float64)], dim=1)
        terms.append(nearest_distance(local, reference, neighbors))
    return torch.log(torch.stack(terms, dim=1) + LOG_FLOOR)


def standardised_distance(
    logs: torch.Tensor, scaling: torch.Tensor, n_numeric: int, n_categorical: int
) -> torch.Tensor:
    """The distance score from the log terms (see :func:`distance_log_terms`).

    The larger robust z-score of the Mahalanobis distance and (tables with
    numbers) the spread of the numbers, averaged with the local term's z-score
    where it was fitted (``scaling`` with four columns): a row must be both
    unlike the training rows as a whole and far from its nearest ones to score
    highest. For tables with categories, the larger of that and the categories'
    z-score, on the same scale: a never-seen category is flagged whatever the
    numbers beside it.
    """
    standardised = (logs - scaling[0]) / scaling[1]
    score = standardised[:, :2].amax(dim=1) if n_numeric else standardised[:, 0]
    if standardised.shape[1] > 3:
        score = (score + standardised[:, 3]) / 2
    if n_categorical:
        score = torch.maximum(score, standardised[:, 2])
    return score


def reference_indices(
    n_kept: int, n_numeric: int, n_categorical: int = 0
) -> NDArray[np.intp] | None:
    """Which kept training rows the local term measures against (None: no local term).

    At most :data:`MAX_REFERENCE_ROWS` rows and :data:`MAX_REFERENCE_VALUES`
    values (each row keeps its numbers and their presence flags), evenly spaced.
    None for tables with too few rows for :data:`DISTANCE_NEIGHBORS` neighbours,
    and for tables that are not all numbers: the term sees numbers only, and on
    the credit applications (numbers and categories) it cost 0.016 AUROC.
    """
    if n_numeric == 0 or n_categorical or n_kept <= DISTANCE_NEIGHBORS:
        return None
    cap = min(MAX_REFERENCE_ROWS, MAX_REFERENCE_VALUES // (2 * n_numeric))
    return np.unique(np.linspace(0, n_kept - 1, min(cap, n_kept)).astype(np.intp))


def has_non_numeric_columns(X: Any) -> bool:
    """Whether ``X`` is a DataFrame with at least one non-numeric (or boolean) column."""
    if not hasattr(X, "columns") or not hasattr(X, "dtypes"):
        return False
    return any(
        not pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)
        for dtype in X.dtypes
    )


def as_frame(X: Any) -> pd.DataFrame:
    """``X`` as a pandas DataFrame (2-D arrays get columns named "0", "1", ...)."""
    if isinstance(X, pd.DataFrame):
        return X
    array = np.asarray(X)
    if array.ndim != 2:
        raise InvalidInputError(
            f"arch='tabular' needs a table: a pandas DataFrame or a 2-D array; got an array "
            f"of shape {array.shape}."
        )
    return pd.DataFrame(array, columns=[str(i) for i in range(array.shape[1])])


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


def _fit_schema(estimator: BaseAutoencoder, frame: pd.DataFrame) -> TableSchema:
    forced = None if estimator.categorical_columns is None else list(estimator.categorical_columns)
    schema = TableSchema.fit(frame, categorical=forced)
    estimator.table_schema_ = schema
    return schema


class TabularFamily(Family):
    """Per-column types, scaling, losses and explanations for tables."""

    name: ClassVar[str] = "tabular"
    explains: ClassVar[bool] = True
    takes_missing_values: ClassVar[bool] = True
    takes_trim: ClassVar[bool] = True
    distance_score: ClassVar[bool] = True
    exports_onnx: ClassVar[bool] = True
    own_metric: ClassVar[str | None] = "column_loss"
    auto_trim: ClassVar[float] = TABULAR_TRIM
    saved_outputs: ClassVar[tuple[str, ...]] = ("mixed",)
    saved_losses: ClassVar[tuple[str, ...]] = ("mixed",)

    def clustering_recipe(self, n_samples: int) -> ClusteringRecipe:
        """Tables cluster on their own columns, min-max scaled, with 15 neighbours.

        No autoencoder's codes clustered better than the columns themselves:
        on ``load_digits`` (seeds 0-2, medians) the tabular family's codes reach
        0.68 and the dense family's 0.81, the min-max scaled columns 0.88.
        """
        return ClusteringRecipe(autoencoder=None, n_neighbors=TABLE_CLUSTERING_NEIGHBORS)

    # ----------------------------------------------------------------- input

    def prepare_training(self, estimator: BaseAutoencoder, X: Any) -> PreparedInput | StreamInput:
        if isinstance(X, Stream):
            return self._prepare_stream(estimator, X)
        frame = prepare_table(estimator, X, reset=True)
        schema = _fit_schema(estimator, frame)
        return PreparedInput(values=schema.encode(frame), family=self.name)

    def _prepare_stream(self, estimator: BaseAutoencoder, stream: Stream) -> StreamInput:
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
        sample = prepare_table(estimator, _table_sample(stream), reset=True)
        schema = _fit_schema(estimator, sample)
        scanned = scan_table_stream(estimator, stream, lambda piece: schema.encode(as_frame(piece)))
        return replace(scanned, sample=schema.encode(sample), family=self.name)

    def prepare_later(self, estimator: BaseAutoencoder, X: Any) -> PreparedInput:
        # Models saved before feature names and counts were checked for tables
        # keep their behaviour (no new warnings about names).
        checked = X if estimator._legacy_table else prepare_table(estimator, X, reset=False)
        values = estimator.table_schema_.encode(as_frame(checked))
        return PreparedInput(values=values, family=self.name)

    def input_kind(self, input_shape: tuple[int, ...]) -> str:
        return "table"

    def n_features_in(self, estimator: BaseAutoencoder) -> int:
        return len(estimator.table_schema_.columns)  # columns, as scikit-learn counts

    def output_and_loss(
        self, estimator: BaseAutoencoder, prepared: PreparedInput | StreamInput
    ) -> tuple[str, str]:
        return "mixed", "mixed"  # per column: Huber error or cross-entropy

    # -------------------------------------------------------------- training

    def build_module(
        self, estimator: BaseAutoencoder, generator: torch.Generator
    ) -> ReconstructionModule:
        schema = estimator.table_schema_
        return TabularAutoencoder(
            TabularConfig(
                input_shape=estimator.input_shape_,
                n_numeric=len(schema.numeric),
                category_sizes=tuple(schema.category_sizes),
                latent_dim=int(estimator.latent_dim),
                hidden_dims=estimator._validated_hidden_dims() or TabularConfig.hidden_dims,
                activation=estimator.activation,
            ),
            generator=generator,
        )

    def objective(
        self,
        estimator: BaseAutoencoder,
        module: ReconstructionModule,
        x: torch.Tensor,
        target: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        assert isinstance(module, TabularAutoencoder)  # what build_module makes
        # A training step is trimmed; validation losses (no gradients) are plain means.
        trim = estimator._trim_fraction() if torch.is_grad_enabled() else 0.0
        loss, mae = module.reconstruction_loss(x, target, estimator.loss_, trim=trim)
        return {"loss": loss, "mae": mae}

    def after_fit(self, estimator: BaseAutoencoder, rows: NDArray[Any] | None) -> None:
        if rows is not None:
            estimator.column_scales_ = self._typical_column_losses(estimator, rows)

    def _typical_column_losses(
        self, estimator: BaseAutoencoder, values: NDArray[Any]
    ) -> NDArray[np.float64]:
        """Median loss of each column over the training rows where it is present."""
        losses = self.column_losses_and_row_scores(estimator, values)[0]
        p = len(estimator.table_schema_.numeric)
        present = np.concatenate([values[:, p : 2 * p] > 0, values[:, 2 * p :] > 0], axis=1)
        typical = np.array(
            [
                np.median(losses[present[:, j], j]) if present[:, j].any() else 1.0
                for j in range(losses.shape[1])
            ]
        )
        floored: NDArray[np.float64] = np.maximum(typical, 1e-6)
        return floored

    # ------------------------------------------------------------- inference

    def column_losses_and_row_scores(
        self, estimator: BaseAutoencoder, values: NDArray[Any]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Every column's loss and each row's score (their mean) from one forward pass.

        The row scores are those of :meth:`scores`, bit for bit.
        """

        def run(module: TabularAutoencoder, x: torch.Tensor) -> torch.Tensor:
            losses = module.column_losses(x)
            return torch.cat([losses, losses.mean(dim=1, keepdim=True)], dim=1)

        both = estimator._map_batches(values, run).numpy().astype(np.float64)
        return both[:, :-1], both[:, -1]

    def scores(
        self, estimator: BaseAutoencoder, values: NDArray[Any], metric: str
    ) -> NDArray[np.float64]:
        """The mean column loss of each row."""

        def row_score(module: TabularAutoencoder, x: torch.Tensor) -> torch.Tensor:
            return module.row_scores(x)

        return estimator._map_batches(values, row_score).numpy().astype(np.float64)

    def explained_scores(
        self, estimator: BaseAutoencoder, values: NDArray[Any]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Each column's loss divided by its typical loss in training, and each row's score."""
        losses, scores = self.column_losses_and_row_scores(estimator, values)
        contributions: NDArray[np.float64] = losses / estimator.column_scales_
        return contributions, scores

    def reconstruct(self, estimator: BaseAutoencoder, values: NDArray[Any]) -> pd.DataFrame:
        """Decoded rows as a DataFrame: numbers unscaled, the most likely known category."""

        def run(module: TabularAutoencoder, x: torch.Tensor) -> torch.Tensor:
            return module.decode_logits(module.encode(x))

        out = estimator._map_batches(values, run).numpy()
        schema = estimator.table_schema_
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

    # --------------------------------------------------------- distance score

    def fit_distance_score(self, estimator: BaseAutoencoder, rows: NDArray[Any]) -> None:
        """Fit the distance score on prepared training rows (see :meth:`distance_scores`).

        Sets ``distance_location_`` and ``distance_precision_`` (a Ledoit-Wolf
        shrunk estimate over the rows whose reconstruction error is at or below
        its :data:`DISTANCE_KEEP_QUANTILE`), ``distance_reference_`` (the scaled
        numbers of those rows, thinned by :func:`reference_indices`; None unless
        the table is all numbers) and ``distance_scaling_`` (median and
        interquartile range of each term's logarithm over those rows; the local
        term's over the reference rows, each leaving itself out).
        """
        from sklearn.covariance import LedoitWolf

        errors = self.scores(estimator, rows, "column_loss")
        kept = rows[errors <= np.quantile(errors, DISTANCE_KEEP_QUANTILE)]
        if len(kept) < 2:
            kept = rows
        p = len(estimator.table_schema_.numeric)

        def features(module: TabularAutoencoder, x: torch.Tensor) -> torch.Tensor:
            return torch.cat([module.encode(x).double(), x[:, :p].double()], dim=1)

        shrunk = LedoitWolf().fit(estimator._map_batches(kept, features).numpy())
        estimator.distance_location_ = shrunk.location_.astype(np.float64)
        estimator.distance_precision_ = shrunk.get_precision().astype(np.float64)
        chosen = reference_indices(len(kept), p, len(estimator.table_schema_.categorical))
        estimator.distance_reference_ = None
        quantiles = np.quantile(self._log_terms(estimator, kept), [0.25, 0.5, 0.75], axis=0)
        if chosen is not None:
            reference = kept[chosen, : 2 * p]  # numbers, then their presence flags
            estimator.distance_reference_ = np.ascontiguousarray(reference, np.float64)
            # The nearest reference row of a reference row is itself: one neighbour more.
            local = self._log_terms(estimator, kept[chosen], neighbors=DISTANCE_NEIGHBORS + 1)
            local_quantiles = np.quantile(local[:, 3], [0.25, 0.5, 0.75])
            quantiles = np.concatenate([quantiles, local_quantiles[:, None]], axis=1)
        q1, median, q3 = quantiles
        estimator.distance_scaling_ = np.stack([median, np.maximum(q3 - q1, MIN_SPREAD)])

    def _log_terms(
        self,
        estimator: BaseAutoencoder,
        values: NDArray[Any],
        *,
        standardised: bool = False,
        neighbors: int = DISTANCE_NEIGHBORS,
    ) -> NDArray[np.float64]:
        """Per row, :func:`distance_log_terms`; with ``standardised``, the distance score."""
        schema = estimator.table_schema_
        p, c = len(schema.numeric), len(schema.categorical)
        location = torch.from_numpy(estimator.distance_location_)
        precision = torch.from_numpy(estimator.distance_precision_)
        scaling = torch.from_numpy(estimator.distance_scaling_) if standardised else None
        # Models saved before the local term have none.
        saved_reference = getattr(estimator, "distance_reference_", None)
        reference = None if saved_reference is None else torch.from_numpy(saved_reference)

        def run(module: TabularAutoencoder, x: torch.Tensor) -> torch.Tensor:
            codes = module.encode(x)
            category_losses = module.column_losses(x, codes)[:, p:] if c else None
            logs = distance_log_terms(
                codes,
                x[:, :p],
                category_losses,
                location.to(x.device),
                precision.to(x.device),
                None if reference is None else reference.to(x.device),
                x[:, p : 2 * p],
                neighbors,
            )
            if scaling is None:
                return logs
            return standardised_distance(logs, scaling.to(x.device), p, c)

        out: NDArray[np.float64] = estimator._map_batches(values, run).numpy()
        return out

    def distance_scores(
        self, estimator: BaseAutoencoder, values: NDArray[Any]
    ) -> NDArray[np.float64]:
        """How far prepared rows lie from the training rows (a robust z-score; higher: stranger).

        The larger of two global terms,

        1. the Mahalanobis distance of the row's code and scaled numbers from
           the training rows' (their typical co-variation: a row whose code or
           numbers combine unusually is far);
        2. the mean absolute scaled value of its numbers (a row with extreme
           values, whatever their combination), for tables with numbers;

        averaged, for tables of numbers only, with a local term,

        4. the distance of its scaled numbers and presence flags to the
           :data:`DISTANCE_NEIGHBORS`-th nearest typical training row (a row in
           a gap between groups of rows, which the global terms see as central);

        and, for tables with categories, the larger of that and

        3. the mean loss of its categorical columns (a row with a rare or
           never-seen category).

        Each term's logarithm is centred on its training median and divided by
        its interquartile range (see :func:`distance_log_terms` and
        :func:`standardised_distance`).
        """
        return self._log_terms(estimator, values, standardised=True)

    def distance_state(self, estimator: BaseAutoencoder) -> dict[str, NDArray[Any]]:
        names = ["distance_location_", "distance_precision_", "distance_scaling_"]
        if estimator.distance_reference_ is not None:
            names.append("distance_reference_")
        return {name: np.ascontiguousarray(getattr(estimator, name), np.float64) for name in names}

    def restore_distance_state(
        self, estimator: BaseAutoencoder, arrays: dict[str, NDArray[Any]]
    ) -> None:
        n_numeric = len(estimator.table_schema_.numeric)
        width = estimator.latent_dim + n_numeric
        # Models saved before the local term have three terms and no reference rows.
        local = "distance_reference_" in arrays
        shapes = {
            "distance_location_": (width,),
            "distance_precision_": (width, width),
            "distance_scaling_": (2, 4 if local else 3),
        }
        if local:
            reference = arrays["distance_reference_"]
            if reference.ndim != 2 or reference.shape[0] <= DISTANCE_NEIGHBORS:
                raise ValueError(f"distance_reference_ needs over {DISTANCE_NEIGHBORS} rows.")
            shapes["distance_reference_"] = (reference.shape[0], 2 * n_numeric)
        estimator.distance_reference_ = None
        for name, shape in shapes.items():
            values = persistence.check_array(arrays, name, shape).astype(np.float64)
            if not np.isfinite(values).all():
                raise ValueError(f"{name} holds non-finite values.")
            setattr(estimator, name, values)
        if not (estimator.distance_scaling_[1] > 0).all():
            raise ValueError("distance_scaling_ needs positive spreads.")

    # ----------------------------------------------------------- persistence

    def fitted_state(
        self, estimator: BaseAutoencoder
    ) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
        return (
            {"table_schema_": estimator.table_schema_.to_json()},
            {"column_scales_": estimator.column_scales_},
        )

    def n_features_in_bounds(self, input_shape: tuple[int, ...]) -> tuple[int, int]:
        return 1, input_shape[0]  # columns; files from before counted packed values

    def restore_fitted_state(
        self,
        estimator: BaseAutoencoder,
        state: dict[str, Any],
        arrays: dict[str, NDArray[Any]],
    ) -> None:
        if not isinstance(state.get("table_schema_"), dict):
            raise ValueError("a tabular model needs its table_schema_")
        schema = TableSchema.from_json(state["table_schema_"])
        if (schema.width,) != estimator.input_shape_:
            shape = list(estimator.input_shape_)
            raise ValueError(f"table_schema_ describes {schema.width} values, not {shape}")
        if not all(math.isfinite(m) for m in schema.medians) or not all(
            math.isfinite(s) and s > 0 for s in schema.scales
        ):
            raise ValueError("table_schema_ needs finite medians and positive scales")
        estimator.table_schema_ = schema
        n_columns = len(schema.columns)
        # Files from before tables counted columns hold the packed width instead.
        estimator._legacy_table = estimator.n_features_in_ != n_columns
        if estimator._legacy_table and estimator.n_features_in_ != schema.width:
            raise ValueError(f"n_features_in_ must be {n_columns}, the table's columns")
        if estimator._legacy_table and "feature_names_in_" in state:
            raise ValueError("feature_names_in_ belongs with n_features_in_ columns")
        estimator.n_features_in_ = n_columns
        if len(getattr(estimator, "feature_names_in_", schema.columns)) != n_columns:
            raise ValueError(f"feature_names_in_ must list {n_columns} column names")
        column_scales = persistence.check_array(arrays, "column_scales_", (n_columns,))
        estimator.column_scales_ = column_scales.astype(np.float64)

    def onnx_refusal(self, estimator: BaseAutoencoder) -> str | None:
        if estimator.table_schema_.categorical:
            return (
                "ONNX export of tabular models supports numeric columns only; this model has "
                f"categorical column(s) {estimator.table_schema_.categorical}. Score it with "
                "hourglass itself, or train a model on the numeric columns alone to export it."
            )
        return None
