"""ONNX export (:func:`hourglass.export.to_onnx`); the contract is in :mod:`hourglass.export`."""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from hourglass._atomic import atomic_file
from hourglass._logging import quieted
from hourglass._version import __version__
from hourglass.complexity import LOG_EPSILON
from hourglass.estimators._base import BaseAutoencoder
from hourglass.estimators._input import UINT8_SCALE, to_unit_float
from hourglass.exceptions import HourglassError, InvalidInputError, ModelFileError
from hourglass.families import FAMILIES
from hourglass.families.tabular import distance_log_terms, standardised_distance
from hourglass.nn.tabular import TabularAutoencoder
from hourglass.scoring import per_sample_error
from hourglass.tabular import scale_numeric

__all__ = ["ONNX_FAMILIES", "read_onnx_metadata", "to_onnx"]

#: Model families (``arch_``) that can be exported.
ONNX_FAMILIES: tuple[str, ...] = tuple(name for name, f in FAMILIES.items() if f.exports_onnx)
#: Name of the graph's input.
INPUT_NAME = "x"
#: Keys hourglass writes into the ONNX model's ``metadata_props``.
METADATA_KEYS: tuple[str, ...] = (
    "hourglass_version",
    "estimator",
    "family",
    "metric",
    "score_type",
    "threshold",
    "threshold_method",
    "input_name",
    "input_shape",
    "input_dtype",
    "input_scaling",
    "feature_names",
    "outputs",
)
_INSTALL_HINT = (
    'ONNX export needs the onnx extra: pip install "hourglass-ae[onnx]" (onnx, onnxscript and '
    "onnxruntime)."
)
# Loggers of the exporter, silenced during export: progress lines and notes about
# optional packages (torchvision) that have nothing to do with hourglass models.
_EXPORTER_LOGGERS = ("torch.onnx", "torch.export", "torch._export", "onnxscript", "onnx_ir")


def _import_onnx() -> Any:
    """The ``onnx`` module, after checking that the exporter's dependencies are present."""
    try:
        import onnx
        import onnxscript  # noqa: F401  (torch.onnx.export builds its graphs with it)
    except ImportError:
        raise HourglassError(_INSTALL_HINT) from None
    return onnx


def _binary_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy of each sample from logits, ``(batch,)``, float32.

    What ``per_sample_error(..., "bce", from_logits=True)`` computes, torch's
    ``(1 - y) * z - log_sigmoid(z)``, with ``log_sigmoid(z)`` written as
    ``min(z, 0) - log(1 + exp(-|z|))``: the exporter turns ``log_sigmoid`` into
    ``Log(Sigmoid(z))``, which is -inf once the sigmoid underflows (z < -104).
    Per value the two agree to a few float32 rounding errors.
    """
    log_sigmoid = torch.clamp(logits, max=0.0) - torch.log(1.0 + torch.exp(-logits.abs()))
    loss = (1.0 - target) * logits - log_sigmoid
    return loss.reshape(loss.shape[0], -1).mean(dim=1)


def _log_complexity(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Log total variation and log gradient energy of each image, float64 ``(batch,)`` each.

    :func:`hourglass.complexity.complexity_features` with ``"gradient"``:
    differences of neighbouring pixels of the float32 images (already clipped
    to [0, 1]), their absolute values and squares summed in float64.
    """
    batch = images.shape[0]
    vertical = (images[..., 1:, :] - images[..., :-1, :]).to(torch.float64).reshape(batch, -1)
    horizontal = (images[..., :, 1:] - images[..., :, :-1]).to(torch.float64).reshape(batch, -1)
    variation = vertical.abs().sum(dim=1) + horizontal.abs().sum(dim=1) + LOG_EPSILON
    energy = vertical.square().sum(dim=1) + horizontal.square().sum(dim=1) + LOG_EPSILON
    return torch.log(variation), torch.log(energy)


class _ImageScoring(nn.Module):
    """Dense and convolutional models: scaling, network, clipping, score (and flags).

    The same steps as ``BaseAutoencoder._errors`` and ``reconstruct``: uint8
    input divided by 255 (:func:`to_unit_float`), the network's logits, a
    sigmoid output scored from logits or a linear output clipped to the
    training range, then :func:`~hourglass.scoring.per_sample_error`. With
    ``complexity`` (coefficients, and the offset and scale that map an input
    to [0, 1]), the score is the error corrected for the input's complexity,
    as ``AutoencoderOutlierDetector.outlier_score`` computes it. A float
    input with a NaN or infinite value, which the library refuses, scores NaN
    and is flagged.
    """

    low: torch.Tensor  # buffers: the training data's per-feature range, shaped like a sample
    high: torch.Tensor
    threshold: torch.Tensor  # float64 scalar
    coefficients: torch.Tensor  # float64 (3,): the complexity correction, if any
    unit_offset: torch.Tensor  # float32 scalars: (x - unit_offset) / unit_scale is in [0, 1]
    unit_scale: torch.Tensor

    def __init__(
        self,
        network: nn.Module,
        *,
        metric: str,
        sigmoid_output: bool,
        data_min: np.ndarray[Any, Any],
        data_max: np.ndarray[Any, Any],
        input_shape: tuple[int, ...],
        threshold: float | None,
        float_input: bool,
        complexity: tuple[np.ndarray[Any, Any], float, float] | None = None,
    ) -> None:
        super().__init__()
        self.network = network
        self.metric = metric
        self.sigmoid_output = sigmoid_output
        self.register_buffer("low", torch.from_numpy(data_min.copy()).view(input_shape))
        self.register_buffer("high", torch.from_numpy(data_max.copy()).view(input_shape))
        self.has_threshold = threshold is not None
        self.register_buffer("threshold", torch.tensor(threshold or 0.0, dtype=torch.float64))
        self.float_input = float_input
        self.corrected = complexity is not None
        coefficients, offset, scale = complexity or (np.zeros(3), 0.0, 1.0)
        self.register_buffer("coefficients", torch.tensor(coefficients, dtype=torch.float64))
        self.register_buffer("unit_offset", torch.tensor(offset, dtype=torch.float32))
        self.register_buffer("unit_scale", torch.tensor(scale, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = to_unit_float(x)  # (batch, *input_shape), float32
        logits = self.network(x)  # same shape
        if self.sigmoid_output and self.metric == "bce":
            reconstruction = torch.sigmoid(logits)
            score = _binary_cross_entropy(logits, x)
        elif self.sigmoid_output:
            reconstruction = torch.sigmoid(logits)
            score = per_sample_error(logits, x, self.metric, from_logits=True)
        else:
            reconstruction = torch.maximum(torch.minimum(logits, self.high), self.low)
            score = per_sample_error(reconstruction, x, self.metric, from_logits=False)
        score = score.to(torch.float64)  # (batch,); mae and mse are float64 already
        if self.corrected:
            score = self._corrected(x, score)
        if not self.float_input:  # uint8 pixels are always finite
            if self.has_threshold:
                return score, reconstruction, score > self.threshold
            return score, reconstruction
        finite = torch.isfinite(x).reshape(x.shape[0], -1).all(dim=1)
        score = torch.where(finite, score, torch.full_like(score, float("nan")))
        if self.has_threshold:
            return score, reconstruction, (score > self.threshold) | ~finite
        return score, reconstruction

    def _corrected(self, x: torch.Tensor, error: torch.Tensor) -> torch.Tensor:
        """``corrected_scores``: the log error minus its expected value for this complexity."""
        images = (x - self.unit_offset) / self.unit_scale
        variation, energy = _log_complexity(torch.clamp(images, 0.0, 1.0))
        # In corrected_scores' order: the intercept, plus each feature's term in turn.
        expected = self.coefficients[2] + variation * self.coefficients[0]
        expected = expected + energy * self.coefficients[1]
        return torch.log(error + LOG_EPSILON) - expected


class _TableScoring(nn.Module):
    """Tabular models with numeric columns only: scaling, missing mask, score.

    The same steps as :meth:`hourglass.tabular.TableSchema.encode`
    (:func:`~hourglass.tabular.scale_numeric` in float64, then the packed
    layout in float32) and ``TabularAutoencoder.row_scores``, or, with
    ``distance`` (location, precision, scaling and reference rows, which are
    None in models saved before the local term), the tabular family's distance
    score (:func:`hourglass.families.tabular.distance_log_terms`).
    """

    medians: torch.Tensor  # buffers, float64, one value per numeric column
    scales: torch.Tensor
    threshold: torch.Tensor  # float64 scalar
    location: torch.Tensor  # the distance score's (empty without it)
    precision: torch.Tensor
    scaling: torch.Tensor
    reference: torch.Tensor

    def __init__(
        self,
        network: TabularAutoencoder,
        *,
        medians: list[float],
        scales: list[float],
        threshold: float | None,
        distance: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None] | None = None,
    ) -> None:
        super().__init__()
        self.network = network
        self.distance = distance is not None
        self.local = distance is not None and distance[3] is not None
        arrays = (None,) * 4 if distance is None else distance
        names = ("location", "precision", "scaling", "reference")
        for name, values in zip(names, arrays, strict=True):
            values = np.zeros(0) if values is None else values
            self.register_buffer(name, torch.tensor(values, dtype=torch.float64))
        self.register_buffer("medians", torch.tensor(medians, dtype=torch.float64))
        self.register_buffer("scales", torch.tensor(scales, dtype=torch.float64))
        self.has_threshold = threshold is not None
        self.register_buffer("threshold", torch.tensor(threshold or 0.0, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        # (batch, n_numeric) each, as TableSchema.encode scales a table's numeric columns
        scaled, present = scale_numeric(x, self.medians, self.scales, xp=torch)
        packed = torch.cat([scaled.to(torch.float32), present.to(torch.float32)], dim=1)
        codes = self.network.encode(packed)
        if self.distance:
            n_numeric = scaled.shape[1]
            numbers = packed[:, :n_numeric]  # numeric columns only: no category losses
            reference = self.reference if self.local else None
            present = packed[:, n_numeric:]
            logs = distance_log_terms(
                codes, numbers, None, self.location, self.precision, reference, present
            )
            score = standardised_distance(logs, self.scaling, n_numeric, 0)
        else:
            score = self.network.row_scores(packed).to(torch.float64)  # (batch,)
        predicted = self.network.decode_logits(codes)  # (batch, n_numeric)
        reconstruction = predicted.to(torch.float64) * self.scales + self.medians
        if self.has_threshold:
            return score, reconstruction, score > self.threshold
        return score, reconstruction


def _unit_range(model: BaseAutoencoder) -> tuple[float, float]:
    """Offset and scale that map the graph's input to [0, 1] for the complexity features.

    As ``AutoencoderOutlierDetector._complexity``: uint8 pixels are divided by
    255 (by :func:`to_unit_float`, before this), floats are used as they are for
    a sigmoid output, else mapped from the training range.
    """
    if model.scales_uint8_ or model.output_activation_ == "sigmoid":
        return 0.0, 1.0
    low, high = float(model.data_min_.min()), float(model.data_max_.max())
    return low, max(high - low, float(np.finfo(np.float32).tiny))


def _refuse(model: BaseAutoencoder) -> None:
    """Raise unless ``model`` is a fitted model of a family the graph can express."""
    model._check_fitted()
    family = model.family_
    if not family.exports_onnx:
        raise InvalidInputError(
            f"ONNX export supports the {', '.join(map(repr, ONNX_FAMILIES))} families; this "
            f"model has arch={family.name!r}, whose score cannot be exported. Score it with "
            "hourglass itself (hourglass score)."
        )
    refusal = family.onnx_refusal(model)
    if refusal is not None:
        raise InvalidInputError(refusal)
    # A detector's thresholded score (outlier_score) may be the error corrected for input
    # complexity: the graph computes the "gradient" features, not zlib's.
    if (
        getattr(model, "score_type_", "error") == "complexity"
        and getattr(model, "complexity_features_", "zlib") != "gradient"
    ):
        raise InvalidInputError(
            "ONNX export cannot compute this detector's score: it was fitted by an older "
            "hourglass, whose complexity correction compresses every input with zlib. Refit it "
            "with this hourglass (hourglass train), whose correction a graph can compute, or "
            "with score_type='error' (hourglass train --score-type error) to export it."
        )


def _scoring_graph(
    model: BaseAutoencoder, threshold: float | None
) -> tuple[nn.Module, torch.Tensor, dict[str, Any]]:
    """The module to export, an example input, and the metadata describing its input."""
    network = copy.deepcopy(model.module_).to("cpu").eval()
    # Also what makes per_sample_error compute mae and mse in float64, as at inference.
    network.requires_grad_(False)
    if model.family_.input_kind(tuple(model.input_shape_)) == "table":
        schema = model.table_schema_
        graph: nn.Module = _TableScoring(
            cast(TabularAutoencoder, network),  # the network of every table-taking family
            medians=schema.medians,
            scales=schema.scales,
            threshold=threshold,
            distance=(
                (
                    model.distance_location_,
                    model.distance_precision_,
                    model.distance_scaling_,
                    model.distance_reference_,
                )
                if getattr(model, "score_type_", "error") == "distance"
                else None
            ),
        )
        example = torch.zeros((2, len(schema.numeric)), dtype=torch.float64)
        return (
            graph,
            example,
            {
                "input_shape": [len(schema.numeric)],
                "input_dtype": "float64",
                "input_scaling": "(x - median) / interquartile range of each column; NaN: missing",
                "feature_names": list(schema.numeric),
            },
        )
    shape = tuple(model.input_shape_)
    complexity = None
    if getattr(model, "score_type_", "error") == "complexity":
        complexity = (model.complexity_coef_, *_unit_range(model))
    graph = _ImageScoring(
        network,
        metric=model.metric_,
        sigmoid_output=model.output_activation_ == "sigmoid",
        data_min=model.data_min_,
        data_max=model.data_max_,
        input_shape=shape,
        threshold=threshold,
        float_input=not model.scales_uint8_,
        complexity=complexity,
    )
    dtype = torch.uint8 if model.scales_uint8_ else torch.float32
    names = getattr(model, "feature_names_in_", None)
    return (
        graph,
        torch.zeros((2, *shape), dtype=dtype),
        {
            "input_shape": list(shape),
            "input_dtype": "uint8" if model.scales_uint8_ else "float32",
            "input_scaling": f"x / {UINT8_SCALE:g}" if model.scales_uint8_ else "none",
            "feature_names": None if names is None else [str(name) for name in names],
        },
    )


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's log lines and its warnings about its own internals."""
    loggers = [logging.getLogger(name) for name in _EXPORTER_LOGGERS]
    with quieted(loggers, logging.ERROR), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def to_onnx(model: BaseAutoencoder, path: str | os.PathLike[str]) -> Path:
    """Write a fitted model as an ONNX graph that returns the library's scores.

    The graph takes the raw input (uint8 images are divided by 255 inside it,
    table columns are standardised inside it), returns ``score`` (the score
    the model thresholds, float64: the reconstruction error, or the
    complexity-corrected score of a detector with ``score_type_ ==
    "complexity"``; the higher, the more abnormal), ``reconstruction`` and,
    for an outlier detector, ``is_outlier``. A float sample holding NaN or
    infinity, which the library refuses, scores NaN and is flagged. The
    threshold, the metric, the score type, the input's shape, dtype and
    feature names and the hourglass version are stored in the model's
    ``metadata_props``. See :mod:`hourglass.export` for the exact contract.

    Parameters
    ----------
    model : Autoencoder or AutoencoderOutlierDetector
        A fitted model of the dense (``arch="dense"``), convolutional
        (``"conv"``) or tabular (``"tabular"``, numeric columns only) family.
    path : str or path-like
        The file to write (conventionally ``*.onnx``), atomically: an existing
        file is replaced only once the new one is complete.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    HourglassError
        If the ``onnx`` extra is not installed (the message says how to install it).
    InvalidInputError
        If the model's family cannot be exported (variational and text
        models, tabular models with categorical columns), or if it is a
        detector whose complexity correction uses zlib (saved by an older
        hourglass).
    NotFittedError
        If the model is not fitted.

    Examples
    --------
    >>> import numpy as np, onnxruntime
    >>> from hourglass import AutoencoderOutlierDetector
    >>> from hourglass.export import to_onnx
    >>> X = np.random.default_rng(0).normal(size=(200, 6))  # a table: the tabular family
    >>> detector = AutoencoderOutlierDetector(latent_dim=2, epochs=2, fpr=0.05, verbose=0,
    ...                                       random_state=0).fit(X)
    >>> path = to_onnx(detector, getfixture("tmp_path") / "detector.onnx")
    >>> session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    >>> score, reconstruction, is_outlier = session.run(None, {"x": X[:5]})
    >>> bool(np.allclose(score, detector.outlier_score(X[:5]), rtol=0, atol=1e-5))
    True
    """
    onnx = _import_onnx()
    if not isinstance(model, BaseAutoencoder):
        raise InvalidInputError(
            "to_onnx exports a fitted hourglass Autoencoder or AutoencoderOutlierDetector; got "
            f"{type(model).__name__}."
        )
    _refuse(model)
    threshold = getattr(model, "threshold_", None)
    graph, example, input_metadata = _scoring_graph(model, threshold)
    outputs = ["score", "reconstruction"] + (["is_outlier"] if threshold is not None else [])
    with _quiet_exporter():
        program = torch.onnx.export(
            graph.eval(),
            (example,),
            dynamo=True,
            input_names=[INPUT_NAME],
            output_names=outputs,
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            external_data=False,  # one self-contained file
            verbose=False,
        )
    if program is None:  # only the legacy exporter returns None
        raise HourglassError("torch.onnx.export returned no program; please report this.")
    proto = program.model_proto
    metadata = {
        "hourglass_version": __version__,
        "estimator": type(model).__name__,
        "family": model.arch_,
        "metric": model.metric_,
        "score_type": getattr(model, "score_type_", "error"),
        "threshold": None if threshold is None else float(threshold),
        "threshold_method": getattr(model, "threshold_method_", None),
        "input_name": INPUT_NAME,
        **input_metadata,
        "outputs": outputs,
    }
    for key in METADATA_KEYS:
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, json.dumps(metadata[key])
    what = f"the {model.metric_} reconstruction error"
    if metadata["score_type"] == "complexity":
        what = f"the log {model.metric_} reconstruction error corrected for input complexity"
    proto.doc_string = (
        f"hourglass {type(model).__name__} (arch={model.arch_!r}): input {INPUT_NAME!r}; "
        f"outputs {', '.join(outputs)}. score is {what}: the higher, the more abnormal."
    )
    onnx.checker.check_model(proto)
    target = Path(path)
    with atomic_file(target) as tmp:
        tmp.write_bytes(proto.SerializeToString())
    return target


def read_onnx_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The metadata hourglass stored in an exported ONNX model, decoded.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`to_onnx` (or ``hourglass export``).

    Returns
    -------
    dict
        ``threshold``, ``metric``, ``family``, ``input_shape``, ... (see
        :mod:`hourglass.export`), with their JSON values decoded.

    Raises
    ------
    ModelFileError
        If the file is not an ONNX model written by hourglass.
    """
    onnx = _import_onnx()
    try:
        proto = onnx.load_model(os.fspath(path), load_external_data=False)
    except OSError:
        raise
    except Exception as error:  # protobuf's DecodeError: not an ONNX file
        raise ModelFileError(f"Cannot read {path} as an ONNX model ({error}).") from None
    props = {entry.key: entry.value for entry in proto.metadata_props}
    if "hourglass_version" not in props:
        raise ModelFileError(
            f"{path} is an ONNX model without hourglass metadata; export it with hourglass export."
        )
    return {key: json.loads(props[key]) for key in METADATA_KEYS if key in props}
