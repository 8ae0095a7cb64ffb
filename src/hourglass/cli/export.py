"""``hourglass export MODEL_DIR --format onnx -o model.onnx``: the model for other runtimes."""

from __future__ import annotations

import argparse
import json
from typing import Any

from hourglass.estimators import load

#: Formats ``--format`` accepts.
FORMATS = ("onnx",)


def add_parser(subparsers: Any) -> None:
    """Register the ``export`` verb."""
    parser = subparsers.add_parser(
        "export",
        help="export a trained model to ONNX",
        description=(
            "Write MODEL_DIR as an ONNX graph that takes the raw input (uint8 images are "
            "divided by 255 and table columns standardised inside the graph) and returns the "
            "score hourglass gives (output 'score', float64: the reconstruction error, or the "
            "complexity-corrected score of image detectors; the higher, the more abnormal), "
            "the reconstruction and, for detectors, the outlier flags ('is_outlier'). The "
            "threshold, metric, input shape and dtype, feature names and hourglass version are "
            "stored in the model's metadata_props. Dense, conv and tabular (numeric columns "
            'only) models; needs pip install "hourglass-ae[onnx]".'
        ),
    )
    parser.add_argument("model", metavar="MODEL_DIR", help="a model saved by 'hourglass train'")
    parser.add_argument(
        "--format", choices=FORMATS, default="onnx", help="export format (default: onnx)"
    )
    parser.add_argument(
        "-o", "--output", required=True, metavar="FILE", help="file to write, e.g. model.onnx"
    )
    parser.add_argument(
        "--json", action="store_true", help="print the stored metadata as JSON on standard output"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Load on the CPU, export, print what the graph takes and returns."""
    from hourglass.export import read_onnx_metadata, to_onnx

    model = load(args.model, device="cpu")  # the export traces on the CPU
    path = to_onnx(model, args.output)
    metadata = read_onnx_metadata(path)
    if args.json:
        print(json.dumps({"output": str(path), "format": args.format, **metadata}))
        return 0
    shape = ", ".join(["batch", *map(str, metadata["input_shape"])])
    threshold = metadata["threshold"]
    corrected = ", complexity-corrected" if metadata.get("score_type") == "complexity" else ""
    print(
        f"Exported the {metadata['family']} model to {path} (ONNX): input "
        f"{metadata['input_name']!r} {metadata['input_dtype']} ({shape}); outputs "
        f"{', '.join(metadata['outputs'])}; score {metadata['metric']}{corrected}"
        + ("" if threshold is None else f", threshold {threshold:.6g}")
        + "."
    )
    return 0
