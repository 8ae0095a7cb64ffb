"""From a request body to scores, without HTTP: the model side of the scoring service.

:class:`ScoringModel` wraps a fitted :class:`~hourglass.AutoencoderOutlierDetector`.
It parses a JSON body (``{"records": [...]}`` or ``{"rows": [...]}``), checks it
against the model's input schema, scores it and returns JSON-able results.
Every refusal is a :class:`RequestError` (or the library's
:class:`~hourglass.exceptions.InvalidInputError`) whose message is one line
saying what was expected and what to do; the HTTP layer turns them into 4xx
responses.

Table rows are read here, in plain Python, and encoded by the steps
:meth:`hourglass.tabular.TableSchema.encode` takes for a DataFrame
(:func:`~hourglass.tabular.scale_numeric`, :func:`~hourglass.tabular.pack_table`;
a test pins the equality), because building a DataFrame costs about ten times
more than scoring one row. Other families go through the estimator's public methods.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hourglass import persistence
from hourglass._version import __version__
from hourglass.estimators import AutoencoderOutlierDetector, load
from hourglass.exceptions import InvalidInputError, InvalidParameterError, ModelFileError
from hourglass.scoring import TOP_COLUMNS, result_columns, top_column_positions
from hourglass.serve._limits import DEFAULT_MAX_BATCH
from hourglass.tabular import (
    MAX_SCALED_VALUE,
    MISSING_CODE,
    UNSEEN_CODE,
    pack_table,
    scale_numeric,
)

__all__ = [
    "DEFAULT_MAX_BATCH",
    "TOP_COLUMNS",
    "PreparedRequest",
    "RequestError",
    "ScoringModel",
]

# TOP_COLUMNS (imported from hourglass.scoring): columns listed per row, largest
# contribution first (tabular models).
#: Error messages are cut to this many characters (they may quote the request).
MAX_MESSAGE_CHARS = 400

_BODY_HINT = (
    'Send a JSON object with one key, "records" (a list of objects) or "rows" (a list of '
    "arrays); GET /metadata describes the input this model expects."
)


class RequestError(Exception):
    """A request the service refuses, with the HTTP status to answer.

    Parameters
    ----------
    status : int
        A 4xx status: 400 (not JSON), 413 (too large), 415 (not JSON content),
        422 (JSON that does not fit the model).
    message : str
        What was expected, what came, and what to do.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def one_line(message: object, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``str(message)`` on one line, at most ``limit`` characters."""
    text = " ".join(str(message).split())
    return text if len(text) <= limit else text[: limit - 4] + " ..."


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_json(body: bytes) -> Any:
    """Parse a request body as strict JSON (no NaN or Infinity).

    Raises
    ------
    RequestError
        400, with a one-line reason, for anything that is not valid JSON.
    """
    if not body.strip():
        raise RequestError(400, f"The request body is empty. {_BODY_HINT}")
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except RecursionError:
        raise RequestError(
            400, "The request body is nested too deeply to be a batch of rows. " + _BODY_HINT
        ) from None
    except UnicodeDecodeError:
        raise RequestError(400, "The request body is not UTF-8 text. " + _BODY_HINT) from None
    except ValueError as error:  # json.JSONDecodeError, and the constants refused above
        raise RequestError(
            400, f"The request body is not valid JSON ({error}). {_BODY_HINT}"
        ) from None


def _type_name(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number")


class ScoringModel:
    """A fitted outlier detector behind the scoring service.

    Parameters
    ----------
    detector : AutoencoderOutlierDetector
        A fitted detector of any family.
    max_batch : int, default=1024
        Most rows (records) one request may hold.

    Attributes
    ----------
    kind : {"table", "vectors", "images", "texts"}
        What the model takes: table rows (``arch="tabular"``), flat vectors,
        images, or texts (``arch="transformer"`` or ``"sequence"``).
    columns : list of str
        Names of the values in a record, in the order of a row (tables, and
        vector models trained on a DataFrame); empty otherwise.
    threshold : float
        The detector's ``threshold_``: rows whose outlier score (``-score``) is
        above it are outliers.
    metric : str
        The score in use: the detector's ``metric_``, marked when corrected for
        image complexity.
    weights_sha256 : str or None
        Digest of the model's weights file, when loaded from a directory.

    Examples
    --------
    >>> import numpy as np
    >>> from hourglass import AutoencoderOutlierDetector
    >>> X = np.random.default_rng(0).normal(size=(200, 4))
    >>> detector = AutoencoderOutlierDetector(latent_dim=2, epochs=2, verbose=0,
    ...                                       fpr=0.05, random_state=0).fit(X)
    >>> model = ScoringModel(detector)
    >>> result = model.score_body(b'{"rows": [[0, 0, 0, 0], [9, 9, 9, 9]]}')
    >>> [row["outlier"] for row in result["results"]]
    [False, True]
    """

    def __init__(self, detector: AutoencoderOutlierDetector, *, max_batch: int = DEFAULT_MAX_BATCH):
        if not isinstance(detector, AutoencoderOutlierDetector):
            raise InvalidInputError(
                "The scoring service needs an AutoencoderOutlierDetector (what 'hourglass train' "
                f"saves); got {type(detector).__name__}. Train a detector to serve it."
            )
        if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
            raise InvalidParameterError(f"max_batch must be an int >= 1; got {max_batch!r}.")
        detector._check_fitted()
        self.detector = detector
        self.max_batch = max_batch
        self.weights_sha256: str | None = None
        self.kind = detector.family_.input_kind(tuple(detector.input_shape_))
        self.threshold = float(detector.threshold_)
        # Image models may threshold the error corrected for the input's complexity.
        self.metric = detector.score_name_
        self._calibration = np.asarray(detector.calibration_scores_, dtype=np.float64)
        self.columns: list[str] = []
        if self.kind == "table":
            schema = detector.table_schema_
            self.columns = list(schema.columns)
            self._numeric = list(schema.numeric)
            self._categorical = list(schema.categorical)
            self._medians = np.asarray(schema.medians, dtype=np.float64)
            self._scales = np.asarray(schema.scales, dtype=np.float64)
            self._lookups = schema.lookups()
        elif self.kind == "vectors" and hasattr(detector, "feature_names_in_"):
            self.columns = [str(name) for name in detector.feature_names_in_]
        self._column_set = frozenset(self.columns)
        self._pixels = bool(detector.scales_uint8_)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        device: str | None = None,
        max_batch: int = DEFAULT_MAX_BATCH,
    ) -> ScoringModel:
        """Load a detector saved with ``save`` (or ``hourglass train``) for serving.

        Parameters
        ----------
        path : str or path-like
            The model directory.
        device : str, optional
            Overrides the model's saved device (``"cpu"`` suits single rows best).
        max_batch : int, default=1024
            Most rows one request may hold.

        Returns
        -------
        ScoringModel
        """
        detector = load(path, device=device)
        if not isinstance(detector, AutoencoderOutlierDetector):
            raise ModelFileError(
                f"{path} holds a model of class {type(detector).__name__}; the scoring service "
                "needs an AutoencoderOutlierDetector (what 'hourglass train' saves)."
            )
        model = cls(detector, max_batch=max_batch)
        config = json.loads((Path(path) / persistence.CONFIG_NAME).read_text(encoding="utf-8"))
        digest = config.get("weights_sha256")
        model.weights_sha256 = digest if isinstance(digest, str) else None
        return model

    # ------------------------------------------------------------------ requests

    def score_body(self, body: bytes) -> dict[str, Any]:
        """Parse, check and score one request body.

        Parameters
        ----------
        body : bytes
            ``{"records": [...]}`` or ``{"rows": [...]}`` as JSON.

        Returns
        -------
        dict
            ``{"metric", "threshold", "results": [...]}``, one result per row:
            ``score`` (``score_samples``: the lower, the more abnormal),
            ``reconstruction_error`` (the higher, the more abnormal; the
            negated score unless the model corrects it for image complexity),
            ``outlier`` (``-score`` above the threshold), ``p_value`` (None
            without calibration data) and, for tables, ``top_columns``.

        Raises
        ------
        RequestError, InvalidInputError
            For a body that is not JSON, or does not fit the model.
        """
        return self.score(parse_json(body))

    def score(self, payload: Any) -> dict[str, Any]:
        """Check and score a parsed request (see :meth:`score_body`)."""
        return self.score_prepared([self.prepare(payload)])[0]

    def prepare(self, payload: Any) -> PreparedRequest:
        """Check a parsed request against the model's input; return its model-ready values.

        Raises
        ------
        RequestError, InvalidInputError
            For a request that does not fit the model, saying what would.
        """
        key, items = self._items(payload)
        records = key == "records"
        if self.kind == "table":
            return PreparedRequest(self._encode_table(items, records=records), len(items))
        X = self._array_input(items, records=records)
        if not isinstance(X, list):
            X = self._check_array(X)
        with warnings.catch_warnings():
            # The rows were checked against the model's columns above; scikit-learn's
            # reminder that an array carries no column names does not apply.
            warnings.filterwarnings("ignore", message="X does not have valid feature names")
            values = self.detector._prepare_for_inference(X)
        if self.kind == "images":
            # Flat rows (or images without their channel axis) as the model's images:
            # the estimator's scoring expects samples of the training shape.
            values = values.reshape((values.shape[0], *self.detector.input_shape_))
        return PreparedRequest(values, len(items))

    def score_prepared(self, batch: Sequence[PreparedRequest]) -> list[dict[str, Any]]:
        """Score several prepared requests together; one response per request.

        Requests whose values can be stacked are scored together. A row's
        score does not depend on the other rows it is scored with: the estimator
        computes in fixed-size blocks (see ``hourglass.estimators._blocks``).
        """
        groups: dict[Any, list[int]] = {}
        for i, prepared in enumerate(batch):
            values = prepared.values
            key = (values.dtype.str, values.shape[1:])
            groups.setdefault(key, []).append(i)
        responses: list[dict[str, Any]] = [{} for _ in batch]
        for indices in groups.values():
            parts = [batch[i].values for i in indices]
            stacked = parts[0] if len(parts) == 1 else np.concatenate(parts)
            contributions: NDArray[np.float64] | None = None
            if self.kind == "table":
                errors, contributions = self._score_table(stacked)
                scores = self.detector._scores_given_errors(stacked, errors)
            else:
                scores, errors = self._score_array(stacked)
            start = 0
            for i in indices:
                rows = slice(start, start + batch[i].n_rows)
                responses[i] = self._results(
                    scores[rows],
                    errors[rows],
                    None if contributions is None else contributions[rows],
                )
                start = rows.stop
        return responses

    def _items(self, payload: Any) -> tuple[str, list[Any]]:
        if not isinstance(payload, dict):
            raise RequestError(
                422, f"The request body is {_type_name(payload)}, not a JSON object. {_BODY_HINT}"
            )
        keys = sorted(payload)
        if keys not in (["records"], ["rows"]):
            unknown = [key for key in keys if key not in ("records", "rows")]
            problem = (
                f"unknown field(s) {one_line(unknown, 100)}"
                if unknown
                else "both 'records' and 'rows'"
                if len(keys) == 2
                else "no 'records' or 'rows'"
            )
            raise RequestError(422, f"The request body has {problem}. {_BODY_HINT}")
        key = keys[0]
        items = payload[key]
        if not isinstance(items, list) or not items:
            raise RequestError(
                422, f"'{key}' must be a non-empty array; got {_type_name(items)}. {_BODY_HINT}"
            )
        if len(items) > self.max_batch:
            raise RequestError(
                413,
                f"'{key}' holds {len(items):,} rows; this service scores at most "
                f"{self.max_batch:,} per request. Split the batch.",
            )
        if key == "records" and not self.columns:
            raise RequestError(
                422,
                f"This model takes {self.kind} without column names, so send 'rows', not "
                "'records'; GET /metadata describes a row.",
            )
        return key, items

    # ---------------------------------------------------------------- tables

    def _record_values(self, index: int, item: Any, records: bool) -> Sequence[Any]:
        """The values of one record or row, in the order of ``self.columns``."""
        if records:
            if not isinstance(item, dict):
                raise RequestError(
                    422, f"Record {index} is {_type_name(item)}; each record must be an object."
                )
            if len(item) != len(self.columns) or item.keys() != self._column_set:
                missing = [c for c in self.columns if c not in item]
                extra = [str(c) for c in item if c not in self._column_set]
                problems = []
                if missing:
                    problems.append(f"lacks column(s) {one_line(missing, 150)}")
                if extra:
                    problems.append(f"has unknown column(s) {one_line(extra, 150)}")
                raise RequestError(
                    422,
                    f"Record {index} {' and '.join(problems)}; the model's columns are "
                    f"{one_line(self.columns, 200)} (send null for a missing value).",
                )
            return [item[name] for name in self.columns]
        if not isinstance(item, list) or len(item) != len(self.columns):
            got = f"{len(item)} values" if isinstance(item, list) else _type_name(item)
            raise RequestError(
                422,
                f"Row {index} must be an array of {len(self.columns)} values, the columns "
                f"{one_line(self.columns, 200)} in this order; got {got}.",
            )
        return item

    def _encode_table(self, items: list[Any], *, records: bool) -> NDArray[np.float32]:
        """Pack records or rows as :meth:`TableSchema.encode` packs a DataFrame."""
        n, p = len(items), len(self._numeric)
        numbers = np.empty((n, p), dtype=np.float64)
        codes = np.empty((n, len(self._categorical)), dtype=np.float32)
        what = "Record" if records else "Row"
        for i, item in enumerate(items):
            values = self._record_values(i, item, records)
            for j in range(p):
                value = values[j]
                kind = type(value)
                if kind is float:
                    numbers[i, j] = value
                elif kind is int:
                    try:
                        numbers[i, j] = float(value)
                    except OverflowError:
                        numbers[i, j] = math.inf  # refused below, with the column's name
                elif value is None:
                    numbers[i, j] = math.nan
                else:
                    raise RequestError(
                        422,
                        f"{what} {i}: column {self._numeric[j]!r} is numeric, so its value must "
                        f"be a number or null (missing); got {_type_name(value)} "
                        f"({persistence.short_repr(value)}).",
                    )
            for k, lookup in enumerate(self._lookups):
                value = values[p + k]
                kind = type(value)
                if kind is str:
                    codes[i, k] = lookup.get(value, UNSEEN_CODE)
                elif value is None:
                    codes[i, k] = MISSING_CODE
                elif kind in (bool, int, float):
                    codes[i, k] = lookup.get(str(value), UNSEEN_CODE)  # as pandas' astype(str)
                else:
                    raise RequestError(
                        422,
                        f"{what} {i}: column {self._categorical[k]!r} is categorical, so its "
                        f"value must be a string, a number, a boolean or null; got "
                        f"{_type_name(value)}.",
                    )
        if np.isinf(numbers).any():
            i, j = np.argwhere(np.isinf(numbers))[0]
            raise RequestError(
                422,
                f"{what} {i}: column {self._numeric[j]!r} holds a number too large for a float "
                "(infinite); send a finite number, or null for a missing value.",
            )
        scaled, present = scale_numeric(numbers, self._medians, self._scales)
        too_far = ~(np.abs(scaled) <= MAX_SCALED_VALUE)
        if too_far.any():
            i, j = np.argwhere(too_far)[0]
            raise RequestError(
                422,
                f"{what} {i}: column {self._numeric[j]!r} holds {numbers[i, j]:.4g}, more than "
                f"{MAX_SCALED_VALUE:.0e} interquartile ranges from its training median "
                f"({self._medians[j]:.4g}): too far to compute with. Check the value (a unit "
                "error?) or send null.",
            )
        return pack_table(scaled, present, codes)

    def _score_table(
        self, values: NDArray[np.float32]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Row scores and column contributions, from one forward pass.

        The same computations as ``reconstruction_error`` (``row_scores``: the
        mean column loss, in float32) and ``explain`` (column losses over their
        typical training value, in float64).
        """
        contributions, errors = self.detector.family_.explained_scores(self.detector, values)
        return errors, contributions

    # ---------------------------------------------------- arrays, images, texts

    def _array_input(self, items: list[Any], *, records: bool) -> Any:
        if self.kind == "texts":
            bad = next((i for i, item in enumerate(items) if not isinstance(item, str)), None)
            if bad is not None:
                raise RequestError(
                    422,
                    f"Row {bad} is {_type_name(items[bad])}; this text model takes rows that are "
                    "strings.",
                )
            return items
        if records:
            items = [self._record_values(i, item, True) for i, item in enumerate(items)]
        try:
            array = np.asarray(items)
        except (ValueError, TypeError, OverflowError):
            array = np.empty(0, dtype=object)  # ragged: refused below
        if array.dtype.kind not in "iuf":
            raise RequestError(
                422,
                f"'{'records' if records else 'rows'}' must hold numbers only, every row of the "
                f"same shape ({self._row_description()}); got strings, booleans, nulls, objects "
                "or rows of different lengths.",
            )
        return array

    def _check_array(self, array: NDArray[Any]) -> NDArray[Any]:
        """Numbers for an array model: finite; 8-bit pixel values for a model of uint8 images."""
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise RequestError(
                422, "The rows hold a number too large for a float (infinite); send finite numbers."
            )
        if self._pixels:
            # A model of 8-bit images gets 8-bit images, as in training (floats would be
            # taken as already divided by 255, which the complexity correction is not).
            if (
                array.min() < 0
                or array.max() > 255
                or (array.dtype.kind == "f" and not (array == np.round(array)).all())
            ):
                raise RequestError(
                    422,
                    "This model was trained on 8-bit images: send pixel intensities as integers "
                    f"from 0 to 255; got values from {array.min():.4g} to {array.max():.4g}"
                    f"{'' if array.dtype.kind in 'iu' else ' (not all integers)'}.",
                )
            return array.astype(np.uint8)
        if array.dtype.kind in "iu":
            return array.astype(np.float64)
        return array

    def _row_description(self) -> str:
        shape = tuple(self.detector.input_shape_)
        if self.kind == "images":
            return (
                f"an image of shape {list(shape)} as nested arrays, or a flat array of "
                f"{math.prod(shape)} values"
            )
        return f"an array of {shape[0]} numbers"

    def _score_array(self, values: NDArray[Any]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Outlier scores and reconstruction errors of prepared values, as the estimator's.

        The outlier score is what the threshold applies to (``outlier_score``):
        the reconstruction error, or the score ``score_type_`` names.
        """
        errors, scores = self.detector._errors_and_scores(values)
        return scores, errors

    # ---------------------------------------------------------------- results

    def _results(
        self,
        scores: NDArray[np.float64],
        errors: NDArray[np.float64],
        contributions: NDArray[np.float64] | None,
    ) -> dict[str, Any]:
        calibrated = self._calibration.shape[0] > 0
        shared = result_columns(  # the p-values and flags hourglass score writes
            errors,
            scores,
            threshold=self.threshold,
            calibration_scores=self._calibration,
            columns=("p_value", "is_outlier") if calibrated else ("is_outlier",),
        )
        p_values: list[Any] = shared["p_value"].tolist() if calibrated else [None] * len(scores)
        outliers = shared["is_outlier"].astype(bool).tolist()
        score_list: list[Any] = scores.tolist()
        error_list: list[Any] = score_list if errors is scores else errors.tolist()
        if not (np.isfinite(scores).all() and np.isfinite(errors).all()):
            # Values near the float32 limit can overflow the error. JSON has no infinity:
            # such values are null (and the row an outlier, its score above any threshold).
            score_list = [_finite_or_none(value) for value in score_list]
            error_list = [_finite_or_none(value) for value in error_list]
        results: list[dict[str, Any]] = [
            {
                "score": None if score is None else -score,
                "reconstruction_error": error,
                "outlier": flag,
                "p_value": p,
            }
            for score, error, flag, p in zip(
                score_list, error_list, outliers, p_values, strict=True
            )
        ]
        if contributions is not None:
            top = top_column_positions(contributions, TOP_COLUMNS)
            names = self.columns
            for result, best, row in zip(
                results, top.tolist(), contributions.tolist(), strict=True
            ):
                result["top_columns"] = [
                    {"column": names[j], "contribution": _finite_or_none(row[j])} for j in best
                ]
        return {"metric": self.metric, "threshold": self.threshold, "results": results}

    # ---------------------------------------------------------- descriptions

    def _value_schema(self, column: str) -> dict[str, Any]:
        if column in self._numeric:
            j = self._numeric.index(column)
            return {
                "type": ["number", "null"],
                "description": f"numeric (training median {self._medians[j]:.6g}); null if missing",
            }
        vocabulary = self.detector.table_schema_.vocabularies[self._categorical.index(column)]
        return {
            "type": ["string", "number", "boolean", "null"],
            "description": "categorical; values not seen in training are scored as unseen; null "
            "if missing",
            "examples": vocabulary[:10],
        }

    def _example_row(self) -> list[Any]:
        if self.kind == "table":
            row: list[Any] = [float(m) for m in self._medians]
            for vocabulary in self.detector.table_schema_.vocabularies:
                row.append(vocabulary[0] if vocabulary else None)
            return row
        if self.kind == "texts":
            return ["an example text"]
        return np.zeros(self.detector.input_shape_, dtype=np.int64).tolist()

    def request_schema(self) -> dict[str, Any]:
        """The JSON Schema of a ``POST /score`` body for this model."""
        shape = tuple(self.detector.input_shape_)
        number: dict[str, Any] = {"type": "number"}
        if self._pixels:
            number = {"type": "integer", "minimum": 0, "maximum": 255}
        row: dict[str, Any]
        if self.kind == "table":
            row = {
                "type": "array",
                "prefixItems": [self._value_schema(c) for c in self.columns],
                "minItems": len(self.columns),
                "maxItems": len(self.columns),
                "description": f"the values of the columns {self.columns}, in this order",
            }
        elif self.kind == "texts":
            row = {"type": "string", "description": "one text (UTF-8)"}
        else:
            nested: dict[str, Any] = number
            for size in reversed(shape):
                nested = {"type": "array", "items": nested, "minItems": size, "maxItems": size}
            row = nested
            if self.kind == "images":
                flat = {
                    "type": "array",
                    "items": number,
                    "minItems": math.prod(shape),
                    "maxItems": math.prod(shape),
                }
                row = {"oneOf": [nested, flat]}
        batch = {"type": "array", "minItems": 1, "maxItems": self.max_batch}
        properties: dict[str, Any] = {"rows": {**batch, "items": row}}
        example_row = self._example_row()
        example: dict[str, Any] = {"rows": [example_row]}
        if self.columns:
            record = {
                "type": "object",
                "additionalProperties": False,
                "required": self.columns,
                "properties": {
                    c: self._value_schema(c) if self.kind == "table" else number
                    for c in self.columns
                },
            }
            properties["records"] = {**batch, "items": record}
            example = {"records": [dict(zip(self.columns, example_row, strict=True))]}
        return {
            "title": "ScoreRequest",
            "type": "object",
            "properties": properties,
            "additionalProperties": False,
            "minProperties": 1,
            "maxProperties": 1,
            "description": "Exactly one of 'records' (objects keyed by column name) and 'rows' "
            f"(arrays). At most {self.max_batch:,} per request.",
            "examples": [example],
        }

    def response_schema(self) -> dict[str, Any]:
        """The JSON Schema of a successful ``POST /score`` response."""
        result: dict[str, Any] = {
            "type": "object",
            "properties": {
                "score": {
                    "type": ["number", "null"],
                    "description": "score_samples: the negated outlier score (the "
                    "reconstruction error, unless corrected for image complexity); the lower, the "
                    "more abnormal; null if it overflows",
                },
                "reconstruction_error": {
                    "type": ["number", "null"],
                    "description": "the higher, the more abnormal (null if it overflows)",
                },
                "outlier": {
                    "type": "boolean",
                    "description": "-score above the model's threshold",
                },
                "p_value": {
                    "type": ["number", "null"],
                    "description": "conformal p-value against the calibration scores (null "
                    "without calibration data); the smaller, the more abnormal",
                },
            },
            "required": ["score", "reconstruction_error", "outlier", "p_value"],
        }
        if self.kind == "table":
            result["properties"]["top_columns"] = {
                "type": "array",
                "maxItems": TOP_COLUMNS,
                "description": "the columns contributing most to the score: each column's loss "
                "over its typical training loss (1 = ordinary)",
                "items": {
                    "type": "object",
                    "properties": {
                        "column": {"type": "string"},
                        "contribution": {"type": "number"},
                    },
                },
            }
            result["required"].append("top_columns")
        return {
            "title": "ScoreResponse",
            "type": "object",
            "properties": {
                "metric": {"type": "string", "description": "the reconstruction error in use"},
                "threshold": {"type": "number"},
                "results": {"type": "array", "items": result, "description": "one per row"},
            },
            "required": ["metric", "threshold", "results"],
        }

    def card(self) -> dict[str, Any]:
        """The model card: what the model is, what it takes, how it scores."""
        detector = self.detector
        shape = list(detector.input_shape_)
        model_input: dict[str, Any] = {"kind": self.kind}
        if self.kind == "table":
            schema = detector.table_schema_
            model_input["columns"] = [
                {"name": name, "type": "numeric", "median": median, "interquartile_range": scale}
                for name, median, scale in zip(
                    schema.numeric, schema.medians, schema.scales, strict=True
                )
            ] + [
                {"name": name, "type": "categorical", "values": list(vocabulary)}
                for name, vocabulary in zip(schema.categorical, schema.vocabularies, strict=True)
            ]
        elif self.kind == "texts":
            model_input["max_bytes"] = shape[0] - 1
        else:
            model_input["shape"] = shape
            model_input["dtype"] = "uint8" if self._pixels else "float32"
            if self.columns:
                model_input["columns"] = self.columns
        return {
            "class": type(detector).__name__,
            "family": detector.arch_,
            "input": model_input,
            "metric": self.metric,
            "score_type": getattr(detector, "score_type_", "error"),
            "threshold": self.threshold,
            "threshold_method": detector.threshold_method_,
            "n_calibration": int(detector.n_calibration_),
            "latent_dim": int(detector.latent_dim),
            "epochs_trained": int(detector.n_epochs_),
            "fit_time_s": float(detector.fit_time_),
            "parameters": persistence.json_params(detector.get_params(deep=False)),
            "weights_sha256": self.weights_sha256,
            "hourglass_version": __version__,
        }


@dataclass(frozen=True)
class PreparedRequest:
    """A checked request: model-ready values and how many rows they hold."""

    values: NDArray[Any]  # packed table rows, or the estimator's prepared array
    n_rows: int


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None
