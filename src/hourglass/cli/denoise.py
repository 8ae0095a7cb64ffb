"""``hourglass denoise MODEL_DIR DATA -o OUT``: clean data with a denoising model."""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from hourglass._atomic import atomic_file
from hourglass.cli._common import add_data_arguments, add_model_arguments, read_input
from hourglass.data.stream import Stream
from hourglass.estimators import load
from hourglass.estimators._streaming import takes_frames
from hourglass.exceptions import InvalidInputError, InvalidParameterError
from hourglass.report.figures import image_grid


def add_parser(subparsers: Any) -> None:
    """Register the ``denoise`` verb."""
    parser = subparsers.add_parser(
        "denoise",
        help="remove noise with a model trained with --noise",
        description=(
            "Denoise DATA with a model trained with 'hourglass train --noise ...' and write the "
            "result: a .npy array shaped like DATA (values in [0, 1] for images), or, for a "
            ".png output or with --preview, a picture of noisy images above their denoised "
            "versions; texts go to a .txt file, one text per line."
        ),
    )
    add_model_arguments(parser)
    parser.add_argument("data", metavar="DATA", help="noisy data file")
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="FILE",
        help="denoised data (.npy), a preview picture (.png), or texts (.txt)",
    )
    parser.add_argument(
        "--preview",
        type=int,
        default=None,
        metavar="N",
        help="also write a PNG of the first N images beside a .npy output "
        "(or in the .png output; default N: 10)",
    )
    add_data_arguments(parser, streaming=True)
    parser.set_defaults(run=run)


def _write_preview(noisy: Any, denoised: np.ndarray[Any, Any], path: Path, n: int) -> None:
    if denoised.ndim not in (3, 4):
        raise InvalidInputError(
            f"A preview picture needs images of shape (n, h, w) or (n, c, h, w); DATA has "
            f"samples of shape {denoised.shape[1:]}. Write a .npy file instead."
        )
    shown = slice(0, max(1, n))
    image_grid(
        [("noisy", np.asarray(noisy)[shown]), ("denoised", denoised[shown])],
        path,
        title="Noisy images above their denoised versions",
    )


def run(args: argparse.Namespace) -> int:
    """Denoise and write."""
    model = load(args.model, device=args.device)
    if model.get_params().get("noise") is None:
        print(
            f"hourglass denoise: warning: {args.model} was not trained with --noise; it will "
            "reconstruct its input rather than remove noise.",
            file=sys.stderr,
        )
    noisy = read_input(args.data, args.drop_columns, args.stream)
    output = Path(args.output)
    if isinstance(noisy, Stream):
        return _denoise_stream(model, noisy, output, args.preview)
    denoised = model.denoise(noisy)
    if isinstance(denoised, list):  # texts
        return _write_texts(denoised, output)
    if output.suffix.lower() == ".png":
        _write_preview(noisy, denoised, output, args.preview or 10)
        print(f"Wrote a preview of {min(len(denoised), args.preview or 10)} images to {output}")
        return 0
    if output.suffix.lower() != ".npy":
        raise InvalidParameterError(f"Cannot write {output}: use a .npy or .png file name.")
    with atomic_file(output) as tmp, open(tmp, "wb") as handle:
        np.save(handle, denoised, allow_pickle=False)
    print(f"Wrote {len(denoised):,} denoised samples to {output}")
    if args.preview:
        preview = output.with_suffix(".png")
        _write_preview(noisy, denoised, preview, args.preview)
        print(f"Wrote a preview to {preview}")
    return 0


def _write_texts(texts: Iterable[str], output: Path) -> int:
    """Write texts one per line (line breaks inside a text become spaces), as they come."""
    if output.suffix.lower() != ".txt":
        raise InvalidParameterError(f"Cannot write texts to {output}: use a .txt file name.")
    written = 0
    with atomic_file(output) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        for text in texts:
            handle.write(" ".join(text.splitlines()) + "\n")
            written += 1
    print(f"Wrote {written:,} denoised texts to {output}")
    return 0


def _denoise_stream(model: Any, noisy: Stream, output: Path, preview: int | None) -> int:
    """Denoise a stream piece by piece into a .npy (or, for texts, .txt) file written as it goes."""
    pieces = noisy.pieces(as_frame=takes_frames(model, noisy))
    if model.family_.input_kind(model.input_shape_) == "texts":
        return _write_texts(itertools.chain.from_iterable(map(model.denoise, pieces)), output)
    if output.suffix.lower() != ".npy":
        raise InvalidInputError(
            f"Cannot write {output}: streamed data is denoised into a .npy file (add "
            "--preview N for a picture of the first N images)."
        )
    shape = (noisy.n_rows, *model.input_shape_)
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False}
    written = 0
    with atomic_file(output) as tmp, open(tmp, "wb") as handle:
        np.lib.format.write_array_header_2_0(handle, {**header, "shape": shape})
        for piece in pieces:
            denoised = model.denoise(piece).astype(np.float32, copy=False)
            handle.write(np.ascontiguousarray(denoised).tobytes())
            written += len(denoised)
        if written != noisy.n_rows:
            raise InvalidInputError(f"{noisy!r} changed while it was read; run again.")
    print(f"Wrote {written:,} denoised samples to {output}")
    if preview:
        first = noisy.head(preview, as_frame=False)
        picture = output.with_suffix(".png")
        _write_preview(first, model.denoise(first), picture, preview)
        print(f"Wrote a preview to {picture}")
    return 0
