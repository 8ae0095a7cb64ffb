"""Saving and loading models: JSON for everything but tensors, safetensors for tensors.

A model directory holds two files:

``config.json``
    ``format`` and ``format_version``, the hourglass version that wrote it, the
    estimator class, its constructor parameters, its fitted non-tensor state,
    and a manifest of the tensors (name, dtype, shape) with the SHA-256 digest
    of the weights file.
``model.safetensors``
    The module's weights and the fitted arrays.

Nothing is ever unpickled: reading a model parses JSON and the safetensors
format, neither of which can execute code. The weights file is checked
against the manifest's size and digest *before* it is parsed, so a truncated,
swapped or tampered file is rejected without allocating more than the
manifest announces, and a model is either loaded whole or not at all.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load as safetensors_load
from safetensors.torch import save_file

from hourglass._atomic import atomic_directory
from hourglass._version import __version__
from hourglass.exceptions import ModelFileError, ModelVersionError

__all__ = [
    "CONFIG_NAME",
    "FORMAT_VERSION",
    "WEIGHTS_NAME",
    "ModelFile",
    "json_params",
    "read_model_dir",
    "write_model_dir",
]

FORMAT = "hourglass-model"
FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
#: A config.json larger than this is not a hourglass config (guards memory).
MAX_CONFIG_BYTES = 64 * 2**20
#: Slack for the safetensors JSON header on top of the manifest's tensor bytes.
MAX_HEADER_BYTES = 2**20

_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float64": torch.float64,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "int64": torch.int64,
    "int32": torch.int32,
    "uint8": torch.uint8,
    "bool": torch.bool,
}


@dataclass(frozen=True)
class ModelFile:
    """The parsed content of a model directory."""

    class_name: str
    params: dict[str, Any]
    state: dict[str, Any]
    tensors: dict[str, torch.Tensor]
    library_version: str


def json_params(params: dict[str, Any]) -> dict[str, Any]:
    """Constructor parameters as JSON values (tuples become lists).

    A ``random_state`` that is a generator object cannot be stored; it is saved
    as ``None`` (the fitted weights are saved, so nothing is lost for scoring).
    """
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, np.integer):
            value = int(value)
        elif isinstance(value, np.floating):
            value = float(value)
        elif isinstance(value, np.random.RandomState | np.random.Generator):
            value = None
        out[key] = value
    return out


def _dtype_name(dtype: torch.dtype) -> str:
    for name, candidate in _DTYPES.items():
        if candidate == dtype:
            return name
    raise ValueError(f"Cannot save tensors of dtype {dtype}.")


def write_model_dir(
    path: str | os.PathLike[str],
    *,
    class_name: str,
    params: dict[str, Any],
    state: dict[str, Any],
    tensors: dict[str, torch.Tensor],
) -> Path:
    """Write a model directory atomically; return its path."""
    contiguous = {name: t.detach().cpu().contiguous() for name, t in tensors.items()}
    with atomic_directory(path) as tmp:
        weights_path = tmp / WEIGHTS_NAME
        save_file(contiguous, str(weights_path))
        digest = hashlib.sha256(weights_path.read_bytes()).hexdigest()
        config = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "library_version": __version__,
            "class": class_name,
            "params": params,
            "state": state,
            "tensors": {
                name: {"dtype": _dtype_name(t.dtype), "shape": list(t.shape)}
                for name, t in contiguous.items()
            },
            "weights_sha256": digest,
        }
        text = json.dumps(config, indent=2, sort_keys=True, allow_nan=True)
        (tmp / CONFIG_NAME).write_text(text + "\n", encoding="utf-8")
    return Path(path)


def _fail(path: Path, problem: str) -> ModelFileError:
    return ModelFileError(
        f"Cannot load the model in {path}: {problem}. Re-save it (the estimator's save() "
        "or `hourglass train`), or check that the path points at a model directory."
    )


def _read_config(path: Path) -> dict[str, Any]:
    config_path = path / CONFIG_NAME
    if not path.is_dir():
        raise _fail(
            path, "the directory does not exist" if not path.exists() else "not a directory"
        )
    if not config_path.is_file():
        raise _fail(path, f"{CONFIG_NAME} is missing")
    if config_path.stat().st_size > MAX_CONFIG_BYTES:
        raise _fail(path, f"{CONFIG_NAME} is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise _fail(path, f"{CONFIG_NAME} is not valid JSON ({error})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise _fail(path, f"{CONFIG_NAME} is not an hourglass model config")
    version = config.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise _fail(path, "its format_version is missing or invalid")
    if version > FORMAT_VERSION:
        raise ModelVersionError(
            f"The model in {path} was saved in format version {version} by hourglass "
            f"{config.get('library_version', '?')}; this hourglass ({__version__}) reads "
            f"format versions up to {FORMAT_VERSION}. Upgrade hourglass "
            "(pip install --upgrade hourglass) to load it."
        )
    for key, kind in (("class", str), ("params", dict), ("state", dict), ("tensors", dict)):
        if not isinstance(config.get(key), kind):
            raise _fail(path, f"{CONFIG_NAME} lacks a valid {key!r} entry")
    if not isinstance(config.get("weights_sha256"), str):
        raise _fail(path, f"{CONFIG_NAME} lacks the weights' SHA-256 digest")
    return config


def _expected_bytes(path: Path, manifest: dict[str, Any]) -> int:
    total = 0
    for name, spec in manifest.items():
        if not isinstance(spec, dict) or spec.get("dtype") not in _DTYPES:
            raise _fail(path, f"tensor {name!r} has an unsupported dtype in the manifest")
        shape = spec.get("shape")
        if not isinstance(shape, list) or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape
        ):
            raise _fail(path, f"tensor {name!r} has an invalid shape in the manifest")
        itemsize = torch.empty((), dtype=_DTYPES[spec["dtype"]]).element_size()
        total += math.prod(shape) * itemsize
    return total


def read_model_dir(path: str | os.PathLike[str]) -> ModelFile:
    """Read and verify a model directory written by :func:`write_model_dir`.

    Raises
    ------
    ModelFileError
        The directory or a file is missing, truncated, altered or inconsistent.
    ModelVersionError
        The model was written in a newer format.
    """
    directory = Path(path)
    config = _read_config(directory)
    manifest: dict[str, Any] = config["tensors"]
    weights_path = directory / WEIGHTS_NAME
    if not weights_path.is_file():
        raise _fail(directory, f"{WEIGHTS_NAME} is missing")
    limit = _expected_bytes(directory, manifest) + MAX_HEADER_BYTES
    size = weights_path.stat().st_size
    if size > limit:
        raise _fail(directory, f"{WEIGHTS_NAME} is {size} bytes, more than its manifest allows")
    data = weights_path.read_bytes()
    if hashlib.sha256(data).hexdigest() != config["weights_sha256"]:
        raise _fail(
            directory,
            f"{WEIGHTS_NAME} does not match the SHA-256 digest recorded in {CONFIG_NAME} "
            "(the file is truncated, corrupted or was modified)",
        )
    try:
        tensors = safetensors_load(data)
    except Exception as error:  # safetensors raises its own SafetensorError
        raise _fail(
            directory, f"{WEIGHTS_NAME} is not a valid safetensors file ({error})"
        ) from None
    if set(tensors) != set(manifest):
        raise _fail(directory, f"the tensors in {WEIGHTS_NAME} differ from the manifest")
    for name, tensor in tensors.items():
        spec = manifest[name]
        if list(tensor.shape) != spec["shape"] or tensor.dtype != _DTYPES[spec["dtype"]]:
            raise _fail(directory, f"tensor {name!r} does not match its manifest entry")
    return ModelFile(
        class_name=config["class"],
        params=config["params"],
        state=config["state"],
        tensors=tensors,
        library_version=str(config.get("library_version", "?")),
    )
