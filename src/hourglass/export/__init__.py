"""Fitted models in other runtimes: ONNX graphs that score as the library does.

The graph does what the library does between the array a user passes and the
score it returns, so that a runtime without Python or PyTorch (ONNX Runtime,
in a service, a browser or a database) gives the same scores:

- **input** ``x``, shape ``(batch, *input_shape_)`` with a dynamic batch axis:

  - dense and convolutional models take ``uint8`` when they were trained on
    uint8 data (pixel intensities, divided by 255 inside the graph, as the
    library does) and ``float32`` otherwise (used as is);
  - tabular models take their numeric columns as ``float64``, in the order of
    the ``feature_names`` metadata, NaN for a missing value; the graph scales
    them as the library does (minus the training median, divided by the
    interquartile range, in float64) and masks the missing ones.

- **outputs**:

  - ``score``, float64, shape ``(batch,)``: the score a detector thresholds,
    what ``outlier_score`` returns: the reconstruction error with the model's
    metric (``metric_``), or, for a detector with ``score_type_ ==
    "complexity"``, the log of that error corrected for the input's complexity
    (its total variation and gradient energy, computed in the graph; see
    :mod:`hourglass.complexity`). For a plain :class:`~hourglass.Autoencoder`,
    ``reconstruction_error``. The higher, the more abnormal;
  - ``reconstruction``: what ``reconstruct`` returns, float32 shaped like
    ``x`` (for tabular models: the numeric columns in their own units, float64);
  - ``is_outlier``, bool, shape ``(batch,)``, outlier detectors only:
    ``score > threshold_``, as ``predict(X) == -1``.

- **metadata** in the model's ``metadata_props`` (every value is a JSON
  document; :func:`read_onnx_metadata` decodes them): ``hourglass_version``,
  ``estimator``, ``family``, ``metric``, ``score_type`` (``"error"`` or
  ``"complexity"``), ``threshold`` and
  ``threshold_method`` (null for a plain :class:`~hourglass.Autoencoder`),
  ``input_name``, ``input_shape`` (one sample's shape), ``input_dtype``,
  ``input_scaling``, ``feature_names`` (null when fitted without names) and
  ``outputs``.

Exportable: fitted :class:`~hourglass.Autoencoder` and
:class:`~hourglass.AutoencoderOutlierDetector` models of the dense, conv and
tabular families (tabular: numeric columns only). Refused, with a one-line
reason: variational (``vae``, ``conv_vae``) and text models (``sequence``,
``transformer``), tables with categorical columns, and complexity-corrected
detectors saved by an older hourglass, whose correction compresses every input
with zlib (``complexity_features_ == "zlib"``; refit them to export them).

The graph cannot raise an error. Where the library refuses a sample of a
dense or convolutional model because it holds NaN or an infinite value
(``InvalidInputError``), the graph gives that sample the score NaN and, for
a detector, ``is_outlier`` true; the other samples of the batch are scored
as usual. (uint8 input cannot hold such values; tabular models take NaN as a
missing value, as the library does.) The graph does not check the rest:
values outside [0, 1] with ``metric="bce"``, pixel values a uint8 model
would not see as floats, or infinite table values give meaningless scores
instead of an error. Validate data before scoring.

The graph is built by PyTorch's ``torch.export``-based ONNX exporter, which
needs ``onnx`` and ``onnxscript``: ``pip install "hourglass-ae[onnx]"`` (which
also installs ``onnxruntime`` to run the exported models).
"""

from __future__ import annotations

from hourglass.export._onnx import ONNX_FAMILIES, read_onnx_metadata, to_onnx

__all__ = ["ONNX_FAMILIES", "read_onnx_metadata", "to_onnx"]
